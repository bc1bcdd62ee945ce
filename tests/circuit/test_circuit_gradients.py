"""Gradients: gradcheck, central finite differences, every parameter, checkpointing, blow-ups."""

import pytest
import torch

from wormlab import circuit

# (parameter, index, what it is) — a channel conductance, a synaptic weight, a gap-junction
# weight and a time constant
REPRESENTATIVE = [("g_ca", 0, "Ca channel density"), ("w_syn", None, "a synaptic weight"),
                  ("w_gap", None, "a gap-junction weight"), ("tau_n", 0, "k_slow time constant")]


def _loss(net, stim, params, duration_ms, dt_ms, record, solver="rk4_fused"):
    res = circuit.simulate(net, stim, duration_ms, dt_ms, record=record, params=params,
                           solver=solver)
    return res.v_mV.mean()


def _fd_check(net, stim, duration_ms, dt_ms, record, conn_pre, rel_step=1e-5):
    base = {k: v.detach().clone() for k, v in net.params.items()}
    for name, idx, what in REPRESENTATIVE:
        if idx is None:  # the first connection out of conn_pre
            pre = net.syn_pre if name == "w_syn" else net.gap_a
            idx = int((pre == net.index[conn_pre]).nonzero()[0])
        p = {k: v.clone().requires_grad_(k == name) for k, v in base.items()}
        loss = _loss(net, stim, p, duration_ms, dt_ms, record)
        (g,) = torch.autograd.grad(loss, p[name])
        x0 = float(base[name][idx])
        h = rel_step * abs(x0)
        vals = []
        for sgn in (1, -1):
            q = {k: v.clone() for k, v in base.items()}
            q[name][idx] = x0 + sgn * h
            with torch.no_grad():
                vals.append(float(_loss(net, stim, q, duration_ms, dt_ms, record)))
        fd = (vals[0] - vals[1]) / (2 * h)
        ad = float(g[idx])
        assert abs(fd) > 1e-8, f"{what}: loss insensitive, test would be vacuous"
        assert abs(ad - fd) <= 0.01 * abs(fd), f"{what} ({name}[{idx}]): autograd {ad} vs FD {fd}"


def test_finite_differences_subcircuit(make_sub, c302_spec, active_stim):
    names = ["AVAL", "AVAR", "AVDL", "AVDR", "PVCL"]
    net = make_sub(c302_spec, names)
    _fd_check(net, active_stim(["AVAL", "AVDL"]), 12.0, 0.1, ["AVAL", "AVAR", "PVCL"], "AVAL")


@pytest.mark.slow
def test_finite_differences_full_network(full_net):
    stim = circuit.Stimulus.step(["PLML", "PLMR", "AVAL", "AVBL"], 0.008, start_ms=0.5)
    _fd_check(full_net, stim, 8.0, 0.1, ["AVAL", "AVAR", "AVBL", "DB1", "VB1"], "AVAL")


def test_gradcheck_three_neurons(tiny):
    """torch.autograd.gradcheck (float64) through 3 ms of a 3-neuron circuit."""
    stim = circuit.Stimulus.step(["AVAL"], 0.008, start_ms=0.2)
    base = {k: v.detach().clone() for k, v in tiny.params.items()}
    names = ("g_ca", "g_syn", "w_gap", "tau_e")

    def f(*xs):
        p = dict(base)
        p.update(dict(zip(names, xs)))
        res = circuit.simulate(tiny, stim, 3.0, 0.1, params=p)
        return res.v_mV[::6]

    inputs = tuple(base[k].clone().requires_grad_(True) for k in names)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_every_parameter_receives_a_gradient(full_net):
    net = full_net
    net.zero_grad(set_to_none=True)
    stim = circuit.Stimulus.step(["PLML", "PLMR", "AVAL", "DD1", "VD2"], 0.008, start_ms=0.2)
    res = circuit.simulate(net, stim, 3.0, 0.1)
    (res.v_mV ** 2).mean().backward()
    missing = [k for k, p in net.params.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient for {missing}"
    circuit.check_gradients(net)
    net.zero_grad(set_to_none=True)


def test_checkpointed_gradient_equals_plain(make_sub, c302_spec, active_stim):
    net = make_sub(c302_spec, ["AVAL", "AVAR", "AVDL", "PVCL"])
    stim = active_stim(["AVAL", "PVCL"])
    grads = []
    for ck in (None, 2.0):
        net.zero_grad(set_to_none=True)
        res = circuit.simulate(net, stim, 10.0, 0.1, checkpoint_ms=ck)
        res.v_mV.mean().backward()
        grads.append({k: p.grad.clone() for k, p in net.params.items()})
    for k in grads[0]:
        assert torch.allclose(grads[0][k], grads[1][k], rtol=1e-9, atol=1e-14), k


def test_gradient_blow_up_is_named(make_sub, c302_spec):
    net = make_sub(c302_spec, ["AVAL", "AVAR"])
    net.zero_grad(set_to_none=True)
    res = circuit.simulate(net, {"AVAL": 0.005}, 2.0, 0.1)
    res.v_mV.sum().backward()
    net.params["w_gap"].grad[0] = float("nan")
    with pytest.raises(circuit.CircuitBlowUpError, match="w_gap.*gap AVA"):
        circuit.check_gradients(net)
