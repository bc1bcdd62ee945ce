import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WORMLAB_PROGRESS", "0")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    from wormlab.runs import configure_torch

    configure_torch(1)


# CI replays a fixed set of hypothesis examples (reproducible verdicts); locally, examples vary
# run to run so the fuzz tests keep exploring.
try:
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("CI"):
        settings.load_profile("ci")
except ImportError:  # pragma: no cover
    pass
