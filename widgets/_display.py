"""Display helpers shared by the panels."""

from __future__ import annotations

import io

from IPython.display import Image


def as_png(fig, dpi: int = 100) -> Image:
    """A matplotlib figure as a PNG display object.

    Widgets show figures this way rather than ``display(fig)``: a kernel whose matplotlib
    backend is not the inline one (e.g. ``MPLBACKEND=Agg``) would print ``<Figure ...>`` instead.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return Image(data=buf.getvalue(), format="png")
