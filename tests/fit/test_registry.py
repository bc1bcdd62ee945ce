"""Parameter registry (issue 16 item 8): save -> load round trip, provenance, bad files."""

import copy
import json

import pytest
import torch

from wormlab import circuit
from wormlab.fit._registry import (
    ParamsFileError,
    load_params,
    plot_registry,
    registry_table,
    save_params,
)

CELLS = ("AVAL", "AVAR", "AVBL", "AVBR", "PVCL", "DB1", "VB1", "MDL07")


@pytest.fixture(scope="module")
def net():
    n = circuit.build_network(cells=CELLS)
    with torch.no_grad():
        n.params["g_ca"].mul_(1.1)
        n.params["w_syn"][0] *= 2.0
    n.set_provenance("g_ca", "fitted", loss=0.125, data="synthetic AVA trace", date="2026-12-07",
                     run_id="test-run-1")
    n.set_provenance("e_leak", "measured", source="patch clamp (made-up label for the test)")
    n.set_provenance("w_syn", "ml", model="gnn-v0")
    return n


def test_round_trip_builds_the_same_network(net, tmp_path):
    p = save_params(net, tmp_path / "params.json")
    new = load_params(p)  # built from the file's network section
    assert new.names == net.names and new.share == net.share
    assert set(new.params) == set(net.params)
    for k in net.params:
        assert torch.equal(new.params[k].detach(), net.params[k].detach()), k
        assert new.provenance[k] == net.provenance[k], k
    assert new.provenance["g_ca"]["run_id"] == "test-run-1"
    # a network that was not changed differs, so the comparison above can fail
    fresh = circuit.build_network(cells=CELLS)
    assert not torch.equal(fresh.params["g_ca"], new.params["g_ca"])
    assert fresh.provenance["g_ca"] != new.provenance["g_ca"]


def test_load_into_existing_net_and_subset(net, tmp_path):
    p = save_params(net, tmp_path / "params.json")
    doc = json.loads(p.read_text())
    doc["parameters"] = {"g_ca": doc["parameters"]["g_ca"]}
    p2 = tmp_path / "part.json"
    p2.write_text(json.dumps(doc))
    target = circuit.build_network(cells=CELLS)
    e_leak = target.params["e_leak"].detach().clone()
    load_params(p2, net=target)
    assert torch.equal(target.params["g_ca"].detach(), net.params["g_ca"].detach())
    assert torch.equal(target.params["e_leak"].detach(), e_leak)
    assert target.provenance["g_ca"]["provenance"] == "fitted"


def _edit(net, tmp_path, fn, name="bad.json"):
    p = save_params(net, tmp_path / "ok.json")
    doc = json.loads(p.read_text())
    fn(doc)
    out = tmp_path / name
    out.write_text(json.dumps(doc))
    return out


@pytest.mark.parametrize("fn,match", [
    (lambda d: d["parameters"].__setitem__("g_caa", d["parameters"]["g_ca"]),
     "unknown parameter 'g_caa'.*g_ca"),
    (lambda d: d["parameters"]["g_ca"].__setitem__("values", [1.0, 2.0, 3.0]), "g_ca.*shape"),
    (lambda d: d["parameters"]["e_leak"].__setitem__("unit", "V"), "e_leak.*'V'"),
    (lambda d: d["parameters"]["g_ca"]["values"].__setitem__(0, 250.0),
     r"g_ca.*250\.0.*outside"),
    (lambda d: d["parameters"]["g_ca"].__setitem__("provenance", "guessed"), "g_ca.*guessed"),
    (lambda d: d["parameters"]["g_ca"].pop("fitted"), "g_ca.*fitted.*run_id"),
    (lambda d: d.__setitem__("version", 9), "version 9"),
    (lambda d: d["network"].__setitem__("colour", "red"), "colour"),
])
def test_bad_file_named_and_nothing_written(net, tmp_path, fn, match):
    p = _edit(net, tmp_path, fn)
    target = circuit.build_network(cells=CELLS)
    before = {k: v.detach().clone() for k, v in target.params.items()}
    with pytest.raises(ParamsFileError, match=match) as err:
        load_params(p, net=target)
    assert "bad.json" in str(err.value)
    for k, v in target.params.items():  # validation happens before anything is copied
        assert torch.equal(v.detach(), before[k]), k


def test_unreadable_and_missing_files(tmp_path):
    p = tmp_path / "trunc.json"
    p.write_text('{"format": "wormlab.fit.params", "version": 1, "param')
    with pytest.raises(ParamsFileError, match="trunc.json"):
        load_params(p)
    with pytest.raises(FileNotFoundError):
        load_params(tmp_path / "nope.json")


def test_save_is_atomic(net, tmp_path, monkeypatch):
    p = save_params(net, tmp_path / "params.json")
    before = p.read_text()
    bad = copy.deepcopy(net)
    bad.set_provenance("g_ca", "fitted", loss=object(), data="x", date="d", run_id="r")
    monkeypatch.setattr(json, "dumps", lambda *a, **k: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError):
        save_params(bad, p)
    assert p.read_text() == before
    assert [f.name for f in tmp_path.iterdir()] == ["params.json"]


def test_table_and_plot(net):
    t = registry_table(net)
    assert t.loc["g_ca", "provenance"] == "fitted" and t.loc["g_ca", "loss"] == 0.125
    assert t.loc["e_leak", "provenance"] == "measured"
    assert t.loc["w_syn", "provenance"] == "ml"
    assert t.loc["c_m", "provenance"] == "c302-default"
    import matplotlib

    matplotlib.use("Agg")
    fig = plot_registry(net)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert {"fitted", "measured", "ml", "c302-default"} <= set(labels)
