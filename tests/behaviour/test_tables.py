"""worms_table: the worms overview of notebook 06."""

import numpy as np

from wormlab import behaviour as bh

from .conftest import synthetic_worm


def test_worms_table_counts_classes_per_worm():
    kato = synthetic_worm("synthetic/k0", kato=True)
    flav = synthetic_worm("synthetic/f0", kato=False, seed=2)
    cfg = bh.DataConfig(task="fwd_rev")
    rows = bh.worms_table([kato, flav], cfg)
    assert [r["worm"] for r in rows] == ["synthetic/k0", "synthetic/f0"]
    for w, row in zip((kato, flav), rows):
        y = bh.labels(w, cfg)
        assert row["frames"] == w.n_frames and row["identified"] == len(w.identified())
        assert [row[c] for c in bh.CLASSES["fwd_rev"]] == [int((y == k).sum()) for k in (0, 1)]
        assert sum(row[c] for c in bh.CLASSES["fwd_rev"]) == int((y >= 0).sum())
    assert rows[0][bh.CLASSES["fwd_rev"][1]] > 0  # the synthetic worm does reverse


def test_worms_table_four_state_only_for_kato_worms():
    flav = synthetic_worm("synthetic/f0", kato=False)
    rows = bh.worms_table([flav], bh.DataConfig(task="four_state"))
    assert not set(bh.CLASSES["four_state"]) & set(rows[0])
    assert np.isclose(rows[0]["fps"], 1.7)
