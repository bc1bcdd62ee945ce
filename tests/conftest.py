import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WORMLAB_PROGRESS", "0")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    from wormlab.runs import configure_torch

    configure_torch(1)
