"""On the real recordings in ../shared/data (skipped when the folder is absent)."""

import json

import numpy as np
import pytest

from wormlab.paths import shared_data_dir

pytestmark = pytest.mark.skipif(shared_data_dir() is None, reason="shared recordings absent")


@pytest.fixture(scope="module")
def kato():
    from wormlab.behaviour import kato_worms

    return kato_worms()[0]


@pytest.fixture(scope="module")
def flavell():
    from wormlab.behaviour import flavell_worms

    return flavell_worms()


def test_real_labels(kato, flavell):
    from wormlab.behaviour import DataConfig, labels

    y4 = labels(kato, DataConfig(task="four_state"))
    assert set(np.unique(y4)) == {-1, 0, 1, 2, 3}
    assert "AVAL" not in kato.names  # removed by the conversion ("without AVA")
    for w in flavell:
        y = labels(w, DataConfig(task="fwd_rev"))
        rev = np.asarray(w.behaviour["reversal"]).astype(bool)
        assert np.all(y[rev] == 1) and np.all(y[~rev] != 1)
        assert np.all(np.asarray(w.behaviour["velocity"])[rev] < 0)  # the flags mean reversing


def test_real_splits_never_leak():
    from wormlab.behaviour import BehaviourConfig
    from wormlab.behaviour._experiments import experiment_splits

    cfg = BehaviourConfig()
    sizes = {}
    for name in ("kato_kfold", "flavell_lwo", "kato_to_flavell"):
        worms, splits, d = experiment_splits(name, cfg)  # runs check_no_leak on every split
        sizes[name] = len(splits)
        for s in splits:
            for wid in s.test_worms:
                if not s.within_worm:
                    assert wid not in s.train and wid not in s.val
    assert sizes == {"kato_kfold": 5, "flavell_lwo": 5, "kato_to_flavell": 1}


def test_a_model_beats_the_majority_class_on_an_unseen_real_worm(flavell):
    from wormlab.behaviour import BehaviourConfig, leave_worms_out, split_windows
    from wormlab.behaviour._train import train_and_evaluate

    cfg = BehaviourConfig().replace(model={"name": "svm"})
    split = leave_worms_out(flavell, 1, cfg.data.window)[0]
    tr, va, te, names = split_windows(flavell, split, cfg.data)
    assert len(names) == 45
    _, res = train_and_evaluate(cfg, tr, va, te)
    assert res["accuracy"] > res["majority"]["accuracy"] + 0.05
    assert res["balanced_accuracy"] > 0.7


def test_mlp_beats_the_majority_class_within_kato(kato):
    from wormlab.behaviour import BehaviourConfig, kfold_within_worm, split_windows
    from wormlab.behaviour._train import train_and_evaluate

    cfg = BehaviourConfig().replace(model={"name": "mlp"}, train={"epochs": 8})
    split = kfold_within_worm(kato, 5, cfg.data.window)[2]
    tr, va, te, names = split_windows([kato], split, cfg.data)
    _, res = train_and_evaluate(cfg, tr, va, te)
    assert res["balanced_accuracy"] > 0.75
    assert res["accuracy"] > res["majority"]["accuracy"]


def test_cli_evaluate_on_shared_files(capsys):
    from wormlab.behaviour.cli import main
    from wormlab.paths import require_shared_data

    rec = require_shared_data("flavell2023", "recordings")
    files = [str(rec / f"2022-07-{d}-data.h5") for d in ("26-31", "26-38", "27-45")]
    rc = main(["evaluate", "--train", *files[:2], "--test", files[2], "--model", "svm",
               "--task", "fwd_rev", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    # 571 of the 747 test windows are forward, so always answering "forward" scores 0.764: the
    # baseline must be that fraction of the test labels, and the model must clear it (measured:
    # accuracy 0.838, balanced 0.664; majority 0.764, balanced 0.5)
    conf = np.array(out["confusion"])
    assert conf.sum() == out["n_test"] == 747
    assert out["majority_accuracy"] == pytest.approx(conf.sum(1).max() / conf.sum())
    assert out["accuracy"] == pytest.approx(np.trace(conf) / conf.sum())
    assert out["accuracy"] > out["majority_accuracy"] + 0.04
    assert out["balanced_accuracy"] > 0.6
    assert out["test"] == ["flavell2023/2022-07-27-45"] and len(out["neurons"]) > 40
    rc = main(["evaluate", "--train", files[0], "--test", files[0], "--model", "svm"])
    assert rc == 2 and "more than once" in capsys.readouterr().err
