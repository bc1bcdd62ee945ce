"""The sensory closed loop: placement in the arena, sensing at the head, ablation, bad input."""

import numpy as np
import pytest
import torch

from wormlab import loop
from wormlab.loop._arena import Arena, Constant, Field, Linear
from wormlab.loop._closed import ClosedLoopConfig, closed_loop_network, run_closed_loop


class _Adapting:
    """A test double of a transducer (not a model): ON/OFF currents from the change of the
    stimulus against a running mean, into ASEL (ON) and ASER (OFF)."""

    neurons = ["ASEL", "ASER"]
    units = "mM"

    def initial_state(self, batch, stimulus=None):
        if stimulus is None:
            return torch.zeros(batch, dtype=torch.float64)
        return torch.as_tensor(stimulus, dtype=torch.float64).expand(batch).clone()

    def step(self, x, h):
        d = x - h
        return torch.stack([0.004 * d.clamp_min(0), 0.004 * (-d).clamp_min(0)], 1), h + 0.2 * d


def _arena(slope=5.0):
    return Arena(radius_mm=5.0, fields=(Field("nacl", "mM", (Linear(value_at_centre=50.0,
                                                                     slope_per_mm=slope),)),))


@pytest.fixture(scope="module")
def run():
    starts = np.array([[0.0, 0.0], [-1500.0, 800.0]])
    heads = np.array([0.0, 2.0])
    return run_closed_loop(_arena(), starts, heads, config=ClosedLoopConfig(
        duration_s=0.8, adapt_s=0.4), transducer=_Adapting(), record=("AIYL",))


def test_the_transducer_starts_adapted_to_the_start_stimulus():
    """No onset transient: without extra adaptation a trial in a constant field at its start
    value gets no current in the first frame (a state adapted to baseline 0 mM would)."""
    arena = Arena(radius_mm=5.0, fields=(Field("nacl", "mM", (Constant(value=50.0),)),))
    r = run_closed_loop(arena, np.zeros((1, 2)), np.zeros(1), transducer=_Adapting(),
                        config=ClosedLoopConfig(duration_s=0.2, adapt_s=0.0))
    assert np.all(r.current_nA[0] == 0.0)


def test_trials_start_where_and_facing_where_they_are_placed(run):
    assert run.head_um.shape == (21, 2, 2) and run.stimulus.shape == (21, 2)
    np.testing.assert_allclose(run.com_um[0], run.starts_um, atol=1e-6)
    d = run.head_um[0] - run.com_um[0]
    ang = np.arctan2(d[:, 1], d[:, 0])
    np.testing.assert_allclose(np.cos(ang - run.headings_rad), 1.0, atol=1e-9)


def test_the_stimulus_is_the_field_at_the_head(run):
    arena = _arena()
    for f in (0, 10, 20):
        want = arena.sample(run.head_um[f], f * 0.04)["nacl"]
        # the loop samples at the start of the frame from the body state of that frame
        np.testing.assert_allclose(run.stimulus[f], want, rtol=1e-9)
    assert run.recorded[:2] == ["ASEL", "ASER"] and run.v_mV.shape == (21, 2, 3)
    assert not run.diverged.any()


def test_placement_is_a_rigid_motion_of_the_same_trial():
    """In a constant field the body is isotropic: the same trial at another start and heading
    is the same track rotated and shifted (a wrong rotation or offset breaks this)."""
    flat = Arena(radius_mm=5.0, fields=(Field("nacl", "mM", (Constant(value=50.0),)),))
    cfg = ClosedLoopConfig(duration_s=0.6, adapt_s=0.0)
    a = run_closed_loop(flat, [[0.0, 0.0]], [0.0], config=cfg, transducer=_Adapting())
    b = run_closed_loop(flat, [[1000.0, -500.0]], [np.pi / 2], config=cfg,
                        transducer=_Adapting())
    rel_a = a.com_um[:, 0] - a.com_um[0, 0]
    rel_b = b.com_um[:, 0] - b.com_um[0, 0]
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])
    np.testing.assert_allclose(rel_b, rel_a @ rot.T, atol=1e-6)
    assert np.linalg.norm(rel_a[-1]) > 5.0  # it moved


def test_ablated_sensory_neurons_are_silent_and_cut_off():
    r = run_closed_loop(_arena(), [[0.0, 0.0]], [0.0], config=ClosedLoopConfig(
        duration_s=0.4, adapt_s=0.0, ablate=("ASEL", "ASER")), transducer=_Adapting())
    assert np.all(r.v_mV[:, 0, :2] == -70.0)


def test_network_adds_sensory_and_path_cells_to_the_motor_circuit():
    net = closed_loop_network(["ASEL", "ASER"])
    for c in ("ASEL", "AIYL", "RIAR", "AVBL", "VB5", "MDL07"):
        assert c in net.index, c
    with pytest.raises(KeyError, match="XYZ"):
        closed_loop_network(["XYZ"])


def test_bad_input_is_named():
    arena = _arena()
    t = _Adapting()
    with pytest.raises(ValueError, match=r"starts_um must be \(B, 2\)"):
        run_closed_loop(arena, [0.0, 0.0], [0.0], transducer=t)
    with pytest.raises(ValueError, match="headings_rad"):
        run_closed_loop(arena, [[0.0, 0.0]], [0.0, 1.0], transducer=t)
    with pytest.raises(ValueError, match="outside arena"):
        run_closed_loop(arena, [[9000.0, 0.0]], [0.0], transducer=t)
    with pytest.raises(KeyError, match="no 'odour' field"):
        run_closed_loop(arena, [[0.0, 0.0]], [0.0], transducer=t,
                        config=ClosedLoopConfig(modality="odour"))
    with pytest.raises(KeyError, match="cannot ablate 'FOO'"):
        run_closed_loop(arena, [[0.0, 0.0]], [0.0], transducer=t,
                        config=ClosedLoopConfig(ablate=("FOO",), duration_s=0.1))
    with pytest.raises(ValueError, match="finite"):
        run_closed_loop(arena, [[np.nan, 0.0]], [0.0], transducer=t)


def test_flattened_arena_keeps_the_centre_value():
    from wormlab.loop._experiment import flattened

    f = flattened(_arena())
    xy = np.array([[0.0, 0.0], [3000.0, 0.0], [-2000.0, 1000.0]])
    np.testing.assert_allclose(f.sample(xy)["nacl"], 50.0)
    assert loop.load_arena  # the package's public loader stays importable


def test_linear_arena_replaces_one_field_and_keeps_the_checks():
    from wormlab.loop._arena import ArenaError
    from wormlab.loop._closed import linear_arena

    a = linear_arena(_arena(), "nacl", 20.0, 2.0, 90.0)
    v = a.sample(np.array([[0.0, 0.0], [0.0, 1000.0], [1000.0, 0.0]]))["nacl"]
    np.testing.assert_allclose(v, [20.0, 22.0, 20.0])
    with pytest.raises(ArenaError):  # 20 mM - 10 mM/mm * 5 mm < 0 at the rim
        linear_arena(_arena(), "nacl", 20.0, 10.0, 0.0)
    with pytest.raises(KeyError, match="odour"):
        linear_arena(_arena(), "odour", 1.0, 0.1)


def test_pathway_scale_reaches_the_interneurons_and_is_bounded():
    """c302's synapses leave AIY at rest when ASE is depolarised by ~1 pA; scaling the
    pathway's synapses (and only those) lets the signal through."""
    arena = _arena(slope=10.0)
    cfg = ClosedLoopConfig(duration_s=0.6, adapt_s=0.0)
    r1 = run_closed_loop(arena, [[-2000.0, 0.0]], [0.0], config=cfg, transducer=_Strong(),
                         record=("AIYL",))
    r3 = run_closed_loop(arena, [[-2000.0, 0.0]], [0.0], transducer=_Strong(), record=("AIYL",),
                         config=ClosedLoopConfig(duration_s=0.6, adapt_s=0.0,
                                                 path_syn_scale=10.0))
    aiy = r1.recorded.index("AIYL")
    assert r1.v_mV[:, 0, aiy].max() < -55.0 < r3.v_mV[:, 0, aiy].max()
    with pytest.raises(ValueError, match="path_syn_scale"):
        run_closed_loop(arena, [[0.0, 0.0]], [0.0], transducer=_Strong(),
                        config=ClosedLoopConfig(path_syn_scale=-1.0))


class _Strong(_Adapting):
    """Test double: a constant 1 pA into ASEL/ASER (the shipped NaCl transducer's order of
    magnitude; depolarises them to about -35 mV)."""

    def step(self, x, h):
        return torch.full((x.shape[0], 2), 0.001, dtype=torch.float64), h


def test_split_pathway_synapse_types_leave_the_circuit_unchanged():
    """The sensory and path cells' synapses get their own copies of c302's types (same
    values): the closed-loop network simulates exactly as the plain build does."""
    from wormlab import circuit
    from wormlab.worm import build_motor_network

    extra = ("ASEL", "ASER", *loop.PATH_INTERNEURONS)
    split = closed_loop_network(["ASEL", "ASER"])
    plain = build_motor_network(extra_cells=extra)
    assert any(n.startswith("sensory_") for n in split.syn_type_names)
    assert any(n.startswith("path_") for n in split.syn_type_names)
    assert not any(n.startswith(("sensory_", "path_")) for n in plain.syn_type_names)
    assert split.names == plain.names
    stim = circuit.Stimulus.waveform(["ASEL", "AVBL"], torch.full((2, 1, 2), 0.003,
                                                                  dtype=torch.float64), 60.0)
    a, b = (circuit.simulate(n, stim, 60.0, 1.0, solver="exp2", record_every=10).v_mV
            for n in (split, plain))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def _short(pathway=None, **kw):
    cfg = ClosedLoopConfig(duration_s=0.4, adapt_s=0.0, **kw)
    return run_closed_loop(_arena(slope=10.0), [[-2000.0, 0.0], [500.0, 0.0]], [0.0, 1.0],
                           config=cfg, transducer=_Strong(),
                           record=("AIYL", "AIBR", "SMDDL"), pathway=pathway)


def test_pathway_parameters_per_trial_match_the_config_scales():
    """Per-trial pathway values act as the config's class-level scales do, c302's values
    change nothing, and a lowered half-activation lets ASE's ~1 pA depolarisation through."""
    base = _short()
    same = _short({"sensory_vth_mV": 0.0, "path_delta_mV": 5.0, "w:ASER": 1.0})
    np.testing.assert_array_equal(base.v_mV, same.v_mV)
    out = _short({"path_out_scale": [3.0, 3.0], "w:ASEL": 0.0})
    ref = _short(path_out_scale=3.0, cell_syn_scales=(("ASEL", 0.0),))
    np.testing.assert_allclose(out.v_mV, ref.v_mV, rtol=0, atol=1e-9)
    low = _short({"sensory_vth_mV": [-30.0, 0.0]})
    aiy = base.recorded.index("AIYL")
    assert low.v_mV[-1, 0, aiy] > base.v_mV[-1, 0, aiy] + 5.0   # trial 0: lowered
    np.testing.assert_allclose(low.v_mV[:, 1], base.v_mV[:, 1], atol=1e-9)  # trial 1: c302


def test_bad_pathway_parameters_are_named():
    with pytest.raises(KeyError, match="unknown pathway parameter 'vth'"):
        _short({"vth": 1.0})
    with pytest.raises(KeyError, match="'FOO' is not a cell"):
        _short({"w:FOO": 1.0})
    with pytest.raises(ValueError, match="sensory_delta_mV.*outside"):
        _short({"sensory_delta_mV": 0.0})
    with pytest.raises(ValueError, match="3 values for 2 trials"):
        _short({"path_vth_mV": [-1.0, -2.0, -3.0]})
    with pytest.raises(ValueError, match="path_out_scale"):
        _short(path_out_scale=-1.0)
    with pytest.raises(KeyError, match="cell_syn_scales names 'FOO'"):
        _short(cell_syn_scales=(("FOO", 1.0),))
