"""NeuroML export of the crawl circuit (issue 17 item 6): parameters round-trip through the
file, the sidecar holds exactly the loop parameters, bad input leaves nothing behind, and
NEURON reproduces the torch circuit on the tonic drive."""

import json

import numpy as np
import pytest
import torch

from wormlab import circuit
from wormlab.worm import _export as E
from wormlab.worm._loop import PARAMS, check_params
from wormlab.worm._motor import connection_groups

# every network parameter away from its default (the fitted crawl's values where it has one:
# fit4, docs/crawl.md), plus a non-default loop parameter
PARAMS_SET = {"drive_nA": 0.0039, "nmj_vth_mV": -13.9, "syn_nmj_exc": 76.9,
              "syn_nmj_inh": 12.6, "syn_mn_mn": 33.6, "gap_mn_mn": 0.0207, "syn_cmd_mn": 1.5,
              "gap_cmd_mn": 2.5, "tau_act_ms": 296.0, "prop_offset_rows": 2.2}
# fit4's network parameters only (what the NEURON check exercises)
FIT4 = {"drive_nA": 0.00393248094962884, "nmj_vth_mV": -13.89657856105002,
        "syn_nmj_exc": 76.87267977000046, "syn_nmj_inh": 12.618325147666711,
        "syn_mn_mn": 33.56398044882814, "gap_mn_mn": 0.020721999866573623}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("crawl_nml")
    return E.export_crawl(PARAMS_SET, d), d


def test_round_trip_reads_back_the_crawl_parameters(exported):
    path, _ = exported
    net = E.crawl_network(PARAMS_SET)
    back = circuit.build_network(path, syn_kinetics="per_type")
    assert back.names == net.names and len(back.names) == 184
    for k in net.params:
        assert torch.equal(back.params[k].detach(), net.params[k].detach()), k
    # each scaled group and the NMJ half-activation are in the file, not c302's values
    base = E._c1_motor_network()
    groups = connection_groups(base)
    for g in ("syn_cmd_mn", "syn_nmj_exc", "syn_nmj_inh", "syn_mn_mn"):
        m = groups[g]
        assert m.any(), g
        assert torch.allclose(back.params["w_syn"].detach()[m],
                              base.params["w_syn"].detach()[m] * PARAMS_SET[g], rtol=1e-12), g
    for g in ("gap_cmd_mn", "gap_mn_mn"):
        m = groups[g]
        assert torch.allclose(back.params["w_gap"].detach()[m],
                              base.params["w_gap"].detach()[m] * PARAMS_SET[g], rtol=1e-12), g
    # the NMJ Vth as read back with c302's default (shared) kinetics grouping, per type
    shared = circuit.build_network(path)
    vth = shared.params["syn_vth"].detach()[shared.kin_of_type]
    for t, name in enumerate(shared.syn_type_names):
        want = PARAMS_SET["nmj_vth_mV"] if "_to_muscle_" in name else 0.0
        assert float(vth[t]) == pytest.approx(want, abs=1e-12), name
    # the tonic drive is the file's input
    pulses = circuit.default_stimulus(back).pulses
    assert sorted(p.target for p in pulses) == ["AVBL", "AVBR"]
    assert all(p.amplitude_nA == pytest.approx(PARAMS_SET["drive_nA"]) for p in pulses)


def test_network_parameters_are_exactly_those_that_change_the_circuit():
    """The split between NeuroML and sidecar follows what the export writes: moving a
    parameter changes the exported (C1) circuit's parameters iff it is in NETWORK_PARAMS
    (motor-neuron adaptation is not a C1 mechanism: it stays in the sidecar)."""
    ref = E.crawl_network(PARAMS_SET).params
    for k, (d, lo, hi, _, _) in PARAMS.items():
        p = dict(PARAMS_SET)
        p[k] = lo + 0.37 * (hi - lo) if p.get(k, d) != lo + 0.37 * (hi - lo) else hi
        out = E.crawl_network(p).params
        changed = any(not torch.equal(out[x], ref[x]) for x in ref)
        assert changed == (k in E.NETWORK_PARAMS), k
    # the loop's own network does carry the adaptation
    net = E.crawl_network({**PARAMS_SET, "adapt_a_nS": 0.5}, c1_only=False)
    assert float(net.params["g_adapt"].max()) > 0


def test_sidecar_lists_exactly_the_loop_parameters(exported):
    path, d = exported
    side = path.with_name("crawl_c1.loop.json")
    doc = json.loads(side.read_text())
    assert set(doc["params"]) == set(PARAMS) - set(E.NETWORK_PARAMS)
    assert set(doc["params"]) == set(E.loop_params())
    for k, v in doc["params"].items():
        assert v["unit"] == PARAMS[k][3] and v["meaning"] and len(v["bounds"]) == 2, k
    vals = E.read_sidecar(side)
    want = {k: float(check_params(PARAMS_SET)[k][0]) for k in E.loop_params()}
    assert vals == want
    assert doc["network"] == path.name
    assert sorted(p.name for p in d.iterdir()) == ["cell_C.xml", "crawl_c1.loop.json",
                                                   "crawl_c1.net.nml"]


@pytest.mark.parametrize("params, match", [
    ({"drive_nA": 0.003, "speed": 1.0}, "unknown crawl parameters.*speed"),
    ({"syn_nmj_exc": 500.0}, r"syn_nmj_exc=\[500.0\].*outside its bounds"),
    ({"nmj_vth_mV": float("nan")}, "nmj_vth_mV is not finite"),
])
def test_bad_parameters_write_nothing(tmp_path, params, match):
    out = tmp_path / "out"
    with pytest.raises((KeyError, ValueError), match=match):
        E.export_crawl(params, out)
    assert not out.exists()


def test_bad_parameter_file_names_file_and_field(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"format": "wormlab.worm.params", "params": {"gap_mn_mn": "x"}}))
    with pytest.raises(ValueError, match="p.json.*gap_mn_mn.*'x'"):
        E.export_crawl(f, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unwritable_dir_and_failed_write_leave_nothing(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="cannot write the export to .*a_file"):
        E.export_crawl(PARAMS_SET, blocker / "sub")
    assert blocker.read_text() == "not a folder"

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(E, "_sidecar", boom)  # fails after the NeuroML files are written
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk full"):
        E.export_crawl(PARAMS_SET, out)
    assert list(out.iterdir()) == []  # no .net.nml without its sidecar, no temporaries


def test_cli_export_and_bad_input(tmp_path, capsys):
    from wormlab.cli import main
    from wormlab.worm._config import write_crawl_params

    pf = write_crawl_params(tmp_path / "p.json", PARAMS_SET)
    assert main(["worm", "export", str(pf), str(tmp_path / "nml"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["nml"].endswith("crawl_c1.net.nml") and "neuron_check" not in out
    pf.write_text(json.dumps({"syn_mn_mn": -1.0}))
    assert main(["worm", "export", str(pf), str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "p.json" in err and "syn_mn_mn" in err and "-1.0" in err and "bounds" in err
    assert not (tmp_path / "bad").exists()


def test_cli_check_without_neuron_skips_cleanly(tmp_path, capsys, monkeypatch):
    from wormlab.circuit import reference
    from wormlab.cli import main
    from wormlab.worm._config import write_crawl_params

    monkeypatch.setattr(reference, "neuron_missing", lambda: "'java' is not on PATH")
    pf = write_crawl_params(tmp_path / "p.json", PARAMS_SET)
    assert main(["worm", "export", str(pf), str(tmp_path / "nml"), "--check", "--json"]) == 0
    cap = capsys.readouterr()
    assert "NEURON check skipped" in cap.err and "java" in cap.err
    assert "java" in json.loads(cap.out)["neuron_check"]["skipped"]
    assert (tmp_path / "nml" / "crawl_c1.net.nml").exists()  # the export itself is done
    assert not (tmp_path / "nml" / "neuron_check").exists()


@pytest.mark.neuron
@pytest.mark.slow
def test_neuron_reproduces_the_crawl_circuit(tmp_path):
    """NEURON CVODE (tol 1e-6) on the exported circuit vs the loop's torch circuit (exp2,
    0.05 ms), 200 ms of the fitted tonic AVB drive: per cell max |dV| <= 10 mV (V swings
    over ~80 mV while the cells spike), correlation >= 0.99, muscle [Ca] within 5 % of NEURON's
    peak; the c302 weights (the crawl's scales dropped) miss by far more."""
    from wormlab.body._muscles import MUSCLES
    from wormlab.circuit import reference
    from wormlab.fit._neuroml import run_neuroml

    missing = reference.neuron_missing()
    if missing is not None:
        from tests.circuit.conftest import skip_or_fail

        skip_or_fail(f"NEURON/c302 stack incomplete: {missing}")
    path = E.export_crawl(FIT4, tmp_path, drive="forward")
    ref = run_neuroml(path, 200.0, tol=1e-6, ca_cells=list(MUSCLES))
    assert np.ptp(ref.v_mV, 0).max() > 50.0  # cells spike: not trivially flat
    stim = circuit.default_stimulus(circuit.build_network(path))
    net = E.crawl_network(FIT4, c1_only=False)  # the loop's own network
    got = E.torch_vs_neuron(net, stim, ref, 200.0, "exp2", 0.05)
    for g in ("motor_neurons", "muscles"):
        assert got[g]["max_dv_mV"]["worst"] <= 10.0, (g, got[g]["max_dv_mV"])
        assert got[g]["corr"]["worst"] >= 0.99, (g, got[g]["corr"])
    assert got["muscles"]["ca_rel_err"]["worst"] <= 0.05, got["muscles"]["ca_rel_err"]
    c302 = E.torch_vs_neuron(E.crawl_network({"drive_nA": FIT4["drive_nA"]}, c1_only=False),
                             stim, ref, 200.0, "exp2", 0.05, per_cell=False)
    assert c302["muscles"]["max_dv_mV"]["median"] > 5 * got["muscles"]["max_dv_mV"]["worst"]
    assert c302["muscles"]["ca_rel_err"]["median"] > 0.5
