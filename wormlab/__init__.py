"""wormlab: a notebook-first research workbench for machine learning on *C. elegans*.

Components live in one subpackage each (``connectome``, ``circuit``, ``body``, ``sae``,
``recordings``, ``behaviour``, ``rom``, ``posture``); their ``__init__`` is their public API.
Shared helpers: :mod:`wormlab.paths` (where data, caches and reports live) and
:mod:`wormlab.runs` (seeding, threads, progress bars, atomic writes).
"""

__version__ = "0.1.0"
