import os

import pytest

from wormlab.runs import atomic_dir, atomic_path, seed_everything


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


def test_seed_everything_seeds_every_stream_from_the_seed():
    """Each stream against an independently seeded reference, and a different seed differs:
    a generator built without the seed, a missed ``np.random.seed`` or ``random.seed``, or a
    constant torch seed all fail here (comparing two calls of the function with each other
    would not catch any of them)."""
    import random

    import numpy as np
    import torch

    rng = seed_everything(3)
    got = (torch.randn(4), np.random.rand(3), random.random(), rng.normal(size=2))
    want = (torch.randn(4, generator=torch.Generator().manual_seed(3)),
            np.random.RandomState(3).rand(3), random.Random(3).random(),
            np.random.default_rng(3).normal(size=2))
    assert torch.equal(got[0], want[0])
    assert np.array_equal(got[1], want[1])
    assert got[2] == want[2]
    assert np.array_equal(got[3], want[3])
    other = seed_everything(4)
    assert not torch.equal(torch.randn(4), want[0])
    assert not np.array_equal(np.random.rand(3), want[1])
    assert random.random() != want[2]
    assert not np.array_equal(other.normal(size=2), want[3])


def test_atomic_dir_replaces_the_folder_only_on_success(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]     # no temporary left behind
    with atomic_dir(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
