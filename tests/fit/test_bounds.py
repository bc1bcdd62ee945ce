"""Bounds (issue 16 item 3): read from parameter_bounds.yml, enforced by reparameterisation.

Each push test drives a parameter with Adam against one of its bounds and checks it stays
inside and gets close; the same steps on the raw parameter leave the bounds (so the test
would fail if Bounded did not constrain anything).
"""

import math

import pytest
import torch

from wormlab import circuit
from wormlab.fit._bounds import Bounded, BoundsError, load_bounds, project

CELLS = ("AVAL", "AVAR", "AVBL", "AVBR", "PVCL", "DB1", "VB1", "MDL07")


@pytest.fixture(scope="module")
def net():
    return circuit.build_network(cells=CELLS)


def _push(b, name, direction, steps=400, lr=0.2, log=False):
    """Adam on ``direction * sum(x)`` (``log``: on log x, the natural scale of a time
    constant spanning 6 decades)."""
    opt = torch.optim.Adam(b.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        x = b.value(name)
        (direction * (torch.log(x) if log else x).sum()).backward()
        opt.step()
    return b.value(name).detach()


def _raw_push(net, name, direction, steps=400):
    """Adam on the unconstrained physical value (the fault Bounded prevents), with a step of
    2 % of the bounds' range."""
    lo, hi = net.bounds(name)
    x = net.params[name].detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.02 * (hi - lo))
    for _ in range(steps):
        opt.zero_grad()
        (direction * x.sum()).backward()
        opt.step()
    return x.detach()


@pytest.mark.parametrize("name,direction,edge", [
    ("g_kslow", +1, "lower"),   # conductance density 0 < g <= 100 mS/cm^2 (open lower)
    ("g_kslow", -1, "upper"),
    ("e_leak", +1, "lower"),    # reversal -100 .. 80 mV
    ("e_leak", -1, "upper"),
    ("tau_n", +1, "lower"),     # time constant 0.01 .. 10,000 ms (log-sigmoid)
    ("tau_n", -1, "upper"),
])
def test_adam_against_a_bound_stays_inside(net, name, direction, edge):
    b = Bounded(net, [name])
    lo, hi = net.bounds(name)
    x = _push(b, name, direction, log=name.startswith("tau_"))
    assert torch.isfinite(x).all()
    assert bool(((x > lo) if name.startswith("g_") else (x >= lo)).all()), (name, x)
    assert bool((x <= hi).all()), (name, x)
    target = lo if edge == "lower" else hi
    # near the bound: within 1 % of the range (log range for the time constant)
    if name == "tau_n":
        assert (torch.log(x) - math.log(target)).abs().max() < 0.01 * math.log(hi / lo)
    else:
        assert (x - target).abs().max() < 0.01 * (hi - lo), (name, x, target)
    raw = _raw_push(net, name, direction)
    assert not bool(((raw >= lo) & (raw <= hi)).all()), "the raw push should leave the bounds"


def test_slope_keeps_its_sign_and_abs_bound(net):
    b = Bounded(net, ["scale_q", "h_k"])
    s0, k0 = net.params["scale_q"].detach(), net.params["h_k"].detach()
    assert bool((s0 < 0).any()) or bool((k0 < 0).any())  # C1 has negative slopes
    for name in ("scale_q", "h_k"):
        x0 = net.params[name].detach()
        x = _push(b, name, -torch.sign(x0).mean().item())  # shrink |x| towards 0
        lo, hi = net.bounds(name)
        assert bool((torch.sign(x) == torch.sign(x0)).all())
        assert bool((x.abs() > 0).all()) and bool((x.abs() >= lo).all())
        assert bool((x.abs() <= hi).all())


def test_start_value_round_trips_and_write(net):
    names = ["g_ca", "e_ca", "tau_e", "h_ca_half", "w_syn", "scale_n"]
    b = Bounded(net, names)
    for n, x in b().items():
        torch.testing.assert_close(x, net.params[n].detach(), rtol=1e-9, atol=1e-9)
    import copy

    other = copy.deepcopy(net)
    with torch.no_grad():
        b.z["g_ca"].add_(3.0)
    b.write(other)
    assert bool((other.params["g_ca"] > net.params["g_ca"]).all())


def test_gradient_reaches_z_through_simulate(net):
    b = Bounded(net, ["g_ca", "e_leak"])
    stim = circuit.Stimulus.step(["AVAL"], 0.005, start_ms=1.0)
    res = circuit.simulate(net, stim, 5.0, record=["AVAL"], params=b())
    res.v_mV[-1].sum().backward()
    assert all(float(z.grad.abs().sum()) > 0 for z in b.z.values())


def test_project_clamps_in_place(net):
    import copy

    n = copy.deepcopy(net)
    with torch.no_grad():
        n.params["g_kslow"].fill_(-5.0)
        n.params["e_leak"].fill_(500.0)
        n.params["scale_q"].mul_(1e6)
    changed = project(n, ["g_kslow", "e_leak", "scale_q"])
    assert changed["g_kslow"] > 0 and changed["e_leak"] > 0
    assert bool(n.within_bounds("g_kslow").all()) and bool(n.within_bounds("e_leak").all())
    assert bool(n.within_bounds("scale_q").all())
    assert bool((torch.sign(n.params["scale_q"]) == torch.sign(net.params["scale_q"])).all())


def test_default_file_matches_circuit_bounds(net):
    t = load_bounds()
    for name in net.params:
        b = t.for_param(net, name)
        assert (b.lower, b.upper) == net.bounds(name), name
    t.check(net)  # every C1 value inside


def test_override_from_an_edited_file(net, tmp_path):
    text = load_bounds().path
    p = tmp_path / "b.yml"
    body = open(text).read().replace(
        "parameters: {}",
        'parameters:\n  e_leak: {lower: -60.0, upper: -45.0, unit: mV, source: "test"}')
    p.write_text(body)
    t = load_bounds(p)
    assert t.for_param(net, "e_leak").upper == -45.0
    x = _push(Bounded(net, ["e_leak"], bounds=p), "e_leak", -1)
    assert bool((x <= -45.0).all()) and float(x.min()) > -45.2


@pytest.mark.parametrize("edit,msg", [
    ("parameters: {}", "not: [valid"),                                     # broken YAML
    ("version: 1", "version: 7"),
    ("kinds:\n", "kinds:\n  voltage: {lower: 0, upper: 1, unit: mV}\n"),   # unknown kind
    ("parameters: {}", "parameters:\n  e_leak: {lower: 5, upper: 1, unit: mV}"),
])
def test_bad_bounds_file_is_named(tmp_path, edit, msg):
    p = tmp_path / "bad.yml"
    p.write_text(open(load_bounds().path).read().replace(edit, msg, 1))
    with pytest.raises(BoundsError, match="bad.yml"):
        load_bounds(p)


def test_bad_names_units_values(net, tmp_path):
    with pytest.raises(BoundsError, match="g_caa"):
        Bounded(net, ["g_caa"])
    p = tmp_path / "u.yml"
    p.write_text(open(load_bounds().path).read().replace(
        "parameters: {}", "parameters:\n  e_leak: {lower: -0.1, upper: 0.08, unit: V}"))
    with pytest.raises(BoundsError, match="e_leak.*'V'"):
        Bounded(net, ["e_leak"], bounds=p)
    import copy

    n = copy.deepcopy(net)
    with torch.no_grad():
        n.params["g_ca"][0] = 250.0
    with pytest.raises(BoundsError, match=r"g_ca.*250\.0"):
        Bounded(n, ["g_ca"])
    with pytest.raises(FileNotFoundError):
        load_bounds(tmp_path / "missing.yml")
