"""Organs that run in the whole-worm time loop beside the crawl (issue 17 item 10).

:class:`IntestineClock` advances the 20-cell intestinal Ca2+ oscillator
(:mod:`wormlab.circuit` ``intestine_network``, OpenWorm DD009; period ~50 s) one 40 ms frame at
a time inside :func:`wormlab.worm.run_loop`'s frame hook, so circuit, muscles, body and
intestine share one clock. It is *not coupled* to the motor circuit: the defecation motor
program's posterior/anterior body-wall contractions (driven through AVL/DVB) are not modelled,
so the intestine's Ca2+ does not change the crawl.
"""

from __future__ import annotations

import numpy as np
import torch


class IntestineClock:
    """Step the intestine with the loop's frames. ``step(f)`` advances to frame ``f``
    (frames in order from 0); ``ca_uM`` (T, 20) is cytosolic [Ca2+] per cell (uM, columns
    in ``cells`` order, anterior to posterior), NaN for frames not reached."""

    def __init__(self, n_frames: int, frame_dt_s: float = 0.04):
        from wormlab.circuit._intestine import INTESTINE_CELLS, intestine_network

        if n_frames < 1 or not frame_dt_s > 0:
            raise ValueError(f"need n_frames >= 1 and frame_dt_s > 0, got {n_frames}, "
                             f"{frame_dt_s}")
        self.cells = list(INTESTINE_CELLS)
        self.frame_ms = 1000.0 * float(frame_dt_s)
        self.net = intestine_network()
        self.row = self.net.state_index("ca_int")
        self.idx = torch.tensor(self.net.indices(self.cells))
        self.y = self.net.initial_state(1).detach()
        self.ca_uM = np.full((n_frames, len(self.cells)), np.nan)
        self._next = 0
        self._record(0)

    def _record(self, f: int) -> None:
        self.ca_uM[f] = self.y[0, self.row, self.idx].double().numpy() * 1e3  # mM -> uM
        self._next = f + 1

    def step(self, f: int) -> None:
        from wormlab.circuit import CircuitBlowUpError, simulate

        if f == 0:
            return
        if f != self._next:
            raise ValueError(f"intestine stepped to frame {f}, expected {self._next}")
        with torch.no_grad():
            r = simulate(self.net, None, self.frame_ms, self.frame_ms, y0=self.y, record=None)
        if not torch.isfinite(r.y_final).all():
            raise CircuitBlowUpError(f"the intestine diverged at frame {f}")
        self.y = r.y_final
        self._record(f)
