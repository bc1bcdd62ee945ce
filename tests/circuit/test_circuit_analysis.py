"""Library functions behind the notebook and the widgets; the CLI."""

import numpy as np
import pytest
import torch

from wormlab import circuit
from wormlab.circuit import analysis, cli, reference


def test_gradient_table_per_class(c302_spec, make_sub):
    net = make_sub(c302_spec, ["AVAL", "AVAR", "AVDL", "AVDR", "PVCL", "PLML"], share="class")
    df = analysis.gradient_table(net, "AVA", "g_ca", duration_ms=5.0, stimulus={"AVDL": 0.008})
    assert set(df.index) == set(net.group_names)
    assert df.attrs["loss"].startswith("mean V of AVA")
    assert np.isfinite(df.grad).all() and (df.grad != 0).any()
    w = analysis.gradient_table(net, "AVA", "w_syn", duration_ms=5.0, stimulus={"AVDL": 0.008})
    assert any(i.startswith("AVDL->AVA") for i in w.index[:5])  # the driven input matters most
    with pytest.raises(KeyError, match="AVX"):
        analysis.gradient_table(net, "AVX", "g_ca")


def test_tweaks_change_the_response(c302_spec, make_sub):
    net = make_sub(c302_spec, ["AVAL", "AVAR", "AVDL"])
    base = analysis.tweak_and_run(net, "AVDL", 8.0, duration_ms=20.0)
    more = analysis.tweak_and_run(net, "AVDL", 8.0, duration_ms=20.0, g_syn=5.0)
    assert base.v_mV.shape == more.v_mV.shape
    assert float((more.trace("AVAL") - base.trace("AVAL")).abs().max()) > 0.1
    with pytest.raises(KeyError, match="unknown parameters"):
        analysis.tweak_overrides(net, g_foo=2.0)


def test_error_table_against_synthetic_reference(c302_spec, make_sub):
    """error_table/divergence_curve on a reference built from our own run (shifted 1 mV)."""
    net = make_sub(c302_spec, ["AVAL", "AVAR"])
    res = circuit.simulate(net, {"AVAL": 0.006}, 10.0, 0.1)
    v = res.v_mV[:, 0].detach().numpy()
    ref = reference.ReferenceTraces(res.t_ms.numpy(), v + 1.0, list(res.names), 0.0, {}, None)
    tab = analysis.error_table(res, ref)
    assert np.allclose(tab.max_abs_err_mV, 1.0)
    curve = analysis.divergence_curve(res, ref, step_ms=5.0)
    assert list(curve.t_ms) == [5.0, 10.0]
    # a 1 mV error everywhere: relative error 1 / range; the last window is the whole run
    np.testing.assert_allclose(tab.rel_err, 1.0 / np.maximum(tab.range_mV, 1e-6))
    assert curve.max_rel_err.iloc[-1] == pytest.approx(tab.rel_err.max())


def _ramp_case():
    """Hand-made traces: reference ramps (sampled every 0.25 ms, stored in another cell order
    with an extra cell) and ours on a 0.5 ms grid. AVAL: ref -50 + t mV, ours 0.4 mV above
    it throughout. AVAR: ref -60 + 2t mV, ours equal except +3 mV at t = 7 ms."""
    from wormlab.circuit._simulate import Result

    t = np.arange(0, 10.001, 0.5)
    ours = np.stack([-50 + t + 0.4, -60 + 2 * t + 3.0 * np.isclose(t, 7.0)], 1)
    res = Result(torch.from_numpy(t), torch.from_numpy(ours)[:, None], ["AVAL", "AVAR"],
                 torch.zeros(1))
    tr = np.arange(0, 10.001, 0.25)
    ref = reference.ReferenceTraces(tr, np.stack([-60 + 2 * tr, -70 + 0 * tr, -50 + tr], 1),
                                    ["AVAR", "PLML", "AVAL"], 0.0, {}, None)
    return res, ref


def test_divergence_curve_and_error_table_known_values():
    """Window ending at t: AVAL errs 0.4 mV over a range of t mV; AVAR 3 mV over 2t once
    t >= 7 ms. So max |dV|/range = 0.16, 0.08, max(0.053, 0.2), max(0.04, 0.15)."""
    res, ref = _ramp_case()
    curve = analysis.divergence_curve(res, ref, step_ms=2.5)
    np.testing.assert_allclose(curve.t_ms, [2.5, 5.0, 7.5, 10.0])
    np.testing.assert_allclose(curve.max_rel_err, [0.16, 0.08, 0.2, 0.15])
    np.testing.assert_allclose(curve.frac_within_5pct, [0.5, 0.5, 0.0, 0.5])
    tab = analysis.error_table(res, ref)
    assert list(tab.index) == ["AVAR", "AVAL"]  # worst first
    np.testing.assert_allclose(tab.loc[["AVAL", "AVAR"], "max_abs_err_mV"], [0.4, 3.0])
    np.testing.assert_allclose(tab.loc[["AVAL", "AVAR"], "range_mV"], [10.0, 20.0])
    np.testing.assert_allclose(tab.loc[["AVAL", "AVAR"], "rel_err"], [0.04, 0.15])
    assert list(tab.loc[["AVAL", "AVAR"], "within_5pct"]) == [True, False]
    early = analysis.error_table(res, ref, window_ms=5.0)  # before AVAR's spike
    np.testing.assert_allclose(early.loc[["AVAL", "AVAR"], "rel_err"], [0.08, 0.0], atol=1e-12)


def test_cli_simulate(tmp_path, capsys, full_net):
    out = tmp_path / "v.csv"
    assert cli.main(["simulate", "--duration-ms", "1", "--record", "AVAL", "PLML",
                     "--out", str(out)]) == 0
    text = out.read_text().splitlines()
    assert text[0] == "t_ms,AVAL,PLML" and len(text) == 12
    # the values, not just the shape: the same run through the library, at every time point
    import pandas as pd

    got = pd.read_csv(out, index_col="t_ms")
    with torch.no_grad():
        res = circuit.simulate(full_net, "c302", 1.0, 0.1, record=["AVAL", "PLML"])
    np.testing.assert_allclose(got.index, np.arange(11) * 0.1, atol=1e-9)
    np.testing.assert_allclose(got.to_numpy(), res.v_mV[:, 0].numpy(), rtol=0, atol=1e-9)
    assert not np.allclose(got.PLML, got.PLML.iloc[0])  # c302's PLM current moves it


def test_widgets_build_headless(c302_spec, make_sub, monkeypatch):
    """The panels show what the library computes and their controls reach the library calls:
    a slider or dropdown that is not wired (or passes the wrong value) fails here."""
    pytest.importorskip("ipywidgets")
    from widgets.circuit import circuit_panel, gradient_panel

    calls = []
    tweak = analysis.tweak_and_run

    def spy(net, target, amplitude_pA, duration_ms, **scales):
        calls.append((target, amplitude_pA, duration_ms, scales))
        return tweak(net, target, amplitude_pA, duration_ms, **scales)

    monkeypatch.setattr(analysis, "tweak_and_run", spy)
    net = make_sub(c302_spec, ["PLML", "AVAL", "AVAR", "AVDL"], share="class")
    p = circuit_panel(net, target="PLML", duration_ms=2.0)
    assert calls[-1] == ("PLML", 5.0, 2.0, {k: 1.0 for k in analysis.TWEAKS})
    assert "2 ms of 4 cells" in p.children[3].value
    controls = {c.description: c for box in p.children[:3] for c in box.children}
    controls["g_syn x"].value = 2.0
    assert calls[-1][3]["g_syn"] == 2.0
    controls["I (pA)"].value = 12.5
    controls["target"].value = "AVDL"
    assert calls[-1][:2] == ("AVDL", 12.5) and calls[-1][3]["g_syn"] == 2.0

    g = gradient_panel(net, "AVA", "g_ca", duration_ms=1.0)
    want = analysis.gradient_table(net, "AVA", "g_ca", 1.0)
    status = g.children[1]
    assert status.value.startswith(
        f"<b>{want.attrs['loss']}: {want.attrs['loss_value_mV']:.3f} mV</b>")
    g.children[0].children[0].value = "AVD"  # the loss dropdown
    assert "mean V of AVD" in status.value
    assert torch.is_tensor(net.params["g_ca"])
