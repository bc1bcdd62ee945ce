"""Trial sweeps: one atomic result per trial, resume after a kill, Dask, WCON export.
The trial function is the SYNTHETIC random walk (no circuit run in unit tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wormlab import loop
from wormlab.runs import _HOST

ARENAS = Path(loop.__file__).parent / "arenas"


@pytest.fixture(scope="module")
def walk():
    return loop.SyntheticWalk(loop.load_arena(ARENAS / "nacl_local.yml"), duration_s=4.0)


def _specs(n):
    return [{"seed": s, "start_um": [100.0 * s, 0.0], "heading_deg": 45.0 * s,
             "condition": "gradient" if s % 2 else "no_gradient"} for s in range(n)]


class Counting:
    """The walk, counting its calls (sync runs only)."""

    def __init__(self, fn, fail_on=None):
        self.fn, self.calls, self.fail_on = fn, [], fail_on

    def __call__(self, spec):
        if spec["seed"] == self.fail_on:
            raise RuntimeError(f"trial {spec['seed']} killed")
        self.calls.append(spec["seed"])
        return self.fn(spec)


def test_sync_sweep_writes_one_result_per_trial_equal_to_the_function(walk, tmp_path):
    specs = _specs(3)
    r = loop.run_trials(walk, specs, tmp_path, client="sync", progress=False)
    assert (r["n_total"], r["n_computed"], r["n_skipped"]) == (3, 3, 0)
    for s, tid in zip(specs, r["ids"]):
        meta, arr = loop.load_trial(tmp_path, s)
        assert meta["spec"] == s and meta["id"] == tid
        ref = walk(s)
        assert set(arr) == set(ref)
        for k in ref:
            np.testing.assert_array_equal(arr[k], ref[k])
    st = loop.load_trials(tmp_path, specs)
    assert st["com_um"].shape == (101, 3, 2) and st["t_s"].shape == (101, 3)
    assert not list(tmp_path.glob(".*.tmp"))


def test_resume_skips_finished_trials_and_redoes_half_written_ones(walk, tmp_path):
    specs = _specs(5)
    first = Counting(walk, fail_on=3)  # the sweep "dies" at trial 3
    with pytest.raises(RuntimeError, match="trial 3 killed"):
        loop.run_trials(first, specs, tmp_path, client="sync", progress=False)
    assert first.calls == [0, 1, 2]
    ids = [loop.trial_id(s) for s in specs]
    # a killed writer's temporary (dead pid), and trial 2 with its JSON marker lost
    (tmp_path / f".{ids[4]}.npz.{_HOST}.999999999.x.tmp").write_bytes(b"junk")
    (tmp_path / f"{ids[2]}.json").unlink()
    # trial 1 with a truncated npz
    p1 = tmp_path / f"{ids[1]}.npz"
    p1.write_bytes(p1.read_bytes()[:50])
    # trial 0 with a readable npz that lacks one of the arrays its JSON lists
    with np.load(tmp_path / f"{ids[0]}.npz") as z:
        part = {k: z[k] for k in z.files if k != "turns"}
    np.savez(tmp_path / f"{ids[0]}.npz", **part)
    again = Counting(walk)
    r = loop.run_trials(again, specs, tmp_path, client="sync", progress=False)
    assert sorted(again.calls) == [0, 1, 2, 3, 4]
    assert (r["n_computed"], r["n_skipped"]) == (5, 0)
    assert not list(tmp_path.glob(".*.tmp"))
    third = Counting(walk)
    r = loop.run_trials(third, specs, tmp_path, client="sync", progress=False)
    assert third.calls == [] and r["n_skipped"] == 5
    assert "turns" in loop.load_trial(tmp_path, specs[0])[1]


def test_same_id_with_another_spec_is_refused(walk, tmp_path):
    s = {"id": "w1", "seed": 0, "start_um": [0.0, 0.0]}
    loop.run_trials(walk, [s], tmp_path, client="sync", progress=False)
    with pytest.raises(ValueError, match="w1.json: trial 'w1' was run with another spec"):
        loop.run_trials(walk, [dict(s, seed=1)], tmp_path, client="sync", progress=False)
    with pytest.raises(ValueError, match="duplicate trial ids"):
        loop.run_trials(walk, [dict(s, id="a"), dict(s, id="a", seed=2)], tmp_path,
                        client="sync")
    with pytest.raises(ValueError, match="trial id '../x'"):
        loop.trial_id({"id": "../x"})
    with pytest.raises(ValueError, match="not JSON-able"):
        loop.run_trials(walk, [{"seed": float("nan")}], tmp_path, client="sync")
    assert loop.trial_id({"b": 1, "a": 2}) == loop.trial_id({"a": 2, "b": 1})


def test_results_of_a_differently_configured_fn_are_refused(walk, tmp_path):
    import dataclasses

    specs = _specs(2)
    loop.run_trials(walk, specs, tmp_path, client="sync", progress=False, config=walk.config())
    r = loop.run_trials(walk, specs, tmp_path, client="sync", progress=False,
                        config=walk.config())
    assert r["n_skipped"] == 2
    other = dataclasses.replace(walk, gain=2.0)
    with pytest.raises(ValueError, match="was run with another fn config"):
        loop.run_trials(other, specs, tmp_path, client="sync", config=other.config())


def test_bad_trial_results_name_the_trial(tmp_path):
    with pytest.raises(TypeError, match="trial 'x': fn must return a non-empty dict"):
        loop.run_trials(lambda s: [1, 2], [{"id": "x"}], tmp_path, client="sync")
    with pytest.raises(TypeError, match="trial 'y': result 'a' is not a numeric array"):
        loop.run_trials(lambda s: {"a": np.array(["s"])}, [{"id": "y"}], tmp_path,
                        client="sync")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_dask_sweep_matches_the_in_process_results(walk, tmp_path):
    specs = _specs(4)
    r = loop.run_trials(walk, specs, tmp_path / "dask", progress=False)  # LocalCluster
    assert r["n_computed"] == 4
    loop.run_trials(walk, specs, tmp_path / "sync", client="sync", progress=False)
    a = loop.load_trials(tmp_path / "dask", specs)
    b = loop.load_trials(tmp_path / "sync", specs)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    meta = json.loads((tmp_path / "dask" / f"{r['ids'][0]}.json").read_text())
    assert meta["arrays"]["com_um"]["shape"] == [101, 2]


def test_trial_track_written_as_wcon_reads_back(walk, tmp_path):
    from wormlab.body import read_wcon

    res = walk({"seed": 2, "start_um": [500.0, -300.0], "heading_deg": 60.0})
    p = loop.write_trial_wcon(tmp_path / "trial_synthetic.wcon", res, ids=["synthetic-2"],
                              metadata={"synthetic": True}, source="synthetic-walk")
    back = read_wcon(p)["synthetic-2"]
    np.testing.assert_allclose(back["t_s"], res["t_s"])
    np.testing.assert_allclose(back["com_um"], res["com_um"], atol=1e-3)  # 1e-6 mm rounding
    # the first midline point is the head the walk sensed with
    np.testing.assert_allclose(back["points_um"][:, 0], res["head_um"], atol=1e-3)
    doc = json.loads(p.read_text())
    assert doc["metadata"]["synthetic"] is True
    with pytest.raises(KeyError, match="lacks 'tangent_rad'"):
        loop.write_trial_wcon(tmp_path / "x.wcon", {"t_s": res["t_s"], "com_um": res["com_um"]})
