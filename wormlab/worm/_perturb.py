"""Perturbations the crawl was not fitted on, beside the published phenotypes (issue 17
item 7): cell ablations, gap junctions removed, proprioception removed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wormlab.worm._loop import LoopConfig, run_loop
from wormlab.worm._motor import motor_cells, motor_class


@dataclass(frozen=True)
class Perturbation:
    name: str
    direction: str
    ablate_classes: tuple[str, ...] = ()
    ablate_cells: tuple[str, ...] = ()
    params: tuple[tuple[str, float], ...] = ()
    published: str = ""
    source: str = ""


PERTURBATIONS = (
    Perturbation("AVB ablated", "forward", ablate_cells=("AVBL", "AVBR"),
                 published="forward locomotion lost or strongly reduced",
                 source="Chalfie et al. 1985 J Neurosci; Zheng et al. 1999 Neuron"),
    Perturbation("B-type motor neurons ablated", "forward", ablate_classes=("DB", "VB"),
                 published="no forward locomotion (backward intact)",
                 source="Chalfie et al. 1985 J Neurosci"),
    Perturbation("AVA ablated", "backward", ablate_cells=("AVAL", "AVAR"),
                 published="backward locomotion lost or strongly reduced",
                 source="Chalfie et al. 1985 J Neurosci"),
    Perturbation("A-type motor neurons ablated", "backward", ablate_classes=("DA", "VA"),
                 published="no backward locomotion (forward intact)",
                 source="Chalfie et al. 1985 J Neurosci"),
    Perturbation("gap junctions removed (command-MN, MN-MN)", "forward",
                 params=(("gap_cmd_mn", 0.0), ("gap_mn_mn", 0.0)),
                 published="unc-7/unc-9: forward locomotion impaired, uncoordinated",
                 source="Kawano et al. 2011 Neuron"),
    Perturbation("proprioception removed", "forward",
                 params=(("prop_gain_nS_rad", 0.0), ("self_gain_nS_rad", 0.0)),
                 published="bending wave does not propagate past an immobilised region "
                           "(B-type proprioceptive coupling)",
                 source="Wen et al. 2012 Neuron"),
    Perturbation("D-type (GABA) motor neurons ablated", "forward", ablate_classes=("DD", "VD"),
                 published="unc-25 / D-type ablation: forward crawling persists with reduced "
                           "amplitude; shrinking on backing",
                 source="McIntire et al. 1993 Nature; Donnelly et al. 2013 PLoS Biol"),
)


def perturbation_table(params: dict, duration_s: float = 4.0, seed: int = 0,
                       perturbations=PERTURBATIONS, lost_fraction: float = 0.2,
                       progress: bool = False) -> list[dict]:
    """Run the intact worm in each direction and every perturbation; a row per
    perturbation: speed in its direction (um/s, + = the driven direction) intact and
    perturbed, their ratio, the model's outcome ("lost" when |ratio| < ``lost_fraction``,
    "reduced" below 0.6, "kept" otherwise; a perturbed circuit that diverges is held at rest
    and reported as such) and the published outcome with its source."""
    from wormlab.worm._fit import crawl_metrics

    cells = motor_cells()
    intact = {}
    rows = []
    for pert in perturbations:
        if pert.direction not in intact:
            res = run_loop(params, LoopConfig(duration_s=duration_s, direction=pert.direction,
                                              seed=seed), progress=progress)
            m = crawl_metrics(res)
            s = 1.0 if pert.direction == "forward" else -1.0
            intact[pert.direction] = (s * float(m["speed_um_s"][0]),
                                      float(m["oscillation_rad"][0]))
        ablate = tuple(pert.ablate_cells) + tuple(
            c for c in cells if motor_class(c) in pert.ablate_classes)
        p = {**params, **dict(pert.params)}
        res = run_loop(p, LoopConfig(duration_s=duration_s, direction=pert.direction,
                                     seed=seed, ablate=ablate, on_diverge="mark"),
                       progress=progress)
        m = crawl_metrics(res)
        diverged = bool(res.diverged[0])
        s = 1.0 if pert.direction == "forward" else -1.0
        v0, osc0 = intact[pert.direction]
        v = s * float(m["speed_um_s"][0])
        ratio = v / v0 if abs(v0) > 1e-9 else float("nan")
        outcome = ("circuit diverged (exp2 at 1 ms; no outcome)" if diverged
                   else "undefined (intact worm does not move)"
                   if not np.isfinite(ratio) or v0 <= 0
                   else "lost" if abs(ratio) < lost_fraction
                   else "reduced" if ratio < 0.6 else "kept")
        rows.append({"perturbation": pert.name, "direction": pert.direction,
                     "speed_intact_um_s": v0, "speed_perturbed_um_s": v, "ratio": ratio,
                     "oscillation_intact_rad": osc0,
                     "oscillation_perturbed_rad": float(m["oscillation_rad"][0]),
                     "model_outcome": outcome, "published": pert.published,
                     "source": pert.source})
    return rows
