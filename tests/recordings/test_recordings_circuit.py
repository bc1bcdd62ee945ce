"""The virtual worm driven by the project's conductance model (runs once wormlab.circuit is
merged; skipped on a branch without it)."""

import pytest

from wormlab import recordings as R

pytest.importorskip("wormlab.circuit")


@pytest.mark.slow
def test_virtual_worm_on_the_circuit_model():
    cfg = R.VirtualWormConfig(
        n_observed=60, fps=200.0, seed=0,
        stimuli=(R.StimulusSpec("CuSO4", 10.0, "mM", ("ASHL", "ASHR"), amplitude=2.0),),
        protocol=R.ProtocolConfig(duration_s=0.1, pulse_s=0.03, min_gap_s=0.02,
                                  on_fraction=0.3, motor_dwell_s=0.05),
        network=R.RateNetworkConfig(dt_s=0.005),
        indicator=R.IndicatorConfig(rise_s=0.005, decay_s=0.02, gain=0.02, bleach_tau_s=100.0,
                                    noise_sd=0.01))
    rec = R.virtual_worm(cfg, simulator=R.circuit_simulator(), simulator_name="wormlab.circuit")
    assert rec.synthetic and "wormlab.circuit" in rec.provenance
    assert rec.n_frames == 20 and rec.n_neurons == 60
    assert {"ASHL", "ASHR"} <= set(rec.ground_truth["10mM CuSO4"])
    m = rec.stimulus_mask("10mM CuSO4")
    x = rec.traces[:, rec.index("ASHL")]
    assert x[m].mean() > x[~m].mean() + 0.05
