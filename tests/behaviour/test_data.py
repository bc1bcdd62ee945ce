import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wormlab.behaviour import (
    DataConfig,
    Split,
    Worm,
    build_windows,
    check_no_leak,
    cross_dataset,
    features,
    kfold_within_worm,
    labels,
    leave_worms_out,
    resample,
    shared_names,
    split_windows,
)
from wormlab.behaviour._data import ends_within, window_frames


def test_features_are_normalised_per_worm(worm):
    f = features(worm, ["AVAL", "RIML"])
    assert f.shape == (worm.n_frames, 2, 2) and f.dtype == np.float32
    assert f.min() == 0.0 and f.max() == 1.0
    assert np.allclose(f.min(axis=0), 0) and np.allclose(f.max(axis=0), 1)
    f1 = features(worm, ["AVAL"], derivatives=False)
    assert f1.shape == (worm.n_frames, 1, 1)


def test_windows_hold_the_right_frames(worm):
    cfg = DataConfig(window=5)
    ends = {worm.worm_id: np.array([10, 50, 200])}
    ws = build_windows([worm], ends, ["AVAL", "AVBL"], cfg)
    feat = features(worm, ["AVAL", "AVBL"])
    assert ws.X.shape == (3, 5, 2, 2)
    for i, e in enumerate(ws.ends):
        assert np.array_equal(ws.X[i], feat[e - 4:e + 1])
    assert np.array_equal(ws.y, labels(worm, cfg)[ws.ends])
    # windows whose last frame has no label (nostate at frames 0..2) are dropped
    ws2 = build_windows([worm], {worm.worm_id: np.array([2, 10])}, ["AVAL"], DataConfig(window=1))
    assert ws2.ends.tolist() == [10]


def test_shared_names_and_exclusions(worms, make_worm):
    other = make_worm("synthetic/x", names=("AVAL", "RIML", "ZZZ", "17", "SAA?"))
    assert shared_names(worms + [other], DataConfig()) == ["AVAL", "RIML"]
    assert shared_names(worms, DataConfig(exclude=("AVAL",))) == ["AIBL", "AVBL", "RIML", "RMEL"]
    assert shared_names(worms, DataConfig(neurons=("RIML", "AVAL"))) == ["RIML", "AVAL"]
    with pytest.raises(ValueError, match="absent from synthetic/x"):
        shared_names([other], DataConfig(neurons=("AVBL",)))
    with pytest.raises(ValueError, match="no identified neuron"):
        shared_names([other, make_worm(names=("A1", "B1"))], DataConfig())


def _frames(split, part, wid):
    return set(window_frames(getattr(split, part).get(wid, []), split.window).tolist())


def test_kfold_never_leaks(worm):
    splits = kfold_within_worm(worm, 5, window=8)
    test_all = set()
    for s in splits:
        check_no_leak(s)
        wid = worm.worm_id
        test = _frames(s, "test", wid)
        assert test and not (test & _frames(s, "train", wid)) and not (test & _frames(s, "val", wid))
        # a gap of T frames separates training windows from the test block
        tr = np.array(sorted(_frames(s, "train", wid)))
        assert np.min(np.abs(tr[:, None] - np.array(sorted(test))[None, :])) > 8
        test_all |= test
    assert len(test_all) > 0.9 * worm.n_frames  # folds cover (almost) the whole worm


@settings(max_examples=40, deadline=None)
@given(n=st.integers(60, 400), k=st.integers(2, 6), t=st.integers(1, 10))
def test_kfold_no_leak_property(n, k, t):
    w = Worm("synthetic/p", "synthetic", np.zeros((n, 1)), ("AVAL",), 1.0,
             states=np.array(["fwd"] * n))
    for s in kfold_within_worm(w, k, t):
        check_no_leak(s)


def test_leave_worms_out_every_combination(worms):
    splits = leave_worms_out(worms, 2, window=4)
    assert len(splits) == 6  # C(4, 2)
    seen = set()
    for s in splits:
        check_no_leak(s)
        assert not set(s.train) & set(s.test_worms) and not set(s.val) & set(s.test_worms)
        seen.add(s.test_worms)
        tr, va, te, names = split_windows(worms, s, DataConfig(window=4))
        test_idx = {te.worm_ids[i] for i in np.unique(te.worm)}
        train_idx = {tr.worm_ids[i] for i in np.unique(tr.worm)}
        assert test_idx == set(s.test_worms) and not train_idx & test_idx
    assert len(seen) == 6
    with pytest.raises(ValueError, match="n_test"):
        leave_worms_out(worms, 4, window=4)


def test_leak_is_detected(worms):
    w = worms[0]
    bad = Split("lwo/bad", {w.worm_id: np.array([10])}, {}, {w.worm_id: np.array([20])}, {},
                window=4, test_worms=(w.worm_id,))
    with pytest.raises(AssertionError, match="test worm"):
        check_no_leak(bad)
    overlap = Split("kfold/bad", {w.worm_id: np.array([12])}, {}, {w.worm_id: np.array([14])},
                    {}, window=4, test_worms=(w.worm_id,), within_worm=True)
    with pytest.raises(AssertionError, match="test frames"):
        check_no_leak(overlap)


def test_cross_dataset(make_worm, worms):
    worm = make_worm("synthetic/kato_like")
    s = cross_dataset([worm], worms, window=8)
    check_no_leak(s)
    assert set(s.train) == {worm.worm_id} and set(s.test) == {w.worm_id for w in worms}
    with pytest.raises(ValueError, match="both train and test"):
        cross_dataset([worm], [worm], window=8)


def test_resample_keeps_labels(worm):
    r = resample(worm, 1.5)
    assert r.fps == 1.5 and abs(r.n_frames - worm.n_frames / 2) <= 1
    assert set(np.unique(r.states)) <= set(np.unique(worm.states))


def test_ends_within():
    m = np.array([1, 1, 1, 0, 1, 1, 1, 1], bool)
    assert ends_within(m, 3).tolist() == [2, 6, 7]
    assert ends_within(m, 9).tolist() == []


def _kato_layout_npz(path, seed):
    """A tiny Kato-2015-layout NPZ (labelled synthetic in the file name by the caller)."""
    rng = np.random.default_rng(seed)
    T = 300
    rev = np.sin(np.arange(T) / 9.0 + seed) > 0.4
    x = rng.normal(0, 0.3, (T, 4)).astype(np.float32)
    x[:, 1] += 2.0 * rev
    np.savez(path, traces_dFF_bc=x, neuron_names=np.array(["1", "AVAL", "AVBL", "RIML"]),
             state_index=np.where(rev, 1, 0).astype(np.int8),
             state_names=np.array(["fwd", "rev1"]), fps=np.array(2.905))
    return path


def test_cli_evaluate_two_kato_files_by_path(tmp_path, capsys):
    """Issue 19 item 4: two Kato-layout files are two worms (their ids come from the files),
    and a file given twice is refused naming the file."""
    import json

    from wormlab.behaviour.cli import main

    a = _kato_layout_npz(tmp_path / "A_synthetic.npz", 0)
    b = _kato_layout_npz(tmp_path / "B_synthetic.npz", 1)
    rc = main(["evaluate", "--train", str(a), "--test", str(b), "--model", "svm", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["train"] == ["kato2015/A_synthetic"]
    assert out["test"] == ["kato2015/B_synthetic"] and out["n_test"] > 0
    rc = main(["evaluate", "--train", str(a), "--test", str(a), "--model", "svm"])
    err = capsys.readouterr().err
    assert rc == 2 and "more than once" in err and err.count("A_synthetic.npz") == 2
