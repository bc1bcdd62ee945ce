"""Real-or-generated quiz (the paper's volunteer test, made a tool): state and scoring only.

The widget (``widgets/posture.py``) draws clips through :meth:`Quiz.next_clip`, records the
user's answer with :meth:`Quiz.answer` and shows :meth:`Quiz.score_table`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SOURCES = ("real", "generated")


@dataclass
class Quiz:
    """Draws random ``clip_frames``-long clips of tangent angles from real or generated worms."""

    real: list[np.ndarray]
    generated: list[np.ndarray]
    clip_frames: int = 30
    seed: int = 0
    history: list[dict] = field(default_factory=list)
    current: dict | None = None

    def __post_init__(self):
        for name in SOURCES:
            seqs = getattr(self, name)
            if not seqs:
                raise ValueError(f"the quiz needs at least one {name} sequence")
            if not any(len(s) >= self.clip_frames for s in seqs):
                raise ValueError(f"no {name} sequence is {self.clip_frames} frames long")
        self._rng = np.random.default_rng(self.seed)

    def next_clip(self, source: str | None = None) -> dict:
        """A new clip: dict(source, worm, start, angles (clip_frames, n)). Source hidden to users."""
        if source is None:
            source = SOURCES[int(self._rng.integers(2))]
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        seqs = getattr(self, source)
        ok = [i for i, s in enumerate(seqs) if len(s) >= self.clip_frames]
        worm = int(self._rng.choice(ok))
        start = int(self._rng.integers(0, len(seqs[worm]) - self.clip_frames + 1))
        self.current = {
            "source": source,
            "worm": worm,
            "start": start,
            "angles": seqs[worm][start : start + self.clip_frames],
        }
        return self.current

    def answer(self, guess: str) -> dict:
        """Record a guess for the current clip; returns dict(guess, truth, correct)."""
        if self.current is None:
            raise RuntimeError("no clip drawn yet: call next_clip() first")
        if guess not in SOURCES:
            raise ValueError(f"guess must be one of {SOURCES}, got {guess!r}")
        rec = {
            "guess": guess,
            "truth": self.current["source"],
            "correct": guess == self.current["source"],
            "worm": self.current["worm"],
            "start": self.current["start"],
        }
        self.history.append(rec)
        self.current = None
        return rec

    def score_table(self) -> list[dict]:
        """Rows per true source and overall: n, correct, accuracy (None when n = 0)."""
        rows = []
        for name in (*SOURCES, "overall"):
            h = [r for r in self.history if name == "overall" or r["truth"] == name]
            n = len(h)
            c = sum(r["correct"] for r in h)
            rows.append({"clips": name, "n": n, "correct": c, "accuracy": c / n if n else None})
        return rows
