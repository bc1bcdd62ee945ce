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
    assert len(curve) == 2


def test_cli_simulate(tmp_path, capsys):
    out = tmp_path / "v.csv"
    assert cli.main(["simulate", "--duration-ms", "1", "--record", "AVAL", "PLML",
                     "--out", str(out)]) == 0
    text = out.read_text().splitlines()
    assert text[0] == "t_ms,AVAL,PLML" and len(text) == 12


def test_widgets_build_headless(c302_spec, make_sub):
    pytest.importorskip("ipywidgets")
    from widgets.circuit import circuit_panel, gradient_panel

    net = make_sub(c302_spec, ["PLML", "AVAL", "AVAR", "AVDL"], share="class")
    p = circuit_panel(net, target="PLML", duration_ms=2.0)
    g = gradient_panel(net, "AVA", "g_ca", duration_ms=1.0)
    assert p.children and g.children
    assert torch.is_tensor(net.params["g_ca"])
