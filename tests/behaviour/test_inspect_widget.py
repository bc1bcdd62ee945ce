import numpy as np

from wormlab.behaviour import BehaviourConfig, edges_at, leave_one_out_decoder, timeline


def test_timeline_and_graph_at_a_moment(worms):
    cfg = BehaviourConfig().replace(data={"window": 4}, model={"name": "gnn", "hidden": 4},
                                    train={"epochs": 1})
    dec, te = leave_one_out_decoder(worms, worms[1].worm_id, cfg)
    tl = timeline(dec, te, 0)
    assert len(tl["ends"]) == len(tl["true"]) == len(tl["pred"]) == len(te)
    assert np.allclose(tl["proba"].sum(1), 1, atol=1e-5)
    g = edges_at(dec, te, 5)
    assert g.shape == (5, 5) and np.allclose(g.sum(1), 1, atol=1e-5)
    mlp, te2 = leave_one_out_decoder(worms, worms[1].worm_id, cfg.replace(model={"name": "mlp"}))
    assert edges_at(mlp, te2, 0) is None


def test_widget_panel_headless(worms):
    from widgets.behaviour import behaviour_panel

    panel = behaviour_panel(worms, models=("gnn_static", "mlp"), epochs=1, window=4)
    controls, time_sl, status, _ = panel.children
    assert "accuracy" in status.value and "gnn_static" in status.value
    assert 100 < time_sl.max < len(worms[-1].traces)  # one position per labelled window
    time_sl.value = 10
    controls.children[1].value = "mlp"  # retrains (leave-that-worm-out) and redraws
    assert "mlp" in status.value
