import json

import numpy as np
import pytest

from wormlab import posture as P
from wormlab.posture import cli
from wormlab.posture._classify import fit_predict, hand_features


def _toy(n_per=20, L=200, seed=0):
    """Three SYNTHETIC 'strains' of first-eigenworm-like series: different undulation rates."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    t = np.arange(L)
    for label, f in [(1, 0.05), (2, 0.09), (3, 0.15)]:
        for _ in range(n_per):
            ph = rng.uniform(0, 2 * np.pi)
            x = np.sin(2 * np.pi * f * (1 + 0.05 * rng.standard_normal()) * t + ph)
            x += 0.5 * rng.standard_normal(L)
            X.append((x - x.mean()) / x.std())
            y.append(label)
    return np.array(X), np.array(y)


def test_ucr_io_round_trip_and_errors(tmp_path):
    X, y = _toy(3)
    P.write_ucr(tmp_path / "a.txt", X, y)
    X2, y2 = P.read_ucr(tmp_path / "a.txt")
    np.testing.assert_allclose(X2, X, rtol=1e-6)
    np.testing.assert_array_equal(y2, y)
    (tmp_path / "bad.txt").write_text("1 0.1 0.2\n2 0.1\n")
    with pytest.raises(ValueError, match="different lengths"):
        P.read_ucr(tmp_path / "bad.txt")
    (tmp_path / "nan.txt").write_text("1 0.1 abc\n")
    with pytest.raises(ValueError, match="not a number"):
        P.read_ucr(tmp_path / "nan.txt")
    with pytest.raises(FileNotFoundError):
        P.read_ucr(tmp_path / "missing.txt")


@pytest.mark.parametrize("method", ["rocket", "features", "nn"])
def test_classifiers_learn_toy_strains(method):
    X, y = _toy()
    Xt, yt = _toy(seed=1)
    assert (fit_predict(method, X, y, Xt) == yt).mean() > 0.8
    assert hand_features(X).shape[0] == len(X)


def test_cli_classify_json(tmp_path, capsys):
    X, y = _toy()
    Xt, yt = _toy(seed=1)
    P.write_ucr(tmp_path / "train.txt", X, y)
    P.write_ucr(tmp_path / "test.txt", Xt, yt)
    rc = cli.main(
        [
            "classify",
            "--train",
            str(tmp_path / "train.txt"),
            "--test",
            str(tmp_path / "test.txt"),
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["accuracy"] > 0.8 and set(out["per_class_accuracy"]) == {"1", "2", "3"}
    assert out["n_train"] == 60 and out["n_test"] == 60
    # a test file with shuffled labels cannot be predicted: training uses only --train
    rng = np.random.default_rng(0)
    P.write_ucr(tmp_path / "shuf.txt", Xt, rng.permutation(yt))
    cli.main(
        [
            "classify",
            "--train",
            str(tmp_path / "train.txt"),
            "--test",
            str(tmp_path / "shuf.txt"),
            "--json",
        ]
    )
    assert json.loads(capsys.readouterr().out)["accuracy"] < 0.6
    assert (
        cli.main(
            [
                "classify",
                "--train",
                str(tmp_path / "nope.txt"),
                "--test",
                str(tmp_path / "test.txt"),
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_lstm_protocol_runs_on_toy_strains():
    from wormlab.posture._classify import LSTMProtocol

    X, y = _toy(12, 150)
    Xt, yt = _toy(12, 150, seed=1)
    proto = LSTMProtocol(
        lstm=P.LSTMConfig(layers=1, hidden=16, epochs=2, batch_size=32),
        steps_per_epoch=20,
        n_features=10,
    )
    acc = (proto.fit(X, y).predict(Xt) == yt).mean()
    assert acc > 0.5  # chance is 1/3


def test_real_ucr_worms_file_if_present():
    try:
        X, y = P.load_ucr_worms()
    except FileNotFoundError:
        pytest.skip("shared UCR Worms data not present")
    assert X.shape == (181, 900) and set(np.unique(y)) == {1, 2, 3, 4, 5}


def test_strain_benchmark_table_and_resume(tmp_path):
    from wormlab.posture._classify import strain_benchmark

    X, y = _toy(10, 120)
    saved = []
    res = strain_benchmark(X, y, ["nn"], folds=3, on_method=lambda r: saved.append(dict(r)))
    assert res["nn"]["cv_accuracy_mean"] > 0.6 and len(res["nn"]["cv_fold_accuracies"]) == 3
    assert saved and "nn" in saved[-1]
    # methods already done are not recomputed
    fake = {**res, "nn": {**res["nn"], "cv_accuracy_mean": -1.0}}
    again = strain_benchmark(X, y, ["nn"], folds=3, done=fake)
    assert again["nn"]["cv_accuracy_mean"] == -1.0
    # a different protocol invalidates the saved table
    other = strain_benchmark(X, y, ["nn"], folds=2, done=fake)
    assert other["nn"]["cv_accuracy_mean"] > 0.6
