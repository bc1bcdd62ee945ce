"""Validation scorecard (wormlab.fit._score): exact metrics on constructed cases, the simulated
atlas experiment on tiny circuits, and the smoke scorecard on a sub-circuit."""

import math

import numpy as np
import pandas as pd
import pytest

from wormlab import circuit
from wormlab import recordings as R
from wormlab.fit import _score as S

SUB = ("AVAL", "AVAR", "AVEL", "AVER", "AIBL", "RIML", "RIMR", "AVBR")


def test_atlas_r_exact():
    m = np.array([0.3, -0.1, 0.5, 0.2, 0.0])
    assert S.atlas_r(m, m) == (pytest.approx(1.0), 5)
    assert S.atlas_r(2 * m + 3, m)[0] == pytest.approx(1.0)
    assert S.atlas_r(-m, m)[0] == pytest.approx(-1.0)
    # NaN pairs are dropped, not counted
    r, n = S.atlas_r(np.r_[m, np.nan], np.r_[m, 1.0])
    assert n == 5 and r == pytest.approx(1.0)
    assert math.isnan(S.atlas_r(m[:2], m[:2])[0])
    with pytest.raises(ValueError, match="differ in shape"):
        S.atlas_r(m, m[:3])


def test_correlation_metrics_hand_built_three_neurons():
    x = np.sin(np.linspace(0, 6, 50))
    c = S.pearson_matrix(np.c_[x, 2 * x + 1, -x])
    np.testing.assert_allclose(c, [[1, 1, -1], [1, 1, -1], [-1, -1, 1]], atol=1e-12)
    # off-diagonal entries (1, -1, -1) vs 0: MSE 1 over 3 entries
    assert S.correlation_mse(np.eye(3), c) == (pytest.approx(1.0), 3)
    # only (0, 1) differs, by 0.5: 0.25 / 3
    sim = c.copy()
    sim[0, 1] = sim[1, 0] = 0.5
    assert S.correlation_mse(sim, c)[0] == pytest.approx(0.25 / 3)
    # a silent simulated cell (NaN row) counts as correlation 0
    silent = S.pearson_matrix(np.c_[x, 2 * x, np.ones(50)])
    assert np.isnan(silent[0, 2])
    assert S.correlation_mse(silent, c)[0] == pytest.approx((0 + 1 + 1) / 3)
    with pytest.raises(ValueError, match="square"):
        S.correlation_mse(np.eye(3), np.eye(2))


def test_correlation_target_of_a_recording_with_itself_is_zero():
    rec = R.default_recording(smoke=True)
    tg = S.correlation_targets([rec])
    assert len(tg) == 1 and len(tg[0].neurons) >= 3
    t = tg[0]
    col = {S._norm_name(rec.neuron_names[k]): k for k in rec.identified}  # Kato: DB01 -> DB1
    x = rec.fill_nan().traces[:, [col[n] for n in t.neurons]]
    assert S.correlation_mse(S.pearson_matrix(x), t.corr) == (0.0, len(t.neurons) * (
        len(t.neurons) - 1) // 2)
    # restricted to circuit cells: only names the network has
    net = circuit.build_network(cells=SUB)
    for t in S.correlation_targets([rec], net.names, min_neurons=1):
        assert set(t.neurons) <= set(SUB)


def test_split_atlas_pairs_seeded_and_disjoint():
    pairs = pd.DataFrame({"stim": [f"A{i}" for i in range(40)], "resp": ["B"] * 40,
                          "dff": np.arange(40.0), "q": 0.01, "n_trials": 3})
    fit, held = S.split_atlas_pairs(0, pairs)
    assert len(fit) == len(held) == 20
    assert not set(fit["stim"]) & set(held["stim"])
    assert set(fit["stim"]) | set(held["stim"]) == set(pairs["stim"])
    fit2, held2 = S.split_atlas_pairs(0, pairs.sample(frac=1, random_state=1))
    pd.testing.assert_frame_equal(held, held2)  # row order of the input does not matter
    assert set(S.split_atlas_pairs(1, pairs)[1]["stim"]) != set(held["stim"])


def test_atlas_responses_map_each_batch_member_to_its_stimulated_cell():
    # three mutually unconnected neurons: only the stimulated cell itself responds; the batch
    # is chunked (batch_size 2) so a member/cell mix-up or a swapped control shows
    cells = ("ALML", "VD13", "ASEL")
    net = circuit.build_network(cells=cells)
    pairs = pd.DataFrame([(a, b) for a in cells for b in cells], columns=["stim", "resp"])
    amp = S.atlas_responses(net, pairs, S.AtlasProtocol(settle_ms=20, window_ms=20,
                                                        batch_size=2))
    self_ = (pairs["stim"] == pairs["resp"]).to_numpy()
    assert np.all(amp[self_] > 10.0)  # 20 pA x 2 ms depolarises clearly (mV, window mean)
    assert np.all(amp[~self_] == 0.0)
    with pytest.raises(KeyError, match="not in the network"):
        S.atlas_responses(net, pd.DataFrame({"stim": ["AVAL"], "resp": ["ALML"]}))


def _atlas_or_skip(cells):
    try:
        return S.atlas_targets(cells)
    except S.AtlasUnavailable:
        pytest.skip("wormneuroatlas not installed (pip install wormlab[atlas]) and no cache")


def test_atlas_targets_significant_pairs_only():
    t = _atlas_or_skip(SUB)
    assert len(t) >= 5 and (t["q"] < 0.05).all()
    assert (t["stim"] != t["resp"]).all()
    assert set(t["stim"]) | set(t["resp"]) <= set(SUB)
    # orientation: the atlas' [i, j] is i's response to j (Randi 2023: AVAL -> AVEL measured)
    row = t[(t["stim"] == "AVAL") & (t["resp"] == "AVEL")]
    assert len(row) == 1 and row["dff"].iloc[0] == pytest.approx(0.3576, abs=1e-3)
    with pytest.raises(ValueError, match="q_max"):
        S.atlas_targets(SUB, q_max=0)


def test_scorecard_smoke_on_sub_circuit():
    net = circuit.build_network(cells=SUB)
    pairs = _atlas_or_skip(SUB)
    recs = [R.default_recording(smoke=True)]
    df = S.scorecard(net, smoke=True, heldout_pairs=pairs, recordings=recs)
    got = df.set_index("target")
    fc = got.loc["tier2_functional_connectivity"]
    assert fc["n"] == len(pairs[pairs["stim"].isin(sorted(set(pairs["stim"]))[:8])])
    assert -1 <= fc["value"] <= 1 and fc["status"] == "ok"
    # the scorecard's r is the metric applied to the simulated experiment
    sub = pairs[pairs["stim"].isin(sorted(set(pairs["stim"]))[:8])]
    sim = S.atlas_responses(net, sub, S.AtlasProtocol(window_ms=50.0))
    assert fc["value"] == pytest.approx(S.atlas_r(sim, sub["dff"])[0])
    cs = got.loc["tier2_correlation_structure"]
    assert cs["status"] == "ok" and 0 <= cs["value"] <= 4
    assert got.loc["tier3_defecation_period", "status"].startswith("not available")
    assert got.loc["tier3_speed", "status"].startswith("not available")


def test_scorecard_hooks_and_missing_atlas(monkeypatch):
    net = circuit.build_network(cells=SUB)

    def missing(*a, **k):
        raise S.AtlasUnavailable("no atlas")

    monkeypatch.setattr(S, "_atlas_table", missing)
    df = S.scorecard(net, targets=("tier2_functional_connectivity", "tier3_defecation_period",
                                   "tier3_speed", "tier3_wavelength"),
                     intestine=lambda n: 47.0,
                     kinematics=lambda n: {"speed": 0.2, "wavelength": 0.6}).set_index("target")
    assert df.loc["tier2_functional_connectivity", "status"] == S.ATLAS_MISSING
    assert df.loc["tier3_defecation_period", "value"] == 47.0
    assert df.loc["tier3_defecation_period", "passed"]
    assert df.loc["tier3_wavelength", "value"] == 0.6
    with pytest.raises(ValueError, match="tier9"):
        S.scorecard(net, targets=("tier9",))
