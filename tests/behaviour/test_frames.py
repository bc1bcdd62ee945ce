"""Frame decoders and ``best`` (issue 20): features, causality, selection on training worms only."""

import json

import numpy as np
import pytest

from wormlab.behaviour import DataConfig
from wormlab.behaviour._frames import (
    FRAME_MODELS,
    FrameDecoder,
    FrameSpec,
    frame_features,
    frame_lwo,
    select_frame_model,
)

from .conftest import NAMES


def test_spec_rejects_bad_values():
    with pytest.raises(ValueError, match="kind"):
        FrameSpec("svm")
    with pytest.raises(ValueError, match="derivative"):
        FrameSpec(derivative="forward")
    with pytest.raises(ValueError, match="c must be positive"):
        FrameSpec(c=0.0)
    with pytest.raises(ValueError, match="lags"):
        FrameSpec(lags=(0,))
    with pytest.raises(ValueError, match="unknown frame decoder 'nope'"):
        FrameDecoder("nope", NAMES, DataConfig())


def test_features_shape_and_causality(make_worm):
    """A backward-derivative (causal) feature at frame t must not change when frames after t
    change; the central derivative does (it reads frame t+1), and lags only look back."""
    w = make_worm(kato=False)
    t = 100
    later = make_worm(kato=False)
    later.traces[t + 1:] += np.random.default_rng(5).normal(0, 1, later.traces[t + 1:].shape)
    n = len(NAMES)
    for name, spec in FRAME_MODELS.items():
        f = frame_features(w, NAMES, spec)
        width = (2 + len(spec.scales)) * n * (1 + len(spec.lags))
        assert f.shape == (w.n_frames, width), name
        assert np.isfinite(f).all(), name
    causal = FrameSpec(derivative="backward", lags=(1, 3))
    a = frame_features(w, NAMES, causal)
    b = frame_features(later, NAMES, causal)
    central = FrameSpec(derivative="central")
    ca = frame_features(w, NAMES, central)
    cb = frame_features(later, NAMES, central)
    # per-worm scaling (min-max, z-score: affine per column, float32) uses every frame, so
    # frames 0..t may differ by a per-column affine map, fitted on frames 0..t-1
    def same_up_to_affine(x, y, upto):
        for j in range(x.shape[1]):
            coef = np.polyfit(x[:upto, j], y[:upto, j], 1)
            if not np.allclose(np.polyval(coef, x[:upto + 1, j]), y[:upto + 1, j], atol=1e-4):
                return False
        return True

    assert same_up_to_affine(a, b, t)  # frame t is unchanged (up to the worm's scaling)
    assert not same_up_to_affine(ca, cb, t)  # the central derivative at t saw frame t+1


def test_frame_decoder_beats_majority_on_unseen_synthetic_worm(worms):
    cfg = DataConfig()
    dec = FrameDecoder("logreg", NAMES, cfg).fit(worms[:3])
    res = dec.evaluate(worms[3:])
    assert res["balanced_accuracy"] > 0.9
    from wormlab.behaviour import labels

    y = dec.scored_labels(worms[3])
    n_target = int((labels(worms[3], cfg)[cfg.window - 1:] >= 0).sum())  # turns are not targets
    assert res["n"] == len(y) == n_target < worms[3].n_frames
    with pytest.raises(RuntimeError, match="not trained"):
        FrameDecoder("logreg", NAMES, cfg).predict_worm(worms[0])


def test_training_with_one_class_names_the_worms(worms):
    w = worms[0]
    w.behaviour["reversal"] = np.zeros(w.n_frames, int)
    with pytest.raises(ValueError, match="synthetic/w0 hold only class 'forward'"):
        FrameDecoder("logreg", NAMES, DataConfig()).fit([w])


def test_selection_uses_training_worms_only(worms, monkeypatch):
    """``best`` must never read the test worm while choosing: the selection of each split is
    given the other worms only, and every worm whose features are built during selection is
    recorded. (Fails if the selection is given, or reaches, the test worm.)"""
    import wormlab.behaviour._frames as fr

    seen: list[str] = []
    calls: list[set] = []
    selecting = {"on": False}
    real_features, real_select = fr.frame_features, fr.select_frame_model

    def spy_features(worm, names, spec):
        if selecting["on"]:
            seen[-1].add(worm.worm_id)
        return real_features(worm, names, spec)

    def spy_select(train_worms, *a, **k):
        calls.append({w.worm_id for w in train_worms})
        seen.append(set())
        selecting["on"] = True
        try:
            return real_select(train_worms, *a, **k)
        finally:
            selecting["on"] = False

    monkeypatch.setattr(fr, "frame_features", spy_features)
    monkeypatch.setattr(fr, "select_frame_model", spy_select)
    cands = ("logreg", "logreg_ms_union_thr")  # the second fits inner models of its own
    rows = frame_lwo(worms, ["best"], DataConfig(), progress_bar=False, candidates=cands)
    assert len(rows) == len(calls) == len(worms)
    for row, given, read in zip(rows, calls, seen):
        others = {w.worm_id for w in worms} - {row["test"]}
        assert given == others and read == others  # never the test worm
        assert row["chosen"] in cands and set(row["inner_mean"]) == set(cands)


def test_selection_needs_two_training_worms(worms):
    with pytest.raises(ValueError, match=">= 2 training worms"):
        select_frame_model(worms[:1], NAMES, DataConfig())


def _flavell_like_npz(path, seed):
    """A tiny NPZ recording with Flavell-style reversal flags (labelled synthetic by name)."""
    from wormlab.recordings import Recording, save_npz

    rng = np.random.default_rng(seed)
    T = 260
    rev = np.sin(np.arange(T) / 9.0 + seed) > 0.4
    x = rng.normal(0, 0.3, (T, 4)).astype(np.float32)
    x[:, 1] += 2.0 * rev
    x[:, 2] -= 1.0 * rev
    rec = Recording(traces=x, fps=1.67, time_s=np.arange(T) / 1.67,
                    neuron_names=[None, "AVAL", "AVBL", "RIML"],
                    dataset="synthetic", worm_id=path.stem,
                    behaviour={"reversal_vec": rev.astype(np.int8),
                               "worm_curvature": rng.uniform(0.3, 0.6, T),
                               "velocity": np.where(rev, -0.05, 0.05)})
    save_npz(rec, path)
    return path


def test_cli_evaluate_best_reports_inner_scores(tmp_path, capsys):
    from wormlab.behaviour.cli import main

    files = [_flavell_like_npz(tmp_path / f"w{i}_synthetic.npz", i) for i in range(4)]
    rc = main(["evaluate", "--train", *map(str, files[:3]), "--test", str(files[3]),
               "--model", "best", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    sel = out["selection"]
    assert out["model"] == "best" and out["fitted_model"] == sel["chosen"]
    assert set(sel["held_out_worms"]) == set(out["train"]) and out["test"][0] not in sel[
        "held_out_worms"]
    for c in sel["candidates"]:
        assert set(sel["inner"][c]) == set(out["train"])
    assert sel["inner_mean"][sel["chosen"]] == max(sel["inner_mean"].values())
    assert out["balanced_accuracy"] > 0.9 and out["n_test"] > 0
    rc = main(["evaluate", "--train", str(files[0]), "--test", str(files[3]), "--model", "best"])
    assert rc == 2 and ">= 2 training worms" in capsys.readouterr().err


def test_cli_frames_table_on_files(tmp_path, capsys):
    from wormlab.behaviour.cli import main

    files = [str(_flavell_like_npz(tmp_path / f"w{i}_synthetic.npz", i)) for i in range(3)]
    out = tmp_path / "rows.json"
    rc = main(["frames", *files, "--models", "logreg", "logreg_causal", "--out", str(out)])
    assert rc == 0 and "| majority class (accuracy; balanced = 0.5) |" in capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 6 and {r["model"] for r in rows} == {"logreg", "logreg_causal"}
    assert all(r["balanced_accuracy"] > 0.8 for r in rows)
    assert main(["frames", "--tabulate", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| model | w0_synthetic | w1_synthetic | w2_synthetic | mean")
    assert len(table) == 2 + 2 + 1  # header, rule, 2 models, majority baseline
    assert main(["frames", "--tabulate", str(tmp_path / "nothere.json")]) == 2
    assert "nothere.json" in capsys.readouterr().err
    rc = main(["frames", *files[:2], "--models", "logreg"])
    assert rc == 2 and "needs >= 3 worms" in capsys.readouterr().err


def test_union_neurons_come_from_training_worms_and_zero_fill(make_worm):
    from wormlab.behaviour._frames import union_names

    a = make_worm("synthetic/a", kato=False)
    b = make_worm("synthetic/b", kato=False, names=("AVAL", "AVBL", "RIML", "AIBL", "SMDVL"))
    c = make_worm("synthetic/c", kato=False, names=("AVAL", "AVBL", "RIML", "URYDL", "ASKL"))
    assert union_names([a, b, c], 0.6) == ["AIBL", "AVAL", "AVBL", "RIML"]  # in >= 2 of 3
    assert union_names([a, b, c], 1.0) == ["AVAL", "AVBL", "RIML"]
    spec = FRAME_MODELS["logreg_ms_union"]
    f = frame_features(c, ["AIBL", "AVAL"], spec)  # c lacks AIBL: zeros in its columns
    assert f.shape == (c.n_frames, 6) and np.all(f[:, [0, 2, 4]] == 0) and f[:, 1].std() > 0.5
    with pytest.raises(KeyError, match="synthetic/c has no neuron 'AIBL'"):
        frame_features(c, ["AIBL", "AVAL"], FRAME_MODELS["logreg_ms"])  # shared: an error
    dec = FrameDecoder("logreg_ms_union", ["AVAL"], DataConfig()).fit([a, b, c])
    assert dec.names == ["AVAL", "AVBL", "RIML"]  # in >= 0.75 of the training worms, not args
    with pytest.raises(ValueError, match="no identified neuron is present in >= 1"):
        union_names([make_worm("synthetic/x", kato=False, names=("1", "2", "3", "4", "5"))])


def test_inner_threshold_is_chosen_on_training_worms(worms):
    """The cut-off comes from leave-one-worm-out over the training worms and is the one the
    decoder then uses; with < 2 training worms there is nothing to hold out (0.5)."""
    from wormlab.behaviour._frames import THRESHOLDS, inner_threshold

    cfg = DataConfig()
    spec = FRAME_MODELS["logreg_ms_thr"]
    t = inner_threshold(spec, worms[:3], cfg, list(NAMES))
    assert t in THRESHOLDS
    dec = FrameDecoder("logreg_ms_thr", NAMES, cfg).fit(worms[:3])
    assert dec.threshold == t and dec.evaluate(worms[3:])["balanced_accuracy"] > 0.9
    _, p = dec.proba_worm(worms[3])
    _, pred = dec.predict_worm(worms[3])
    dec.threshold = 0.05  # the cut-off is what decides: a low one calls more reversals
    _, low = dec.predict_worm(worms[3])
    assert np.array_equal(pred, (p > t).astype(int)) and low.sum() > pred.sum()
    assert FrameDecoder("logreg_ms", NAMES, cfg).fit(worms[:3]).threshold is None
    assert inner_threshold(spec, worms[:1], cfg, list(NAMES)) == 0.5
