"""NeuroML round trip (issue 16 item 9): export a parameter set in c302's conventions, read it
back, and re-run it in NEURON (CVODE) against circuit.simulate."""

import numpy as np
import pytest
import torch

from wormlab import circuit
from wormlab.circuit import reference
from wormlab.fit._neuroml import NeuroMLExportError, export_neuroml, run_neuroml

CELLS = ("AVAL", "AVAR", "AVBL", "AVBR", "PVCL", "DB1", "VB1", "MDL07")


def _fitted(**kw):
    """The sub-circuit with a few parameters changed as a fit would: g_ca x1.1 for the neuron
    type, one synaptic weight x2, one gate time constant, the pool decay."""
    net = circuit.build_network(cells=CELLS, **kw)
    neuron = int(net.group[net.index["AVAL"]])
    with torch.no_grad():
        net.params["g_ca"][neuron] *= 1.1
        net.params["w_syn"][0] *= 2.0
        net.params["tau_n"].mul_(1.2)
        net.params["tau_ca"].mul_(0.9)
        net.params["g_syn"][0] *= 1.5
    return net


def test_export_read_back_same_values(tmp_path):
    net = _fitted()
    path = export_neuroml(net, tmp_path)
    back = circuit.build_network(path)
    assert back.names == net.names
    for k in net.params:
        assert torch.equal(back.params[k].detach(), net.params[k].detach()), k
    # the defaults differ, so the comparison can fail (and the export did write the values)
    fresh = circuit.build_network(cells=CELLS)
    for k in ("g_ca", "w_syn", "tau_n", "tau_ca", "g_syn"):
        assert not torch.equal(fresh.params[k], back.params[k]), k


def test_export_refuses_what_neuroml_cannot_express(tmp_path):
    net = circuit.build_network(cells=CELLS, share="class")
    with torch.no_grad():
        net.params["g_ca"][int(net.group[net.index["AVAL"]])] *= 2.0  # AVA only
    with pytest.raises(NeuroMLExportError, match="g_ca.*GenericNeuronCell"):
        export_neuroml(net, tmp_path / "a")
    net = circuit.build_network(cells=CELLS)
    with torch.no_grad():
        net.params["tau_n"][0] *= 2.0  # neurons only: the gate lives in the shared cell_C.xml
    with pytest.raises(NeuroMLExportError, match="tau_n.*cell_C.xml"):
        export_neuroml(net, tmp_path / "b")
    with pytest.raises(NeuroMLExportError, match="k_extra"):
        export_neuroml(circuit.build_network(cells=CELLS, mechanisms=("k_extra",)),
                       tmp_path / "c")
    with pytest.raises(NeuroMLExportError, match="batched"):
        export_neuroml(circuit.build_network(cells=CELLS).batched(2), tmp_path / "d")
    assert not any((tmp_path / x).exists() and any((tmp_path / x).iterdir())
                   for x in "abcd")  # nothing half-written


def test_share_class_with_equal_values_exports(tmp_path):
    net = circuit.build_network(cells=CELLS, share="class")
    back = circuit.build_network(export_neuroml(net, tmp_path), share="class")
    for k in net.params:
        assert torch.equal(back.params[k].detach(), net.params[k].detach()), k


@pytest.mark.neuron
@pytest.mark.slow
def test_neuron_reproduces_the_fitted_parameters(tmp_path):
    """NEURON CVODE (rtol=atol=1e-7) on the exported file vs circuit.simulate (RK4, 0.1 ms,
    float64) with the same parameters, 60 ms: per cell max |dV| <= 5 % of the NEURON range."""
    missing = reference.neuron_missing()
    if missing is not None:
        from tests.circuit.conftest import skip_or_fail

        skip_or_fail(f"NEURON/c302 stack incomplete: {missing}")
    net = _fitted()
    stim = circuit.Stimulus.step(["AVAL", "PVCL"], 0.006, start_ms=5.0)
    path = export_neuroml(net, tmp_path, stimulus=stim)
    ref = run_neuroml(path, 60.0)
    assert sorted(ref.names) == sorted(CELLS)

    def torch_v(n):
        with torch.no_grad():
            res = circuit.simulate(n, stim, 60.0, record=ref.names, dtype=torch.float64)
        t = res.t_ms.numpy()
        return t, res.v_mV[:, 0].numpy()

    t, v = torch_v(net)
    k = ref.covered(t)
    r = ref.on_grid(t)[:k]
    rng = r.max(0) - r.min(0)
    err = np.abs(r - v[:k]).max(0)
    assert rng.max() > 50.0  # cells spike: not trivially flat
    assert (err <= 0.05 * np.maximum(rng, 1e-3)).all(), dict(zip(ref.names, err))
    # the unfitted network is measurably different, so a lost parameter would be caught
    _, v0 = torch_v(circuit.build_network(cells=CELLS))
    assert np.abs(r - v0[:k]).max() > 10 * err.max()


def test_cli_export(tmp_path, capsys):
    from wormlab.cli import main
    from wormlab.fit._registry import save_params

    params = save_params(_fitted(), tmp_path / "p.json")
    assert main(["fit", "export", str(params), "--neuroml", str(tmp_path / "nml")]) == 0
    out = list((tmp_path / "nml").glob("*.net.nml"))
    assert len(out) == 1 and "wrote" in capsys.readouterr().out
    back = circuit.build_network(out[0])
    assert torch.equal(back.params["w_syn"].detach(), _fitted().params["w_syn"].detach())


def test_cli_bad_input_exit_2(tmp_path, capsys, monkeypatch):
    import json

    import wormlab.fit as fit
    from wormlab.cli import main
    from wormlab.fit._registry import save_params

    assert main(["fit", "export", str(tmp_path / "none.json"), "--neuroml", "x"]) == 2
    assert "not found" in capsys.readouterr().err
    p = save_params(circuit.build_network(cells=CELLS), tmp_path / "p.json")
    doc = json.loads(p.read_text())
    doc["parameters"]["g_ca"]["values"][0] = 500.0
    p.write_text(json.dumps(doc))
    assert main(["fit", "export", str(p), "--neuroml", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "g_ca" in err and "500.0" in err and "p.json" in err
    for cmd, attr in (("run", "run_fit"), ("score", "scorecard")):
        monkeypatch.delattr(fit, attr, raising=False)
        assert main(["fit", cmd, str(p)]) == 2
        assert "not available yet" in capsys.readouterr().err
