import numpy as np
import pytest
import torch

from wormlab.behaviour import (
    MODELS,
    BehaviourConfig,
    Decoder,
    GraphDecoder,
    ModelConfig,
    build_model,
    build_windows,
    connectome_weights,
    metrics,
)

NAMES = ["AVAL", "AVBL", "RIML", "AIBL", "RMEL"]
TORCH = [m for m in MODELS if m != "svm"]


def _tiny(b=6, t=4, n=5, f=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, t, n, f, generator=g)
    ctx = torch.rand(b, n, n, 8, generator=g)
    return x, ctx


@pytest.mark.parametrize("name", TORCH)
def test_forward_backward_every_parameter(name):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name, hidden=8, readout_hidden=8), 5, 2, 4, 3, NAMES)
    x, ctx = _tiny()
    out = model(x, ctx)
    assert out.shape == (6, 3) and torch.isfinite(out).all()
    out.logsumexp(-1).sum().backward()
    for pname, p in model.named_parameters():
        if pname.startswith("forecast_head"):  # forecast_head, forecast_head_lstm
            assert p.grad is None  # only used by forecasting
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient for {pname}"


@pytest.mark.parametrize("name", TORCH)
@pytest.mark.parametrize("t", [1, 3])
def test_forecast_step_backward(name, t):
    model = build_model(ModelConfig(name=name, hidden=8), 5, 1, t, 1, NAMES)
    x, ctx = _tiny(f=1, t=t)
    nxt = model.step(x, ctx)
    assert nxt.shape == (6, 5, 1) and torch.isfinite(nxt).all()
    nxt.pow(2).mean().backward()
    head = model.forecast_head_lstm if name == "gnn_lstm" else model.forecast_head
    assert head.weight.grad.abs().sum() > 0
    assert model.encode[0].weight.grad.abs().sum() > 0
    if name == "gnn_lstm":  # the forecast runs through the LSTM, not the per-node head
        assert model.forecast_head.weight.grad is None
        assert model.lstm.weight_ih_l0.grad.abs().sum() > 0


def test_lstm_forecast_uses_the_whole_window():
    # gnn_lstm forecasts from every step of its window (the LSTM), the others from the last
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="gnn_lstm", hidden=8), 5, 1, 3, 1, NAMES).eval()
    x, ctx = _tiny(f=1, t=3)
    x2 = x.clone()
    x2[:, 0] += 1.0  # change only the first step of the window
    with torch.no_grad():
        assert not torch.allclose(model.step(x, ctx), model.step(x2, ctx))


def test_lstm_forecast_head_leaves_the_global_rng_alone(monkeypatch):
    # classification training draws dropout masks from the global stream: building the
    # forecasting head of gnn_lstm must not move it (old gnn_lstm results stay reproducible)
    cfg = ModelConfig(name="gnn_lstm", hidden=8)
    torch.manual_seed(0)
    assert hasattr(build_model(cfg, 5, 2, 4, 3, NAMES), "forecast_head_lstm")
    with_head = torch.get_rng_state()
    monkeypatch.setattr(GraphDecoder, "_add_lstm_forecast_head", lambda self, width: None)
    torch.manual_seed(0)
    assert not hasattr(build_model(cfg, 5, 2, 4, 3, NAMES), "forecast_head_lstm")
    assert torch.equal(torch.get_rng_state(), with_head)


@pytest.mark.parametrize("name", ["gnn", "gnn_static"])
def test_inferred_edges_are_distributions(name):
    model = build_model(ModelConfig(name=name), 5, 2, 4, 2, NAMES)
    x, ctx = _tiny()
    w = model.edge_weights(x, ctx).detach()
    assert w.shape == ((6, 4, 5, 5) if name == "gnn" else (6, 5, 5))
    assert (w >= 0).all()
    assert torch.allclose(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-6)
    assert torch.all(torch.diagonal(w, dim1=-2, dim2=-1) == 0)  # no self-edges


def test_connectome_weights_real_wiring():
    w = connectome_weights(NAMES)
    s = w.sum(1)
    assert torch.all((torch.isclose(s, torch.ones(5))) | (s == 0))
    from wormlab import connectome

    c = connectome.load()
    # AVAL receives from AVBL? the normalised weight is positive exactly where a synapse is
    i, j = 0, 1
    assert (w[i, j] > 0) == (c.chem[c.index("AVBL"), c.index("AVAL")] > 0)


def test_wrong_input_shape_is_named():
    model = build_model(ModelConfig(name="mlp"), 5, 2, 4, 2, NAMES)
    with pytest.raises(ValueError, match="expected x"):
        model(torch.rand(2, 4, 3, 2))
    with pytest.raises(ValueError, match="unknown torch model"):
        build_model(ModelConfig(name="transformer"), 5, 2, 4, 2, NAMES)


@pytest.mark.parametrize("name", MODELS)
def test_learns_tiny_synthetic_task_and_is_seeded(name, make_worm):
    # synthetic worms: neuron 0 carries the reversal command
    cfg = BehaviourConfig().replace(data={"window": 4}, model={"name": name, "hidden": 8},
                                    train={"epochs": 15, "lr": 1e-2, "seed": 3})
    tr_w, te_w = make_worm("synthetic/a", seed=0), make_worm("synthetic/b", seed=1)
    ends = lambda w: {w.worm_id: np.arange(3, w.n_frames)}  # noqa: E731
    tr = build_windows([tr_w], ends(tr_w), tr_w.names, cfg.data)
    te = build_windows([te_w], ends(te_w), te_w.names, cfg.data)
    dec = Decoder(cfg, tr.names, tr.classes).fit(tr, None, verbose=False)
    pred = dec.predict(te)
    m = metrics(te.y, pred, 2)
    majority = np.bincount(te.y).max() / len(te.y)
    assert m["balanced_accuracy"] > 0.85 and m["accuracy"] > majority + 0.1
    if dec.is_torch:
        assert dec.history.train_loss[-1] < dec.history.train_loss[0]
        again = Decoder(cfg, tr.names, tr.classes).fit(tr, None, verbose=False)
        assert np.array_equal(again.predict_proba(te), dec.predict_proba(te))


@pytest.mark.parametrize("name", ["gnn_static", "gnn_connectome"])
def test_rollout_with_per_worm_edges_computed_once_is_the_same(name):
    # _rollout computes static/fixed edges once per rollout; stepping with them recomputed at
    # every step must give the same predictions and (up to float order) the same gradients
    from wormlab.behaviour._train import _rollout

    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name, hidden=8), 5, 1, 1, 1, NAMES)
    g = torch.Generator().manual_seed(1)
    seq, ctx = torch.rand(6, 5, 5, 1, generator=g), torch.rand(6, 5, 5, 8, generator=g)
    assert model.static_weights(seq[:, :1], ctx) is not None
    fast = _rollout(model, seq, ctx, 1, 4, 1.0)
    fast.pow(2).mean().backward()
    g_fast = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    x, preds = seq[:, :1], []
    for _ in range(4):  # the plain way: every step recomputes the edges
        preds.append(model.step(x, ctx))
        x = preds[-1][:, None]
    slow = torch.stack(preds, 1)
    slow.pow(2).mean().backward()
    assert torch.equal(fast, slow)
    for k, p in model.named_parameters():
        if k in g_fast:
            assert torch.allclose(g_fast[k], p.grad, rtol=1e-5, atol=1e-7), k
    if name == "gnn_static":
        assert model.edge_enc[0].weight.grad.abs().sum() > 0
    assert build_model(ModelConfig(name="gnn"), 5, 1, 1, 1, NAMES).static_weights(
        seq[:, :1], ctx) is None  # dynamic edges depend on the window: never hoisted
