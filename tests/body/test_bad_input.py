"""Issue 21, body: bad inputs raise errors naming the file/field/index; nothing half-written.

Covers the HDF5 data store (and its shards), the surrogate checkpoint, WCON files and NaN /
inf / negative muscle activations into ElegansBot and the surrogate.
"""

import json
import os
import pickle

import h5py
import numpy as np
import pytest
import torch

from wormlab import body
from wormlab.body._generate import consolidate


# ------------------------------------------------------------------ data store (HDF5)
def _specs(n=3):
    return [{"id": f"s{i}", "family": "sinusoid", "params": {"a": i}, "seed": i}
            for i in range(n)]


def _write_shards(parts, specs, T=6):
    parts.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for s in specs:
        np.savez(parts / f"{s['id']}.npz", meta=np.array(json.dumps(s)),
                 activation=rng.random((T, 95), dtype=np.float32),
                 com_um=rng.random((T, 2), dtype=np.float32),
                 tangent_rad=rng.random((T, 25), dtype=np.float32))


@pytest.fixture()
def store(tmp_path):
    """A real store written by the generator's own consolidate() from hand-made shards."""
    specs = _specs()
    parts = tmp_path / "d.h5.parts"
    _write_shards(parts, specs)
    path = tmp_path / "d.h5"
    consolidate(path, specs, parts, body.DataConfig(), body.PhysicsConfig(),
                body.MuscleConfig())
    return path


def _edit(src, dst, fn):
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        fn(f)
    return dst


def _set(name, value):
    def fn(f):
        del f[name]
        f[name] = value
    return fn


def _nan_tangent(f):
    a = f["tangent_rad"][:]
    a[1, 4, 3] = np.nan
    f["tangent_rad"][...] = a


STORE_CASES = {
    "truncated": (lambda p, q: q.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
                  "truncated or corrupt HDF5"),
    "empty": (lambda p, q: q.write_bytes(b""), "truncated or corrupt HDF5"),
    "not_hdf5": (lambda p, q: q.write_text("id,activation\n1,2\n"), "truncated or corrupt HDF5"),
    "missing_dataset": (lambda p, q: _edit(p, q, lambda f: f.__delitem__("com_um")),
                        "lacks the dataset 'com_um'"),
    "missing_attr": (lambda p, q: _edit(p, q, lambda f: f.attrs.__delitem__("frame_dt_s")),
                     "lacks the attribute 'frame_dt_s'"),
    "wrong_muscles": (lambda p, q: _edit(p, q, _set("activation", np.zeros((3, 6, 90)))),
                      "'activation' has shape (3, 6, 90)"),
    "wrong_count": (lambda p, q: _edit(p, q, _set("com_um", np.zeros((2, 6, 2)))),
                    "'com_um' has shape (2, 6, 2), expected (3, T, 2)"),
    "wrong_length": (lambda p, q: _edit(p, q, _set("tangent_rad", np.zeros((3, 5, 25)))),
                     "differ in length"),
    "nan": (lambda p, q: _edit(p, q, _nan_tangent), "'tangent_rad' holds NaN or inf (sample 's1', "
            "time index 4)"),
    "bad_meta": (lambda p, q: _edit(p, q, _set("meta_json", np.array([b"{}", b"{oops", b"{}"]))),
                 "meta_json of sample 1 is not valid JSON"),
    "bad_dt": (lambda p, q: _edit(p, q, lambda f: f.attrs.__setitem__("frame_dt_s", -0.04)),
               "'frame_dt_s' must be a positive number"),
}


def test_store_round_trip(store):
    d = body.load_store(store)
    assert d["activation"].shape == (3, 6, 95) and list(d["id"]) == ["s0", "s1", "s2"]
    assert d["meta"][2]["params"] == {"a": 2}


@pytest.mark.parametrize("case", sorted(STORE_CASES))
def test_bad_store_names_file_and_problem(store, tmp_path, case):
    make, message = STORE_CASES[case]
    bad = tmp_path / f"{case}.h5"
    make(store, bad)
    with pytest.raises(ValueError) as err:
        body.load_store(bad)
    assert str(bad) in str(err.value) and message in str(err.value), str(err.value)


def test_missing_store_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no body data store"):
        body.load_store(tmp_path / "absent.h5")


@pytest.mark.parametrize("damage", ["truncate", "wrong_shape"])
def test_corrupt_shard_leaves_no_store(tmp_path, damage):
    """consolidate() names the shard and writes nothing (no store, no temporary file)."""
    specs = _specs()
    parts = tmp_path / "d.h5.parts"
    _write_shards(parts, specs)
    if damage == "truncate":
        shard = parts / "s1.npz"
        shard.write_bytes(shard.read_bytes()[:100])
        message = "s1.npz: unreadable sample shard"
    else:
        _write_shards(parts, specs[2:], T=7)
        message = "shards disagree on the shape of 'activation'"
    with pytest.raises(ValueError, match=message):
        consolidate(tmp_path / "d.h5", specs, parts, body.DataConfig(), body.PhysicsConfig(),
                    body.MuscleConfig())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5.parts"]


# ------------------------------------------------------------------ surrogate checkpoint
@pytest.fixture(scope="module")
def saved_surrogate(tmp_path_factory):
    cfg = body.SurrogateConfig(hidden_channels=4, n_modes=4, n_layers=1, n_ensemble=1)
    model = body.Surrogate(cfg, frame_dt_s=0.04)
    path = tmp_path_factory.mktemp("sur") / "s.safetensors"
    body.save_surrogate(model, path, history={"epochs": 1})
    return path


def _resave(src, dst, *, meta=None, tensors=None):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), "pt") as f:
        m = f.metadata()
        t = {k: f.get_tensor(k) for k in f.keys()}
    m.update(meta or {})
    m = {k: v for k, v in m.items() if v is not None}
    t.update(tensors or {})
    save_file({k: v for k, v in t.items() if v is not None}, str(dst), metadata=m)
    return dst


def _first_weight(path):
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        k = next(k for k in f.keys() if k.startswith("members."))
        return k, f.get_tensor(k)


def test_surrogate_round_trip(saved_surrogate):
    model, hist = body.load_surrogate(saved_surrogate)
    assert hist == {"epochs": 1} and model.cfg.hidden_channels == 4


def test_bad_surrogate_checkpoints(saved_surrogate, tmp_path):
    """Each bad file raises ValueError naming the file and what is wrong (9 cases)."""
    src = saved_surrogate
    k, w = _first_weight(src)
    raw = src.read_bytes()
    nan_w = w.clone()
    nan_w.view(-1)[0] = float("nan")
    cases = {
        "trunc_half": (lambda p: p.write_bytes(raw[: len(raw) // 2]), "unreadable or truncated"),
        "trunc_tail": (lambda p: p.write_bytes(raw[:-4]), "unreadable or truncated"),
        "pickle": (lambda p: torch.save({k: w}, p), "not safetensors; wormlab never loads pickles"),
        "no_config": (lambda p: _resave(src, p, meta={"surrogate_config": None}),
                      "lacks 'surrogate_config'"),
        "bad_json": (lambda p: _resave(src, p, meta={"surrogate_config": "{not json"}),
                     "field 'surrogate_config' is not valid JSON"),
        "bad_dt": (lambda p: _resave(src, p, meta={"frame_dt_s": "fast"}),
                   "field 'frame_dt_s' is not a number"),
        "neg_dt": (lambda p: _resave(src, p, meta={"frame_dt_s": "-0.04"}),
                   "'frame_dt_s' must be a positive number"),
        "nan_weight": (lambda p: _resave(src, p, tensors={k: nan_w}), f"{k!r} contains NaN"),
        "wrong_shape": (lambda p: _resave(src, p, tensors={k: w[..., :1].contiguous()}),
                        "weights do not fit its config"),
        "unknown_field": (lambda p: _resave(src, p, meta={"surrogate_config": json.dumps(
            {"hidden_channels": 4, "no_such_field": 1})}), "config does not match"),
    }
    for name, (make, message) in cases.items():
        bad = tmp_path / f"{name}.safetensors"
        make(bad)
        with pytest.raises(ValueError) as err:
            body.load_surrogate(bad)
        assert str(bad) in str(err.value) and message in str(err.value), (name, str(err.value))
    with pytest.raises(FileNotFoundError, match="absent.safetensors"):
        body.load_surrogate(tmp_path / "absent.safetensors")


class _Exploit:
    """Unpickling this creates ``path`` (harmless stand-in for arbitrary code)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_crafted_pickle_at_surrogate_path_is_refused_unrun(tmp_path):
    marker = tmp_path / "marker"
    payload = pickle.dumps({"w": _Exploit(marker)}, protocol=2)
    pickle.loads(payload).get("w").close()  # the payload really runs when unpickled ...
    assert marker.exists()
    marker.unlink()
    bad = tmp_path / "s.safetensors"
    for data in (payload, pickle.dumps(_Exploit(marker), protocol=0)):
        bad.write_bytes(data)
        with pytest.raises(ValueError, match="not safetensors"):
            body.load_surrogate(bad)
        assert not marker.exists()  # ... and never ran here


# ------------------------------------------------------------------ WCON
def _traj():
    T = 5
    tan = np.pi + 0.1 * np.sin(np.arange(25))[None, None] * np.ones((T, 2, 1))
    com = np.cumsum(np.ones((T, 2, 2)), 0) * 10.0
    return body.Trajectory(np.arange(T) * 0.04, com, tan, body_length_um=1000.0)


def test_wcon_round_trip(tmp_path):
    tr = _traj()
    p = body.write_wcon(tmp_path / "w.wcon", tr, ids=["a", "b"])
    back = body.read_wcon(p)
    assert list(back) == ["a", "b"]
    np.testing.assert_allclose(back["b"]["points_um"], tr.points_um[:, 1], atol=1e-3)
    np.testing.assert_allclose(back["a"]["com_um"], tr.com_um[:, 0], atol=1e-3)
    np.testing.assert_allclose(back["a"]["t_s"], tr.t_s)


def _drop(doc, *keys):
    d = doc
    for k in keys[:-1]:
        d = d[k]
    del d[keys[-1]]
    return doc


WCON_CASES = {
    "no_units": (lambda d: _drop(d, "units"), "lacks the top-level field 'units'"),
    "no_data": (lambda d: _drop(d, "data"), "lacks the top-level field 'data'"),
    "no_t_unit": (lambda d: _drop(d, "units", "t"), "units block lacks 't'"),
    "no_x_unit": (lambda d: _drop(d, "units", "x"), "units block lacks 'x'"),
    "no_id": (lambda d: _drop(d, "data", 0, "id"), "data record 0 lacks 'id'"),
    "no_t": (lambda d: _drop(d, "data", 0, "t"), "'a' lacks 't'"),
    "no_x": (lambda d: _drop(d, "data", 1, "x"), "'b' lacks 'x'"),
    "no_y": (lambda d: _drop(d, "data", 1, "y"), "'b' lacks 'y'"),
    "one_centroid": (lambda d: _drop(d, "data", 0, "cy"), "only one of 'cx', 'cy'"),
    "bad_unit": (lambda d: {**d, "units": {**d["units"], "x": "furlong"}},
                 "unsupported length unit 'furlong'"),
    "text_x": (lambda d: (d["data"][0].__setitem__("x", "abc"), d)[1], "'x' is not numeric"),
    "short_y": (lambda d: (d["data"][0].__setitem__("y", d["data"][0]["y"][:-1]), d)[1],
                "'y' has 104 values for 5 times"),
    "time_backwards": (lambda d: (d["data"][0].__setitem__("t", [0, 1, 1, 2, 3]), d)[1],
                       "'t' must increase"),
}


@pytest.mark.parametrize("case", sorted(WCON_CASES))
def test_wcon_missing_or_bad_fields_are_named(tmp_path, case):
    good = body.write_wcon(tmp_path / "w.wcon", _traj(), ids=["a", "b"])
    doc = WCON_CASES[case][0](json.loads(good.read_text()))
    bad = tmp_path / f"{case}.wcon"
    bad.write_text(json.dumps(doc))
    with pytest.raises(ValueError) as err:
        body.read_wcon(bad)
    assert str(bad) in str(err.value) and WCON_CASES[case][1] in str(err.value), str(err.value)


def test_truncated_wcon(tmp_path):
    good = body.write_wcon(tmp_path / "w.wcon", _traj())
    bad = tmp_path / "t.wcon"
    bad.write_text(good.read_text()[:200])
    with pytest.raises(ValueError, match=f"{bad}: not a WCON file"):
        body.read_wcon(bad)


# ------------------------------------------------------------------ activations
def _act(T=6, B=2):
    return torch.full((T, B, 95), 0.3, dtype=torch.float64)


@pytest.mark.parametrize(("value", "kind"), [(float("nan"), "NaN"), (float("inf"), "inf"),
                                             (-0.2, "negative")])
def test_bad_activation_named_by_time_sample_and_muscle(value, kind):
    act = _act()
    act[4, 1, 12] = value
    want = (f"activation has {kind} value {value} at time index 4, sample 1, muscle "
            f"{body.MUSCLES[12]} (index 12)")
    for entry in (body.simulate, body.joint_commands):
        with pytest.raises(ValueError) as err:
            entry(act)
        assert want in str(err.value), (entry, str(err.value))


def test_bad_activation_into_surrogate_entry_points():
    model = body.Surrogate(body.SurrogateConfig(hidden_channels=4, n_modes=4, n_layers=1,
                                                n_ensemble=1), frame_dt_s=0.04)
    act = _act(T=8).float()
    act[2, 0, 40] = float("nan")
    want = f"at time index 2, sample 0, muscle {body.MUSCLES[40]} (index 40)"
    for call in (model, model.predict, model.commands,
                 lambda a: body.predict_with_fallback(model, a),
                 lambda a: body.speed_gradient(model, a)):
        with pytest.raises(ValueError, match=want.replace("(", r"\(").replace(")", r"\)")):
            call(act)
    model.predict(_act(T=8).float())  # a clean activation still runs


def test_bad_joint_commands_named():
    j = np.zeros((4, 1, 24))
    j[3, 0, 7] = np.inf
    with pytest.raises(ValueError, match="at time index 3, sample 0, joint 7"):
        body.simulate_joints(j)


def test_no_temp_files_left_by_failed_wcon_write(tmp_path):
    tr = _traj()
    with pytest.raises(ValueError, match="1 ids for 2 samples"):
        body.write_wcon(tmp_path / "w.wcon", tr, ids=["a"])
    assert os.listdir(tmp_path) == []
