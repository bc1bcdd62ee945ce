"""strain_dataset / synthetic_strains: the data of notebook 07's strain section."""

import numpy as np
import pytest

from wormlab import posture as P


def test_synthetic_strains_shapes_labels_and_seed():
    X, y = P.synthetic_strains(n_per_class=5, length=40, seed=3, freqs=(0.1, 0.2, 0.4))
    assert X.shape == (15, 40) and list(np.unique(y)) == [1, 2, 3] and (y == 2).sum() == 5
    assert np.array_equal(X, P.synthetic_strains(5, 40, 3, (0.1, 0.2, 0.4))[0])
    with pytest.raises(ValueError, match="n_per_class >= 1"):
        P.synthetic_strains(0)


def test_strain_dataset_falls_back_to_synthetic_and_cuts_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("WORMLAB_SHARED_DATA", str(tmp_path / "absent"))
    X, y, label = P.strain_dataset(smoke=False, seed=1)
    assert label == "SYNTHETIC sinusoids" and X.shape == (60, 300)
    Xs, ys, _ = P.strain_dataset(smoke=True, seed=1, per_class=4, length=50)
    assert Xs.shape == (8, 50) and [int((ys == c).sum()) for c in (1, 2)] == [4, 4]
    assert np.array_equal(Xs, np.concatenate([X[:4, :50], X[30:34, :50]]))


def test_strain_dataset_reads_real_ucr_when_present():
    from wormlab.paths import shared_data_dir

    base = shared_data_dir()
    if base is None or not (base / "ucr_worms" / "Worms_TRAIN.txt").exists():
        pytest.skip("UCR Worms not in the shared data folder")
    X, y, label = P.strain_dataset(smoke=True)
    assert label == "real UCR Worms" and X.shape[1] == 300 and len(np.unique(y)) == 5
