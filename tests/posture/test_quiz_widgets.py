import numpy as np
import pytest

from wormlab import posture as P


def _quiz(seed=0):
    real = [P.synthetic_recording(100, 20, 10.0, seed=1).angles]
    gen = [P.synthetic_recording(80, 20, 10.0, seed=2).angles]
    return P.Quiz(real, gen, clip_frames=20, seed=seed)


def test_quiz_draws_from_both_sources_and_scores():
    q = _quiz()
    seen = set()
    for _ in range(20):
        c = q.next_clip()
        seen.add(c["source"])
        assert c["angles"].shape == (20, 20)
        r = q.answer("real")
        assert r["correct"] == (r["truth"] == "real")
    assert seen == {"real", "generated"}
    table = {row["clips"]: row for row in q.score_table()}
    assert table["overall"]["n"] == 20
    assert table["real"]["accuracy"] == 1.0 and table["generated"]["accuracy"] == 0.0
    with pytest.raises(RuntimeError):
        q.answer("real")  # no clip pending
    q.next_clip()
    with pytest.raises(ValueError):
        q.answer("maybe")
    with pytest.raises(ValueError):
        P.Quiz([], [np.zeros((30, 5))])


def test_widgets_build_headless():
    pytest.importorskip("ipywidgets")
    from widgets.posture import posture_quiz_panel, posture_scrub_panel, quiz_clips_headless

    q = _quiz()
    clips = quiz_clips_headless(q, 10.0)
    assert [c.children[0].value.split("<b>")[1][:4] for c in clips.children] == ["real", "gene"]
    panel = posture_quiz_panel(q, 10.0)
    buttons = panel.children[1].children
    buttons[0].click()  # guess "real"
    assert q.history and "clips" in panel.children[3].value
    ang = q.real[0]
    act = np.random.default_rng(0).standard_normal((len(ang), 4))
    scrub = posture_scrub_panel({"real": (ang, act)}, ["c0.0", "c0.1", "c0.2", "c0.3"], 10.0)
    scrub.children[0].children[2].value = 50  # move the frame slider; callback redraws
    with pytest.raises(ValueError):
        P.plot_scrub(ang, act[:10], ["a"], 0, 10.0)
