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
    d = rom.smoke_dataset().resample(10)
    m = _model()
    h = rom.hidden_states(m, d.inputs[:, :2])
    assert h.shape == (d.n_steps, 2, 3) and np.abs(h).max() <= 1
    c = rom.hidden_output_correlation(m, d)
    assert c.shape == (3, 4) and np.all(np.abs(c) <= 1 + 1e-6)


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
    assert res["backend"] == "circuit" and res["rmse_mV"] > 0
    assert abs(res["simulated"][0, 0, 0] - (-45.0)) < 1.0  # c302 initial potential
