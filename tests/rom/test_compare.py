"""Library functions behind the notebook panel: currents from specs, ROM vs simulation, hidden."""

import numpy as np
import pytest
import torch

from wormlab import rom
from wormlab.rom._generate import circuit_available


def _model():
    torch.manual_seed(0)
    m = rom.RomModel("gru", 4, 3, 4)
    m.meta = {"input_names": list(rom.FORWARD_INPUTS), "output_names": list(rom.FORWARD_OUTPUTS)}
    return m


def test_currents_from_specs():
    t = np.arange(0, 20.0, 0.5)
    cur = rom.currents_from_specs({"AVBL": {"kind": "step", "amplitude_nA": 0.004,
                                            "start_ms": 5, "stop_ms": 10}}, t,
                                  list(rom.FORWARD_INPUTS))
    assert cur.shape == (40, 1, 4)
    assert cur[:, 0, 2].max() == 0.004 and cur[:, 0, [0, 1, 3]].max() == 0
    assert cur[9, 0, 2] == 0 and cur[10, 0, 2] == 0.004
    with pytest.raises(KeyError, match="no input neuron"):
        rom.currents_from_specs({"AVAL": {"kind": "step", "amplitude_nA": 1}}, t, ["AVBL"])


def test_hidden_states_and_correlation():
    """Values, not shapes: the hidden states are the GRU run on z-scored inputs, and the
    correlation matrix is Pearson's r of each unit with each output."""
    d = rom.smoke_dataset().resample(10)
    m = _model()
    x = torch.as_tensor(d.inputs, dtype=torch.float32)
    m.set_normalisation(x, torch.as_tensor(d.outputs, dtype=torch.float32))
    h = rom.hidden_states(m, d.inputs[:, :2])
    with torch.no_grad():
        want = m.cell((x[:, :2] - m.x_mean) / m.x_std)[0].numpy()
    np.testing.assert_allclose(h, want, rtol=1e-5, atol=1e-6)
    c = rom.hidden_output_correlation(m, d)
    hall = rom.hidden_states(m, d.inputs).reshape(-1, 3)
    yall = d.outputs.reshape(-1, 4)
    for j in range(3):
        for k in range(4):
            assert c[j, k] == pytest.approx(np.corrcoef(hall[:, j], yall[:, k])[0, 1], abs=1e-5)


def _fake_simulate(cfg, t_ms, cur):
    """A stand-in simulator (mV from nA) so the bookkeeping can be checked exactly."""
    return -45.0 + 1000.0 * np.cumsum(cur, axis=0)[..., [0, 1, 2, 3]] * (t_ms[1] - t_ms[0])


@pytest.mark.parametrize("units", [("nA", "mV"), ("A", "V")])
def test_predict_vs_simulation_converts_units(monkeypatch, units):
    """A model trained on SI files (A in, V out) is compared with the simulator in mV."""
    monkeypatch.setattr("wormlab.rom._compare.simulate", _fake_simulate)
    monkeypatch.setattr("wormlab.rom._generate.resolve_backend", lambda b: "circuit")
    m = _model()
    scale_in = {"nA": 1.0, "A": 1e-9}[units[0]]
    scale_out = {"mV": 1.0, "V": 1e-3}[units[1]]
    with torch.no_grad():  # the same function of the physical current in either unit
        m.x_std.fill_(0.004 * scale_in)
        m.y_mean.fill_(-45.0 * scale_out)
        m.y_std.fill_(10.0 * scale_out)
    m.meta.update(input_unit=units[0], output_unit=units[1])
    t = np.arange(0, 10.5, 0.5)
    cur = rom.currents_from_specs({"PLML": {"kind": "step", "amplitude_nA": 0.005,
                                            "start_ms": 1, "stop_ms": 9}}, t,
                                  list(rom.FORWARD_INPUTS))
    res = rom.predict_vs_simulation(m, cur, 0.5, backend="circuit")
    want = m.predict(cur * scale_in).numpy() / scale_out  # back to mV
    np.testing.assert_allclose(res["predicted"], want, rtol=1e-5, atol=1e-4)
    assert abs(res["predicted"].mean() + 45.0) < 30.0  # mV, whatever the model's unit
    sim = _fake_simulate(None, t, cur)
    np.testing.assert_allclose(res["simulated"], sim)
    assert res["rmse_mV"] == pytest.approx(np.sqrt(np.mean((want - sim) ** 2)), rel=1e-5)
    m.meta["output_unit"] = "furlong"
    with pytest.raises(ValueError, match="not a current and a voltage"):
        rom.predict_vs_simulation(m, cur, 0.5, backend="circuit")


@pytest.mark.slow
@pytest.mark.skipif(not circuit_available(), reason="wormlab.circuit not available")
def test_predict_vs_simulation_runs_both():
    m = _model()
    t = np.arange(0, 10.5, 0.5)
    cur = rom.currents_from_specs({"PLML": {"kind": "step", "amplitude_nA": 0.005,
                                            "start_ms": 1, "stop_ms": 9}}, t,
                                  list(rom.FORWARD_INPUTS))
    res = rom.predict_vs_simulation(m, cur, 0.5, backend="circuit")
    assert res["simulated"].shape == res["predicted"].shape == (21, 1, 4)
    np.testing.assert_allclose(res["predicted"], m.predict(cur).numpy(), rtol=1e-5, atol=1e-5)
    rmse = np.sqrt(np.mean((res["predicted"] - res["simulated"]) ** 2))
    assert res["backend"] == "circuit" and res["rmse_mV"] == pytest.approx(rmse)
    assert abs(res["simulated"][0, 0, 0] - (-45.0)) < 1.0  # c302 initial potential
