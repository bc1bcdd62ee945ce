import os

import pytest

from wormlab.runs import atomic_path, seed_everything


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)  # not mkstemp's 0600


def test_seed_everything_is_reproducible():
    import torch

    seed_everything(3)
    a = torch.randn(4), seed_everything(3).normal(size=2)
    seed_everything(3)
    b = torch.randn(4), seed_everything(3).normal(size=2)
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all()
