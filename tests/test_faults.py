"""Faults (issue 21): SIGKILL every long job mid-way and resume it, a dying Dask worker,
two processes writing the same table at once.

Each kill/resume test starts the job's real entry point in a subprocess at a tiny size, polls
the file system until the job has written its first row / shard / checkpoint, SIGKILLs the
whole process group, reruns the same command (its resume path) and compares the result with
an uninterrupted run in another folder: bitwise where the job is deterministic. No temporary
(``atomic_path``'s ``.*.tmp``) may be left behind once the resumed job has finished.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

ENV = dict(os.environ, WORMLAB_PROGRESS="0", WORMLAB_THREADS="1")
CLI = [sys.executable, "-m", "wormlab.cli"]


def _run(cmd, timeout=300) -> None:
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stderr[-3000:]}"


def _kill_when(cmd, ready, timeout=180) -> None:
    """Start ``cmd``, SIGKILL its process group as soon as ``ready()``; fail if the job
    finished (or failed) before that, or never got there."""
    proc = subprocess.Popen(cmd, env=ENV, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    try:
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"{cmd} ended (rc {proc.returncode}) before it could be killed "
                            f"mid-way:\n{proc.stderr.read()[-3000:]}")
            if time.time() - t0 > timeout:
                pytest.fail(f"{cmd} wrote nothing to resume from in {timeout} s")
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()


def _leftovers(folder: Path) -> list[str]:
    """Temporaries of ``atomic_path`` (``.<name>.<host>.<pid>.<random>.tmp``) under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.tmp"))


def _plant_orphan(folder: Path, name: str) -> Path:
    """A temporary as a writer killed inside ``atomic_path`` leaves it (a dead pid): the kill
    rarely lands inside the write itself, so the tests also plant one."""
    from wormlab.runs import _HOST

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    p = folder / f".{name}.{_HOST}.{dead.pid}.abc123.tmp"
    p.write_text("half-written")
    return p


# ------------------------------------------------------------------------------ helpers
def test_remove_orphan_tmp_keeps_live_writers_and_other_files(tmp_path):
    from wormlab.runs import _HOST, atomic_path, remove_orphan_tmp

    orphan = _plant_orphan(tmp_path, "table.json")
    live = tmp_path / f".table.json.{_HOST}.{os.getpid()}.xyz789.tmp"  # this process: alive
    live.write_text("being written")
    other_host = tmp_path / f".table.json.otherhost.{1}.xyz789.tmp"
    other_host.write_text("another machine's writer")
    unrelated = tmp_path / ".notes.tmp"
    unrelated.write_text("not ours")
    assert remove_orphan_tmp(tmp_path) == [orphan]
    assert not orphan.exists() and live.exists() and other_host.exists() and unrelated.exists()
    with atomic_path(tmp_path / "x.json") as tmp:  # the name atomic_path uses is recognised
        assert remove_orphan_tmp(tmp_path) == [] and tmp.exists()
        assert tmp.name.startswith(f".x.json.{_HOST}.{os.getpid()}.")
    assert remove_orphan_tmp(tmp_path / "absent") == []


# ------------------------------------------------------------------------------ rom tables
def _rom_table(folder: Path, data: Path) -> list[str]:
    return [*CLI, "rom", "experiment", "arch", "--data", str(data), "--out",
            str(folder / "arch.json"), "--runs", "1", "--epochs", "2", "--quiet"]


def _rom_rows(path: Path) -> dict:
    try:
        return json.loads(path.read_text())["rows"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return {}


def _rom_result(folder: Path) -> tuple[dict, dict]:
    table = json.loads((folder / "arch.json").read_text())
    rows = {k: {m: v for m, v in r.items() if m != "seconds_all_packed"}  # wall time
            for k, r in table["rows"].items()}
    models = {p.name: p.read_bytes() for p in sorted((folder / "arch_models").iterdir())}
    return rows, models


@pytest.fixture(scope="module")
def rom_data(tmp_path_factory):
    from wormlab import rom

    path = tmp_path_factory.mktemp("romdata") / "d.npz"
    rom.save_npz(rom.smoke_dataset().resample(5), path)
    return path


@pytest.mark.slow
def test_rom_table_killed_and_resumed_equals_uninterrupted(tmp_path, rom_data):
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    _run(_rom_table(ref, rom_data))
    _kill_when(_rom_table(cut, rom_data), lambda: 1 <= len(_rom_rows(cut / "arch.json")))
    done = _rom_rows(cut / "arch.json")
    assert 1 <= len(done) < 6, f"the kill did not land mid-table ({len(done)} rows)"
    orphan = _plant_orphan(cut, "arch.json")
    _run(_rom_table(cut, rom_data))
    assert not orphan.exists() and _leftovers(cut) == []
    rows, models = _rom_result(cut)
    rows_ref, models_ref = _rom_result(ref)
    assert list(rows) == list(rows_ref) and rows == rows_ref  # metrics: bitwise (floats in JSON)
    assert models.keys() == models_ref.keys() and models == models_ref  # weights: bitwise


@pytest.mark.slow
def test_two_processes_writing_one_rom_table_give_one_valid_table(tmp_path, rom_data):
    """One table run by two processes at once in one folder, each its own rows (``--rows``;
    their writes merge under the table's lock): one valid JSON with every row, equal to the
    same commands run one after the other, no temporaries left."""
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    cmds = [lambda f, r=r: [*_rom_table(f, rom_data), "--rows", r]
            for r in ("GRU-8,LSTM-8,RNN-16", "GRU-32,LSTM-32,RNN-64")]
    procs = [subprocess.Popen(c(shared), env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for c in cmds]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    for c in cmds:
        _run(c(alone))
    got, models = _rom_result(shared)
    want, models_alone = _rom_result(alone)
    assert list(got) == ["GRU-8", "GRU-32", "LSTM-8", "LSTM-32", "RNN-16", "RNN-64"]
    assert got == want and models == models_alone
    assert _leftovers(shared) == []


# ------------------------------------------------------------------------------ posture LSTM
POSTURE_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from wormlab import posture as P
    from wormlab.posture._lstm import train_lstm
    recs = [P.synthetic_recording(300, 20, 10.0, seed=i) for i in range(2)]
    basis = P.fit_pca(np.concatenate([P.split_mean_angle(r.angles)[0] for r in recs]), 4)
    ser = [P.shape_series(r.angles, basis) for r in recs]
    cfg = P.LSTMConfig(layers=2, hidden=8, dropout=0.1, epochs=5, batch_size=16, lr=3e-3,
                       val_fraction=0.2)
    train_lstm(ser, cfg, seed=3, checkpoint=sys.argv[1], max_steps_per_epoch=6)
""")


def _posture_result(ck: Path) -> dict:
    from wormlab.io import read_safetensors

    meta = json.loads(ck.with_suffix(".json").read_text())
    meta.pop("seconds")  # wall time
    return {"meta": meta,
            **{s: {k: v.numpy() for k, v in read_safetensors(ck.with_suffix(s), "ck")[0].items()}
               for s in (".safetensors", ".best.safetensors")}}


def _epochs_done(ck: Path) -> int:
    try:
        return json.loads(ck.with_suffix(".json").read_text())["epochs_done"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


@pytest.mark.slow
def test_posture_lstm_killed_and_resumed_equals_uninterrupted(tmp_path):
    ref, cut = tmp_path / "ref" / "lstm", tmp_path / "cut" / "lstm"
    cmd = lambda ck: [sys.executable, "-c", POSTURE_SCRIPT, str(ck)]  # noqa: E731
    _run(cmd(ref))
    _kill_when(cmd(cut), lambda: _epochs_done(cut) >= 1)
    assert 1 <= _epochs_done(cut) < 5, "the kill did not land mid-training"
    orphan = _plant_orphan(cut.parent, "lstm.safetensors")
    _run(cmd(cut))
    assert not orphan.exists() and _leftovers(cut.parent) == []
    a, b = _posture_result(cut), _posture_result(ref)
    assert a["meta"] == b["meta"]  # losses of every epoch, bitwise
    for s in (".safetensors", ".best.safetensors"):
        assert a[s].keys() == b[s].keys()
        for k in a[s]:
            np.testing.assert_array_equal(a[s][k], b[s][k], err_msg=f"{s} {k}")


def test_posture_lstm_checkpoint_files_from_two_epochs_are_not_resumed(tmp_path):
    """A kill between the checkpoint's files (weights written for epoch 4, the JSON still at
    epoch 3) must not resume epoch-4 weights as if they were epoch 3's: training restarts and
    ends as an uninterrupted run does."""
    from wormlab import posture as P
    from wormlab.posture._lstm import train_lstm

    recs = [P.synthetic_recording(400, 20, 10.0, seed=i) for i in range(2)]
    basis = P.fit_pca(np.concatenate([P.split_mean_angle(r.angles)[0] for r in recs]), 3)
    ser = [P.shape_series(r.angles, basis) for r in recs]
    cfg = P.LSTMConfig(layers=1, hidden=8, dropout=0.1, epochs=4, batch_size=16,
                       val_fraction=0.2, patience=100)
    ref = train_lstm(ser, cfg, seed=1, checkpoint=tmp_path / "ref" / "m", max_steps_per_epoch=3)
    ck = tmp_path / "cut" / "m"
    train_lstm(ser, cfg, seed=1, checkpoint=ck, max_steps_per_epoch=3)
    meta = json.loads(ck.with_suffix(".json").read_text())
    meta.update(epochs_done=3, train_loss=meta["train_loss"][:3], val_loss=meta["val_loss"][:3])
    ck.with_suffix(".json").write_text(json.dumps(meta))
    again = train_lstm(ser, cfg, seed=1, checkpoint=ck, max_steps_per_epoch=3)
    assert np.isfinite(ref.val_loss).all()
    assert again.train_loss == ref.train_loss and again.val_loss == ref.val_loss
    for (k, a), b in zip(again.model.state_dict().items(), ref.model.state_dict().values(),
                         strict=True):
        assert torch.equal(a, b), k


# ------------------------------------------------------------------------------ surrogate
SURROGATE_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from wormlab.body._config import SurrogateConfig
    from wormlab.body._surrogate import split_data, train_surrogate
    from wormlab.runs import configure_torch, seed_everything
    configure_torch()
    seed_everything(0)
    # SYNTHETIC stand-in data (random activations and trajectories): resuming does not
    # depend on what the samples are, and ElegansBot would dominate the test's time
    rng = np.random.default_rng(0)
    n, T = 16, 26
    d = {"activation": rng.uniform(0, 1, (n, T, 95)).astype(np.float32),
         "com_um": np.cumsum(rng.normal(0, 5, (n, T, 2)), 1).astype(np.float32),
         "tangent_rad": rng.normal(0, 0.3, (n, T, 25)).astype(np.float32),
         "family": np.array(["sinusoid"] * n), "id": np.array([f"s{i}" for i in range(n)])}
    cfg = SurrogateConfig(hidden_channels=8, n_modes=4, n_layers=1, n_ensemble=2,
                          error_head=False, epochs=6, batch_size=4, lr=3e-3)
    train_surrogate(split_data(d, cfg), cfg, 0.04, 1000.0, checkpoint=sys.argv[1],
                    progress=False)
""")


@pytest.mark.slow
def test_surrogate_training_killed_and_resumed_equals_uninterrupted(tmp_path):
    from wormlab.body._surrogate import _resume_path, _tensors, load_surrogate

    ref, cut = tmp_path / "ref" / "m.safetensors", tmp_path / "cut" / "m.safetensors"
    cmd = lambda ck: [sys.executable, "-c", SURROGATE_SCRIPT, str(ck)]  # noqa: E731
    _run(cmd(ref))
    state = _resume_path(cut)
    _kill_when(cmd(cut), state.exists)
    assert state.exists() and not cut.exists(), "the kill did not land mid-training"
    orphan = _plant_orphan(cut.parent, state.name)
    _run(cmd(cut))
    assert not orphan.exists() and not state.exists() and _leftovers(cut.parent) == []
    (m_a, h_a), (m_b, h_b) = load_surrogate(cut), load_surrogate(ref)
    for h in (h_a, h_b):
        h.pop("wall_s")
    assert h_a == h_b  # per-epoch losses, best epoch, calibration: bitwise
    sa, sb = (_tensors(m_a), _tensors(m_b))
    assert sa.keys() == sb.keys() and len(sa) > 10
    for k in sa:
        assert np.array_equal(sa[k].numpy(), sb[k].numpy()), k


# ------------------------------------------------------------------------------ behaviour
def _behaviour_cmd(out: Path) -> list[str]:
    return [*CLI, "behaviour", "experiment", "kato_kfold", "--models", "svm", "mlp",
            "--max-splits", "1", "--epochs", "3", "--out", str(out)]


def _behaviour_rows(out: Path) -> list[dict]:
    try:
        rows = json.loads(out.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    for r in rows:
        r.pop("seconds")  # wall time
    return rows


@pytest.mark.slow
def test_behaviour_experiment_killed_and_resumed_equals_uninterrupted(tmp_path):
    from wormlab.paths import shared_data_dir

    if shared_data_dir() is None or not (shared_data_dir() / "kato2015").exists():
        pytest.skip("Kato 2015 recordings (shared data) absent")
    ref, cut = tmp_path / "ref" / "k.json", tmp_path / "cut" / "k.json"
    _run(_behaviour_cmd(ref))
    _kill_when(_behaviour_cmd(cut), lambda: len(_behaviour_rows(cut)) >= 1)
    assert len(_behaviour_rows(cut)) == 1, "the kill did not land between the two rows"
    orphan = _plant_orphan(cut.parent, "k.json")
    _run(_behaviour_cmd(cut))
    assert not orphan.exists() and _leftovers(cut.parent) == []
    assert _behaviour_rows(cut) == _behaviour_rows(ref)  # accuracies, confusions: bitwise


# ------------------------------------------------------------------------------ body data
def _body_cmd(store: Path) -> list[str]:
    return [*CLI, "body", "generate", "--store", str(store), "--duration", "1.0",
            "--nominal", "1", "--group-scaled", "0", "--sinusoid", "3", "--single-muscle", "0",
            "--workers", "1"]


def _store_arrays(store: Path) -> dict:
    from wormlab import body

    d = body.load_store(store)
    return {k: d[k] for k in ("id", "family", "activation", "com_um", "tangent_rad")}


@pytest.mark.slow
def test_body_generation_killed_and_resumed_equals_uninterrupted(tmp_path):
    ref, cut = tmp_path / "ref" / "d.h5", tmp_path / "cut" / "d.h5"
    parts = cut.with_name("d.h5.parts")
    _run(_body_cmd(ref))
    _kill_when(_body_cmd(cut), lambda: parts.exists() and len(list(parts.glob("*.npz"))) >= 1)
    n_done = len(list(parts.glob("*.npz")))
    assert 1 <= n_done < 4 and not cut.exists(), "the kill did not land mid-run"
    orphans = [_plant_orphan(parts, "s.npz"), _plant_orphan(cut.parent, "d.h5")]
    _run(_body_cmd(cut))
    assert not any(o.exists() for o in orphans) and _leftovers(cut.parent) == []
    a, b = _store_arrays(cut), _store_arrays(ref)
    for k in a:  # ElegansBot is deterministic: bitwise
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.slow
def test_a_dying_dask_worker_loses_and_repeats_no_sample(tmp_path):
    """SIGKILL one of two worker processes once the first shard exists: the sweep still
    finishes, with every sample id exactly once in the store and one shard per id."""
    from dask.distributed import Client, LocalCluster

    from wormlab import body

    specs = body.sample_specs({"sinusoid": 6})
    store = tmp_path / "d.h5"
    parts = tmp_path / "d.h5.parts"
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    client = Client(cluster)
    try:
        import threading

        killed = {}

        def killer():
            t0 = time.time()
            while time.time() - t0 < 120 and not list(parts.glob("*.npz")):
                time.sleep(0.02)
            pids = client.run(os.getpid)  # {worker address: pid}
            addr, pid = sorted(pids.items())[0]
            killed.update(addr=addr, pid=pid, n_shards=len(list(parts.glob("*.npz"))))
            os.kill(pid, signal.SIGKILL)

        th = threading.Thread(target=killer)
        th.start()
        res = body.generate(store, body.DataConfig(duration_s=1.0), specs=specs,
                            scheduler=client)
        th.join()
    finally:
        client.close()
        cluster.close()
    assert killed and killed["n_shards"] < len(specs), f"kill not mid-sweep: {killed}"
    assert res["complete"] and res["n_missing"] == 0
    ids = list(body.load_store(store)["id"])
    want = sorted(s["id"] for s in specs)
    assert sorted(ids) == want and len(set(ids)) == len(ids)
    assert sorted(p.stem for p in parts.glob("*.npz")) == want
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------------------------------ fits
@pytest.mark.slow
def test_fit_killed_and_resumed_equals_uninterrupted(tmp_path):
    """``wormlab fit run`` (Adam) SIGKILLed after its first epoch checkpoint, then re-run:
    the same losses, parameters and result as a run that was never killed; no temporaries."""
    def cfg(folder):
        p = tmp_path / f"{folder}.yml"
        p.write_text(f"""
name: {folder}
network: {{cells: [AVAL, AVAR, AVBL, PVCL]}}
parameters: [g_ca, e_leak]
target: {{kind: ground_truth, perturb: {{g_ca: 1.2, e_leak: 0.9}}}}
stimulus: {{AVAL: 0.006, PVCL: 0.006}}
window_ms: 2.0
n_windows: 2
max_epochs: 8
learning_rate: 0.1
out_dir: {tmp_path / folder}
""")
        return p

    _run([*CLI, "fit", "run", str(cfg("whole"))])
    ck = tmp_path / "killed" / "adam" / "state.safetensors"
    _kill_when([*CLI, "fit", "run", str(cfg("killed"))], ck.exists)
    assert not (tmp_path / "killed" / "result.json").exists()
    orphan = _plant_orphan(tmp_path / "killed" / "adam", "state.safetensors")
    _run([*CLI, "fit", "run", str(cfg("killed"))])
    a = json.loads((tmp_path / "whole" / "result.json").read_text())
    b = json.loads((tmp_path / "killed" / "result.json").read_text())
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    assert a["params"] == b["params"] and a["loss"] == b["loss"]
    # it really resumed (a restart from scratch would give the same numbers: deterministic)
    assert a["resumed_from"] == 0 and 1 <= b["resumed_from"] < 8
    assert not orphan.exists() and _leftovers(tmp_path) == []
