"""Data generator on dask.distributed: HDF5 store, provenance, resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from wormlab import body

SPECS = {"sinusoid": 4, "single_muscle": 1, "nominal": 1}


def _data():
    return body.DataConfig(duration_s=1.0, n_per_family=SPECS)


def test_generate_store_has_samples_params_and_versions(tmp_path, client):
    res = body.generate(tmp_path / "d.h5", _data(), scheduler=client)
    assert res["complete"] and res["n_computed"] == 6
    d = body.load_store(tmp_path / "d.h5")
    assert d["activation"].shape == (6, 26, 95) and d["com_um"].shape == (6, 26, 2)
    m = d["meta"][0]
    assert m["versions"]["elegansbot"] == "1.0.2" and "params" in m and "physics" in m
    spec = body.sample_specs(SPECS)[0]
    ref = body.simulate_spec(spec, 26, body.PhysicsConfig(), body.MuscleConfig())
    i = list(d["id"]).index(spec["id"])
    assert np.allclose(d["com_um"][i], ref["com_um"])
    again = body.generate(tmp_path / "d.h5", _data(), scheduler=client)
    assert again["n_computed"] == 0 and again["n_skipped"] == 6


def test_changed_spec_with_same_id_is_redone(tmp_path, client):
    body.generate(tmp_path / "d.h5", _data(), scheduler=client)
    res = body.generate(tmp_path / "d.h5", body.DataConfig(
        duration_s=1.0, n_per_family=SPECS, seed=5), scheduler=client)
    assert res["n_computed"] == 6  # same ids, other parameters: nothing stale reused


@pytest.mark.slow
def test_resume_after_kill(tmp_path, client):
    specs = {"sinusoid": 16}
    store = tmp_path / "d.h5"
    parts = tmp_path / "d.h5.parts"
    script = textwrap.dedent(f"""
        from wormlab import body
        if __name__ == "__main__":
            body.generate({str(store)!r}, body.DataConfig(duration_s=1.0,
                          n_per_family={specs!r}), n_workers=1)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                            env=dict(os.environ, WORMLAB_PROGRESS="0"))
    t0 = time.time()
    while time.time() - t0 < 240:
        if parts.exists() and len(list(parts.glob("*.npz"))) >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the generator and its dask workers, mid-run
    proc.wait()
    done = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.npz")}
    assert 2 <= len(done) < 16, f"kill did not land mid-run ({len(done)} shards)"
    assert not store.exists()
    res = body.generate(store, body.DataConfig(duration_s=1.0, n_per_family=specs),
                        scheduler=client)
    assert res["complete"] and res["n_skipped"] == len(done)
    assert res["n_computed"] == 16 - len(done)
    for name, mtime in done.items():  # finished samples were neither redone nor lost
        assert (parts / name).stat().st_mtime_ns == mtime
    d = body.load_store(store)
    assert len(d["id"]) == 16 and np.isfinite(d["com_um"]).all()
    assert all(json.dumps(m["params"]) for m in d["meta"])
