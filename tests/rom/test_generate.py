"""Data-set generation: configuration, stimuli, NEURON and circuit generators, resumption."""

import numpy as np
import pytest

from wormlab import rom
from wormlab.rom._generate import circuit_available
from wormlab.rom._neuron import neuron_available


def test_config_validation_and_stimuli():
    with pytest.raises(ValueError, match="multiple of the finest"):
        rom.GenerateConfig(sample_dt_ms=(0.5, 0.3))
    with pytest.raises(ValueError, match="not inputs"):
        rom.GenerateConfig(scenario_groups=(("IL2L",),))
    cfg = rom.GenerateConfig(n_sequences=6, duration_ms=20.0)
    names, t, cur = rom.stimuli(cfg)
    assert cur.shape == (201, 6, 4) and t[1] == pytest.approx(0.1) and t[-1] == pytest.approx(20)
    assert all(n.startswith("synthetic_") for n in names)
    two = rom.GenerateConfig(inputs=rom.FORWARD_INPUTS + rom.NICTATION_INPUTS,
                             outputs=rom.FORWARD_OUTPUTS + rom.NICTATION_OUTPUTS,
                             scenario_groups=(rom.FORWARD_INPUTS, rom.NICTATION_INPUTS),
                             n_sequences=4)
    names, _, cur = rom.stimuli(two)
    assert len(two.inputs) == 10 and len(two.outputs) == 28
    assert "_s0_" in names[0] and "_s1_" in names[1]
    assert np.all(cur[:, 0, 4:] == 0) and np.all(cur[:, 1, :4] == 0)  # one scenario at a time


def test_simulate_rejects_bad_shapes():
    cfg = rom.GenerateConfig()
    with pytest.raises(ValueError, match="currents must be"):
        rom.simulate(cfg, np.arange(5.0), np.zeros((5, 1, 3)))
    with pytest.raises(ValueError, match="unknown backend"):
        rom._generate.resolve_backend("brian")


@pytest.mark.slow
@pytest.mark.skipif(not neuron_available(), reason="optional NEURON/c302 extra not installed")
def test_neuron_generation_writes_resumable_text_files(tmp_path):
    cfg = rom.GenerateConfig(backend="neuron", n_sequences=2, duration_ms=20.0)
    dirs = rom.generate_dataset(cfg, tmp_path, workers=2, chunk=1)  # two dask processes
    a = rom.read_text_dir(dirs[0.5])
    b = rom.read_text_dir(dirs[0.1])
    assert a.outputs.shape == (41, 2, 4) and b.outputs.shape == (201, 2, 4)
    np.testing.assert_allclose(b.outputs[::5], a.outputs, rtol=1e-8)
    assert a.output_names == list(rom.FORWARD_OUTPUTS) and a.output_unit == "mV"
    assert -80 < a.outputs.min() and a.outputs.max() < 60
    done = []
    rom.generate_dataset(cfg, tmp_path, on_done=done.append)
    assert done == []  # everything was already there
    (dirs[0.5] / f"{a.names[1]}.dat").unlink()
    rom.generate_dataset(cfg, tmp_path, on_done=done.append)
    assert done == [1]
    np.testing.assert_allclose(rom.read_text_dir(dirs[0.5]).outputs, a.outputs, rtol=1e-8)


@pytest.mark.slow
@pytest.mark.skipif(not (neuron_available() and circuit_available()),
                    reason="needs both NEURON/c302 and wormlab.circuit")
def test_circuit_generator_matches_neuron_for_20_ms():
    """Both generators simulate the same c302 network file; they agree before chaos sets in."""
    cfg = rom.GenerateConfig(n_sequences=3, duration_ms=20.0, sample_dt_ms=(0.5,))
    _, t, cur = rom.stimuli(cfg)
    from dataclasses import replace

    vn = rom.simulate(replace(cfg, backend="neuron"), t, cur)
    vc = rom.simulate(replace(cfg, backend="circuit"), t, cur)
    assert vc.shape == vn.shape == (41, 3, 4)
    assert np.abs(vc - vn).max() < 0.5  # mV


@pytest.mark.slow
def test_bench_quick_reports_times(capfd):
    import json

    from wormlab.cli import main as wormlab_main

    assert wormlab_main(["bench", "rom", "--quick", "--json"]) == 0
    out = json.loads(capfd.readouterr().out)  # stdout holds nothing but the JSON
    assert out["batch"] == 4 and out["gru_s"] > 0
    if circuit_available():
        assert out["circuit_s"] > 0 and out["circuit_over_gru"] > 0
