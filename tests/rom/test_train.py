"""Training: loss falls on real simulated data, best-validation weights restored, splits."""

import numpy as np
import pytest
import torch

from wormlab import rom


@pytest.fixture(scope="module")
def data():
    return rom.smoke_dataset().resample(4)  # 4 ms steps keep the test fast


def test_loss_falls_and_best_validation_checkpoint_is_restored(data):
    cfg = rom.RomConfig(rom.ModelConfig("gru", 4), rom.TrainConfig(epochs=40, lr=2e-2))
    res = rom.train_model(data, cfg, show_progress=False)
    h = res.history
    assert min(h["train"][-5:]) < 0.85 * h["train"][0]
    assert res.best_epoch == int(np.argmin(h["val"]))
    # the returned weights are those of the best epoch, not the last one
    assert res.metrics["val_nrmse"] == pytest.approx(min(h["val"]), rel=1e-4)
    assert set(res.metrics) >= {"train_rmse", "val_rmse", "test_rmse", "test_nrmse"}
    # the reported RMSEs are the returned model's errors, in the data's unit (mV here) and on
    # outputs divided by the training sd, recomputed here independently in float64
    split = rom.split_indices(data, cfg.split)
    sd = data.outputs[:, split["train"]].std(axis=(0, 1), ddof=1)
    for k in ("train", "val", "test"):
        x = torch.as_tensor(data.inputs[:, split[k]], dtype=torch.float32)
        err = res.model.predict(x).numpy().astype(np.float64) - data.outputs[:, split[k]]
        assert res.metrics[f"{k}_rmse"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-4)
        assert res.metrics[f"{k}_nrmse"] == pytest.approx(np.sqrt(np.mean((err / sd) ** 2)),
                                                          rel=1e-4)
    assert res.model.meta["output_unit"] == data.output_unit == "mV"


def test_early_stopping_stops(data):
    cfg = rom.RomConfig(rom.ModelConfig("lstm", 3), rom.TrainConfig(epochs=200, lr=0.2,
                                                                    patience=3))
    res = rom.train_model(data, cfg, show_progress=False)
    assert len(res.history["val"]) < 200
    assert len(res.history["val"]) - 1 - res.best_epoch == 3


def test_packed_training_equals_single_models(data):
    split = rom.split_indices(data, rom.SplitConfig())
    tc = rom.TrainConfig(epochs=3)
    single = [rom.train_many(data, "gru", [h], [s], tc, split, show_progress=False)[0]
              for h, s in ((2, 5), (3, 6))]
    packed = rom.train_many(data, "gru", [2, 3], [5, 6], tc, split, show_progress=False)
    for a, b in zip(single, packed):
        np.testing.assert_allclose(a.history["val"], b.history["val"], rtol=1e-4)
        x = torch.as_tensor(data.inputs[:, :2], dtype=torch.float32)
        torch.testing.assert_close(a.model.predict(x), b.model.predict(x), rtol=1e-4, atol=1e-3)


def test_repeated_runs_mean_and_sd(data):
    cfg = rom.RomConfig(rom.ModelConfig("rnn", 3), rom.TrainConfig(epochs=2), runs=3)
    out = rom.repeated_runs(data, cfg, show_progress=False)
    vals = [r["test_rmse"] for r in out["runs"]]
    assert out["test_rmse"] == pytest.approx(np.mean(vals))
    assert out["test_rmse_sd"] == pytest.approx(np.std(vals, ddof=1))
    assert len(set(vals)) == 3  # different initialisations


def test_splits(data):
    s = rom.split_indices(data, rom.SplitConfig(seed=1))
    assert sorted(s["train"] + s["val"] + s["test"]) == list(range(len(data)))
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (6, 3, 3)
    assert s == rom.split_indices(data, rom.SplitConfig(seed=1))
    assert s != rom.split_indices(data, rom.SplitConfig(seed=2))
    n = data.names
    e = rom.split_indices(data, rom.SplitConfig(train=tuple(n[:4]), val=(n[4] + ".dat",),
                                                test=tuple(n[5:7])))
    assert e == {"train": [0, 1, 2, 3], "val": [4], "test": [5, 6]}
    with pytest.raises(ValueError, match="unknown sequences"):
        rom.split_indices(data, rom.SplitConfig(train=("x",), val=(n[0],), test=(n[1],)))
    with pytest.raises(ValueError, match="overlap"):
        rom.split_indices(data, rom.SplitConfig(train=(n[0],), val=(n[0],), test=(n[1],)))
    with pytest.raises(ValueError, match="all three"):
        rom.split_indices(data, rom.SplitConfig(train=(n[0],)))


def test_saliency_is_zero_for_a_disconnected_input(data):
    torch.manual_seed(0)
    m = rom.RomModel("gru", 4, 5, 4)
    with torch.no_grad():
        m.cell.weight_ih_l0[:, 1] = 0.0
    s = rom.gradient_saliency(m, data.inputs[:, :3])
    assert s.shape == (4, 4) and (s >= 0).all()
    assert np.all(s[1] == 0) and np.all(s[[0, 2, 3]] > 0)
    # value of one entry: mean over sequences of sum_t' |d sum_t y_k / d x_m(t')| / T (z-units)
    x = torch.as_tensor(data.inputs[:, :3], dtype=torch.float32)
    xn = ((x - m.x_mean) / m.x_std).requires_grad_(True)
    (g,) = torch.autograd.grad(m.forward_normalised(xn)[..., 2].sum(), xn)
    assert s[0, 2] == pytest.approx(float(g[..., 0].abs().sum(0).mean()) / x.shape[0], rel=1e-5)


def test_interrupted_pack_resumes_from_its_saved_epoch(data, tmp_path, monkeypatch):
    """A pack killed mid-training continues from its last saved epoch and ends exactly where
    an uninterrupted run ends (weights, histories, best epochs)."""
    import wormlab.rom._train as tr

    split = rom.split_indices(data, rom.SplitConfig())
    tc = rom.TrainConfig(epochs=8, lr=2e-2)
    full = rom.train_many(data, "gru", [2, 3], [5, 6], tc, split, show_progress=False)

    real = tr.progress
    seen: list[int] = []

    def stop_after(k):
        def fake(it, **kw):
            for j, e in enumerate(real(it, **kw)):
                if k is not None and j == k:
                    raise KeyboardInterrupt  # the kill, between two epochs
                seen.append(e)
                yield e
        return fake

    monkeypatch.setattr(tr, "progress", stop_after(5))
    with pytest.raises(KeyboardInterrupt):
        rom.train_many(data, "gru", [2, 3], [5, 6], tc, split, show_progress=False,
                       resume_dir=tmp_path, save_every_s=0.0)
    assert len(list(tmp_path.glob("*.resume.pt"))) == 1
    seen.clear()
    monkeypatch.setattr(tr, "progress", stop_after(None))
    resumed = rom.train_many(data, "gru", [2, 3], [5, 6], tc, split, show_progress=False,
                             resume_dir=tmp_path, save_every_s=0.0)
    assert seen == [5, 6, 7]  # it really resumed after epoch 4, the last one saved
    assert not list(tmp_path.glob("*.resume.pt"))  # removed once the pack finished
    x = torch.as_tensor(data.inputs[:, :3], dtype=torch.float32)
    for a, b in zip(full, resumed):
        assert a.best_epoch == b.best_epoch
        np.testing.assert_allclose(a.history["val"], b.history["val"], rtol=1e-6)
        np.testing.assert_allclose(a.history["train"], b.history["train"], rtol=1e-6)
        torch.testing.assert_close(a.model.predict(x), b.model.predict(x), rtol=0, atol=0)


def test_resume_state_of_other_settings_is_not_used(data, tmp_path):
    split = rom.split_indices(data, rom.SplitConfig())
    rom.train_many(data, "gru", [2], [0], rom.TrainConfig(epochs=2), split,
                   show_progress=False, resume_dir=tmp_path, save_every_s=0.0)
    # a stale state file of another pack (same name pattern, other fingerprint) is ignored
    import wormlab.rom._train as tr

    path, fp = tr._resume_file(tmp_path, data, "gru", [2], [0], rom.TrainConfig(epochs=3),
                               split)
    torch.save({"fingerprint": "other", "info": "{}"}, path)
    res = rom.train_many(data, "gru", [2], [0], rom.TrainConfig(epochs=3), split,
                         show_progress=False, resume_dir=tmp_path, save_every_s=0.0)
    assert len(res[0].history["val"]) == 3 and not path.exists()
    # an unreadable state file is an error naming the file, not a silent restart
    path.write_bytes(b"not a torch file")
    with pytest.raises(Exception, match=path.name):
        rom.train_many(data, "gru", [2], [0], rom.TrainConfig(epochs=3), split,
                       show_progress=False, resume_dir=tmp_path, save_every_s=0.0)
