"""Posture panels: a real-or-generated quiz and a scrubber of worm shape vs LSTM cells.

Callbacks call tested library functions (:class:`wormlab.posture.Quiz`,
:func:`wormlab.posture.clip_animation_html`, :func:`wormlab.posture.plot_scrub`); nothing in
``wormlab`` imports this module.
"""

from __future__ import annotations

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import HTML, display

from wormlab.posture import Quiz, clip_animation_html, plot_scrub


def _pct(acc: float | None) -> str:
    return "-" if acc is None else f"{100 * acc:.0f}%"


def _score_html(quiz: Quiz) -> str:
    rows = "".join(
        f"<tr><td>{r['clips']}</td><td>{r['n']}</td><td>{r['correct']}</td>"
        f"<td>{_pct(r['accuracy'])}</td></tr>"
        for r in quiz.score_table()
    )
    return (
        "<table><tr><th>true source</th><th>clips</th><th>correct</th><th>accuracy</th>"
        f"</tr>{rows}</table>"
    )


def _show_clip(out: w.Output, angles: np.ndarray, fps: float, title: str) -> None:
    # an Output widget (not w.HTML) so the animation's JavaScript runs in the notebook
    out.clear_output(wait=True)
    with out:
        display(HTML(clip_animation_html(angles, fps, title=title)))


def quiz_clips_headless(quiz: Quiz, fps: float) -> w.Widget:
    """Headless rendering: one real and one generated clip side by side, labelled."""
    boxes = []
    for src in ("real", "generated"):
        c = quiz.next_clip(src)
        out = w.Output()
        _show_clip(out, c["angles"], fps, title=src)
        boxes.append(w.VBox([w.HTML(f"<b>{src}</b> (worm {c['worm']}, frame {c['start']})"), out]))
    quiz.current = None
    return w.HBox(boxes)


def posture_quiz_panel(quiz: Quiz, fps: float) -> w.Widget:
    """Plays a random clip; the user guesses real or generated; answer and score table shown."""
    clip = w.Output()
    verdict = w.HTML("<i>Real worm or LSTM? Guess, then press 'next clip'.</i>")
    score = w.HTML(_score_html(quiz))
    b_real = w.Button(description="real", button_style="info")
    b_gen = w.Button(description="generated", button_style="warning")
    b_next = w.Button(description="next clip")

    def new_clip(*_):
        c = quiz.next_clip()
        _show_clip(clip, c["angles"], fps, title="which one?")
        verdict.value = "<i>your guess?</i>"
        b_real.disabled = b_gen.disabled = False

    def guess(label):
        def _cb(*_):
            if quiz.current is None:
                return
            r = quiz.answer(label)
            verdict.value = (
                f"<b>{'correct' if r['correct'] else 'wrong'}</b>: this clip was "
                f"<b>{r['truth']}</b> (worm {r['worm']}, frame {r['start']})"
            )
            b_real.disabled = b_gen.disabled = True
            score.value = _score_html(quiz)

        return _cb

    b_real.on_click(guess("real"))
    b_gen.on_click(guess("generated"))
    b_next.on_click(new_clip)
    new_clip()
    return w.VBox([clip, w.HBox([b_real, b_gen, b_next]), verdict, score])


def posture_scrub_panel(
    sequences: dict[str, tuple[np.ndarray, np.ndarray]],
    names: list[str],
    fps: float,
    cells: list[str] | None = None,
) -> w.Widget:
    """Scrub a sequence: worm shape at a frame next to chosen LSTM cells' activity.

    Args:
        sequences: label -> (angles (T, n), activity (T, N)) e.g. {"real": ..., "generated": ...}.
        names: the N cell names (columns of activity).
        cells: cells shown at start (default the first three).
    """
    if not sequences:
        raise ValueError("no sequences to scrub")
    seq = w.Dropdown(options=list(sequences), description="sequence")
    pick = w.SelectMultiple(
        options=names, value=tuple(cells or names[:3]), rows=6, description="cells"
    )
    first = next(iter(sequences.values()))[0]
    frame = w.IntSlider(0, 0, len(first) - 1, description="frame", continuous_update=False)
    play = w.Play(value=0, min=0, max=len(first) - 1, interval=300)
    w.jslink((play, "value"), (frame, "value"))
    out = w.Output()

    def refresh(*_):
        angles, act = sequences[seq.value]
        frame.max = play.max = len(angles) - 1
        idx = [names.index(n) for n in pick.value]
        out.clear_output(wait=True)
        with out:
            fig = plot_scrub(
                angles,
                act[:, idx],
                list(pick.value),
                min(frame.value, len(angles) - 1),
                fps,
                label=seq.value,
            )
            display(fig)
            plt.close(fig)

    for c in (seq, pick, frame):
        c.observe(refresh, names="value")
    refresh()
    return w.VBox([w.HBox([seq, play, frame]), pick, out])
