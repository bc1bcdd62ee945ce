"""The closed-loop panel runs headless: the arena's own field (here the salt spot, which a
linear ramp around its centre value would drive below zero) with the tuned pathway."""

import matplotlib

matplotlib.use("Agg")

from wormlab import loop  # noqa: E402
from wormlab.paths import package_data  # noqa: E402


def test_loop_panel_runs_the_arenas_own_field_with_a_pathway(capsys):
    """(Outside a kernel the panel's Output does not capture: its prints reach stdout.)"""
    from widgets.loop import loop_panel

    arena = loop.load_arena(package_data("loop", "arenas", "nacl_spot.yml"))
    crawl, pathway = loop.pathway_and_params(str(package_data("loop", "data",
                                                              "pathway_nacl.json")))
    panel = loop_panel(arena, params=crawl, duration_s=1.0, run_now=True, pathway=pathway)
    text = capsys.readouterr().out
    assert "net displacement" in text and "run failed" not in text
    own = panel.children[1].children[0]
    own.value = False               # the linear field: 20.6 mM - 5 mM/mm at the rim < 0
    run = panel.children[2].children[1].children[1]
    run.click()
    text = capsys.readouterr().out
    assert "run failed" in text and "negative" in text
