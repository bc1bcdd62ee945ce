"""Issue 21: untrusted files and bad parameters outside the body package.

- No pickle is ever loaded: a crafted pickle (its unpickling creates a marker file) placed at
  every checkpoint path is refused and the marker never appears; a static audit of the source.
- Checkpoints (SAE, behaviour decoder, posture LSTM) and circuit parameter files: truncated,
  foreign, missing fields, bad JSON, NaN, wrong shapes -> ValueError naming file and problem.
- Notebook parameters: bad bool/int/float (NaN, inf) -> NotebookError before any kernel.
"""

import json
import pickle
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import wormlab
from wormlab.io import CheckpointError, load_torch_weights, read_safetensors


class _Exploit:
    """Unpickling this creates ``path``: a harmless stand-in for arbitrary code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _plant(path: Path, marker: Path, kind: str) -> None:
    """Write a crafted pickle at ``path`` in one of the forms a checkpoint could take."""
    obj = {"weight": _Exploit(marker)}
    if kind == "torch_zip":
        torch.save(obj, path)
    else:
        path.write_bytes(pickle.dumps(obj, protocol={"pickle0": 0, "pickle2": 2,
                                                     "pickle5": 5}[kind]))


KINDS = ("pickle0", "pickle2", "pickle5", "torch_zip")


def test_the_crafted_pickle_really_runs_when_unpickled(tmp_path):
    """Guards the guard: every planted form executes its payload under a plain loader."""
    for kind in KINDS:
        marker = tmp_path / f"m_{kind}"
        _plant(tmp_path / "x", marker, kind)
        if kind == "torch_zip":
            torch.load(tmp_path / "x", weights_only=False)["weight"].close()
        else:
            pickle.loads((tmp_path / "x").read_bytes())["weight"].close()
        assert marker.exists(), kind


def _loaders(tmp: Path):
    """(name, checkpoint path, loader) for every checkpoint loader in wormlab."""
    from wormlab import sae
    from wormlab.behaviour._train import Decoder
    from wormlab.body import load_surrogate
    from wormlab.posture._lstm import load_lstm
    from wormlab.rom import load_model

    (tmp / "lstm.json").write_text(json.dumps({"n_channels": 3, "config": {
        "layers": 1, "hidden": 4, "dropout": 0.0}}))
    return [
        ("sae", tmp / "sae.safetensors", sae.load_checkpoint),
        ("behaviour", tmp / "dec.safetensors", Decoder.load),
        ("surrogate", tmp / "sur.safetensors", load_surrogate),
        ("posture", tmp / "lstm.safetensors", lambda p: load_lstm(p, best=False)),
        ("posture_opt", tmp / "lstm.opt.pt", lambda p: load_torch_weights(p, "optimiser state")),
        ("rom", tmp / "rom.safetensors", load_model),
        ("io", tmp / "any.safetensors", read_safetensors),
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_crafted_pickle_is_refused_by_every_loader(tmp_path, kind):
    marker = tmp_path / "marker"
    for name, path, load in _loaders(tmp_path):
        _plant(path, marker, kind)
        with pytest.raises(Exception) as err:  # noqa: PT011 - rom raises its own type
            load(path)
        assert not marker.exists(), f"{name}: the pickle ran"
        if name != "rom":  # rom's loader belongs to another engineer: refusal only
            assert isinstance(err.value, ValueError) and str(path) in str(err.value), (
                name, str(err.value))


def test_circuit_parameter_file_pickle_refused(tmp_path, tiny_net):
    from wormlab import circuit

    marker = tmp_path / "marker"
    for kind in KINDS:
        _plant(tmp_path / "p.safetensors", marker, kind)
        with pytest.raises(ValueError, match="p.safetensors"):
            circuit.load_parameters(tiny_net, tmp_path / "p.safetensors")
        assert not marker.exists()


_UNSAFE = re.compile(r"torch\.load\((?![^)]*weights_only=True)|allow_pickle\s*=\s*True|"
                     r"pickle\.loads?\(|joblib\.load|dill\.load|cloudpickle\.load|"
                     r"pd\.read_pickle|numpy\.load\([^)]*allow_pickle=True")


def test_source_audit_no_pickle_loading():
    """No module in wormlab loads a pickle (``torch.load`` only with ``weights_only=True``)."""
    root = Path(wormlab.__file__).parent
    hits = []
    for f in sorted(root.rglob("*.py")):
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if _UNSAFE.search(line) and not line.lstrip().startswith("#"):
                hits.append(f"{f.relative_to(root)}:{i}: {line.strip()}")
    assert not hits, "pickle-capable loads:\n" + "\n".join(hits)
    assert _UNSAFE.search("x = torch.load(p)") and _UNSAFE.search("np.load(p, allow_pickle=True)")


# ------------------------------------------------------------------ safetensors framing helper
def test_read_safetensors_framing(tmp_path):
    p = tmp_path / "a.safetensors"
    save_file({"w": torch.ones(4, 4), "i": torch.arange(3)}, str(p), metadata={"k": "v"})
    t, m = read_safetensors(p)
    assert m == {"k": "v"} and torch.equal(t["w"], torch.ones(4, 4))
    raw = p.read_bytes()
    cases = {"empty": b"", "short": raw[:5], "header_cut": raw[:20], "data_cut": raw[:-3],
             "garbage": b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}",
             "npy": b"\x93NUMPY" + raw, "hdf5": b"\x89HDF\r\n\x1a\n" + raw}
    for name, data in cases.items():
        q = tmp_path / f"{name}.safetensors"
        q.write_bytes(data)
        with pytest.raises(CheckpointError, match=re.escape(str(q))):
            read_safetensors(q)
    save_file({"w": torch.tensor([1.0, float("nan")])}, str(tmp_path / "n.safetensors"))
    with pytest.raises(CheckpointError, match="tensor 'w' contains NaN"):
        read_safetensors(tmp_path / "n.safetensors")
    with pytest.raises(FileNotFoundError):
        read_safetensors(tmp_path / "absent.safetensors")


# ------------------------------------------------------------------ SAE checkpoint
def test_bad_sae_checkpoints(tmp_path):
    from wormlab import sae

    m = sae.SparseAutoencoder(sae.SAEConfig(n_inputs=6))
    good = sae.save_checkpoint(tmp_path / "good.safetensors", m, step=3)
    assert sae.load_checkpoint(good)[1]["step"] == 3
    from safetensors import safe_open

    with safe_open(str(good), "pt") as f:
        meta, tens = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    k0 = next(iter(tens))
    nan = {**tens, k0: tens[k0].clone().fill_(float("nan"))}
    cases = {
        "no_config": ({k: v for k, v in meta.items() if k != "sae_config"}, tens,
                      "lacks the field 'sae_config'"),
        "bad_json": ({**meta, "history": "[1, 2"}, tens, "field 'history' is not valid JSON"),
        "bad_format": ({**meta, "format": "other"}, tens, "not a wormlab SAE checkpoint"),
        "bad_field": ({**meta, "sae_config": json.dumps({"n_inputs": 6, "bogus": 1})}, tens,
                      "malformed SAE checkpoint metadata"),
        "nan": (meta, nan, f"tensor {k0!r} contains NaN"),
        "shape": ({**meta, "sae_config": json.dumps({"n_inputs": 7})}, tens,
                  "weights do not fit"),
    }
    _each_refused(tmp_path, cases, sae.load_checkpoint)



def _each_refused(tmp_path, cases, load):
    """Write each case ``{name: (metadata, tensors, message)}`` as a safetensors file; ``load``
    must raise a ValueError holding the message and naming the file."""
    for name, (md, ts, message) in cases.items():
        p = tmp_path / f"{name}.safetensors"
        save_file(ts, str(p), metadata=md)
        with pytest.raises(ValueError, match=re.escape(message)) as err:
            load(p)
        assert str(p) in str(err.value)

# ------------------------------------------------------------------ behaviour decoder
def test_bad_behaviour_checkpoints(tmp_path):
    from wormlab.behaviour import BehaviourConfig
    from wormlab.behaviour._train import Decoder

    meta = {"config": json.dumps(BehaviourConfig().to_dict()), "names": json.dumps(["A", "B"]),
            "classes": json.dumps(["fwd", "rev"]), "n_feat": "1", "window": "4"}
    w = {"x": torch.zeros(2)}
    cases = {
        "no_meta": ({}, "no metadata"),
        "no_names": ({k: v for k, v in meta.items() if k != "names"},
                     "lacks the field 'names'"),
        "bad_json": ({**meta, "classes": "[fwd"}, "field 'classes' is not valid JSON"),
        "bad_int": ({**meta, "window": "four"}, "malformed behaviour decoder checkpoint"),
        "bad_weights": (meta, "weights do not fit its config"),
    }
    _each_refused(tmp_path, {k: (md, w, m) for k, (md, m) in cases.items()}, Decoder.load)


# ------------------------------------------------------------------ posture LSTM
def test_bad_posture_checkpoints(tmp_path):
    from wormlab.posture._lstm import PostureLSTM, load_lstm

    model = PostureLSTM(3, 1, 4, 0.0)
    ck = tmp_path / "m"
    meta = {"n_channels": 3, "config": {"layers": 1, "hidden": 4, "dropout": 0.0}}
    state = {k: v.contiguous() for k, v in model.state_dict().items()}

    def write(meta_obj=meta, tensors=state, raw=None):
        ck.with_suffix(".json").write_text(raw if raw is not None else json.dumps(meta_obj))
        save_file(tensors, str(ck.with_suffix(".safetensors")))

    write()
    assert load_lstm(ck, best=False).hidden == 4
    k0 = next(iter(state))
    cases = {
        "no_channels": (dict(meta_obj={"config": meta["config"]}),
                        "lacks the field 'n_channels'"),
        "no_hidden": (dict(meta_obj={**meta, "config": {"layers": 1, "dropout": 0.0}}),
                      "lacks the field 'hidden'"),
        "bad_json": (dict(raw='{"n_channels": 3,'), "not valid JSON"),
        "shape": (dict(meta_obj={**meta, "n_channels": 5}), "weights do not fit"),
        "nan": (dict(tensors={**state, k0: state[k0].clone().fill_(float("nan"))}),
                "contains NaN"),
    }
    for _name, (kw, message) in cases.items():
        write(**kw)
        with pytest.raises(ValueError, match=re.escape(message)):
            load_lstm(ck, best=False)
    write()
    p = ck.with_suffix(".safetensors")
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(ValueError, match="unreadable or truncated posture LSTM checkpoint"):
        load_lstm(ck, best=False)
    ck.with_suffix(".json").unlink()
    with pytest.raises(FileNotFoundError, match="m.json"):
        load_lstm(ck)


# ------------------------------------------------------------------ circuit parameter files
@pytest.fixture(scope="module")
def tiny_net():
    from wormlab import circuit
    from wormlab.circuit import reference

    try:
        full = circuit.build_network()
    except reference.NeuronStackMissing as exc:
        if reference.in_ci():
            pytest.fail(f"CI requires the c302 stack: {exc}")
        pytest.skip(f"c302 network unavailable: {exc}")
    return circuit.build_network(circuit.subset_spec(full.spec, ["AVAL", "AVAR"]))


def test_bad_circuit_parameter_files(tmp_path, tiny_net):
    from wormlab import circuit

    good = tmp_path / "good.safetensors"
    circuit.save_parameters(tiny_net, good)
    circuit.load_parameters(tiny_net, good)
    params = {k: v.detach().clone() for k, v in tiny_net.params.items()}
    meta = {"share": tiny_net.share, "n_cells": str(tiny_net.n_cells)}
    g = params["g_ca"]
    cases = {
        "unknown": ({"g_caa": g}, meta, "unknown parameter 'g_caa'; did you mean g_ca"),
        "shape": ({"g_ca": torch.cat([g, g])}, meta,
                  f"g_ca has shape ({2 * len(g)},), network expects ({len(g)},)"),
        "nan": ({"g_ca": g.clone().fill_(float("nan"))}, meta, "g_ca holds nan at index 0"),
        "inf": ({"e_leak": params["e_leak"].clone().fill_(float("inf"))}, meta,
                "e_leak holds inf at index 0"),
        "neg_tau": ({"tau_n": -params["tau_n"]}, meta, "tau_n must be > 0"),
        "zero_cm": ({"c_m": params["c_m"] * 0}, meta, "c_m must be > 0"),
        "int": ({"g_ca": g.long()}, meta, "g_ca has dtype torch.int64"),
        "share": (params, {**meta, "share": "cell"}, "written for share='cell'"),
        "cells": (params, {**meta, "n_cells": "397"}, "written for 397 cells"),
    }
    before = {k: v.detach().clone() for k, v in tiny_net.params.items()}
    for name, (ts, md, message) in cases.items():
        p = tmp_path / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in ts.items()}, str(p), metadata=md)
        with pytest.raises(ValueError, match=re.escape(message)) as err:
            circuit.load_parameters(tiny_net, p)
        assert str(p) in str(err.value)
    raw = good.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="unreadable or truncated circuit parameter file"):
        circuit.load_parameters(tiny_net, tmp_path / "cut.safetensors")
    for k, v in tiny_net.params.items():  # a refused file changes nothing
        assert torch.equal(v.detach(), before[k]), k


# ------------------------------------------------------------------ notebook parameters
@pytest.mark.parametrize(("nb", "key", "value", "message"), [
    ("00_connectome", "smoke", "maybe", "'smoke' expects a bool, got 'maybe'"),
    ("00_connectome", "smoke", "2", "'smoke' expects a bool"),
    ("00_connectome", "seed", "1.5", "'seed' expects int, got '1.5'"),
    ("00_connectome", "seed", True, "'seed' expects int, got bool True"),
    ("00_connectome", "top_k", 2.0, "'top_k' expects int, got float 2.0"),
    ("01_circuit", "duration_ms", "nan", "'duration_ms' expects a finite float, got nan"),
    ("01_circuit", "dt_ms", "inf", "'dt_ms' expects a finite float, got inf"),
    ("01_circuit", "dt_ms", "-inf", "'dt_ms' expects a finite float, got -inf"),
    ("01_circuit", "duration_ms", float("nan"), "expects a finite float"),
    ("01_circuit", "duration_ms", "1e3ms", "'duration_ms' expects float"),
    ("01_circuit", "batch", "", "'batch' expects int"),
])
def test_bad_notebook_parameters(nb, key, value, message):
    from wormlab.notebooks import NotebookError, validate_parameters

    with pytest.raises(NotebookError, match=re.escape(message)):
        validate_parameters(nb, {key: value})


def test_good_notebook_parameters_still_coerce():
    from wormlab.notebooks import validate_parameters

    out = validate_parameters("01_circuit", {"smoke": "yes", "seed": "3", "dt_ms": "0.05",
                                             "duration_ms": 10})
    assert out == {"smoke": True, "seed": 3, "dt_ms": 0.05, "duration_ms": 10.0}


@pytest.mark.parametrize("header_bytes", [640, 0x4B50])
def test_safetensors_whose_length_bytes_look_like_a_pickle_or_zip_are_read(tmp_path,
                                                                           header_bytes):
    """A 640-byte safetensors header starts with the bytes 80 02 (a pickle's magic) and a
    19,280-byte one with "PK" (a zip's): they are valid safetensors and must load (the posture
    LSTM's best checkpoint was refused as a pickle in CI before the framing was checked first)."""
    import torch
    from safetensors.torch import save_file

    from wormlab.io import read_safetensors

    path, meta = tmp_path / "x.safetensors", {"pad": ""}
    while True:
        save_file({"w": torch.arange(3.0)}, str(path), metadata=meta)
        n = int.from_bytes(path.read_bytes()[:8], "little")
        if n == header_bytes:
            break
        assert n < header_bytes
        meta["pad"] += "a" * (header_bytes - n)
    tensors, _ = read_safetensors(path)
    assert torch.equal(tensors["w"], torch.arange(3.0))
