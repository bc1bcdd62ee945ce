"""The :class:`Connectome` value and :func:`load`."""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import io
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from wormlab.connectome._cells import MUSCLES, NEURONS, muscle_info, neuron_class, neuron_type
from wormlab.connectome._datasets import ALIASES, DATASETS, DEFAULT_DATASET

# Fast transmitters from Wang et al. 2024 and the sign c302 gives their synapses: GABA is
# inhibitory, acetylcholine and glutamate excitatory. (Glutamate also acts through inhibitory
# GluCl receptors, e.g. AVR-14/GLC-3 - the sign is a per-presynaptic-neuron simplification.)
FAST_TRANSMITTERS = ("Acetylcholine", "Glutamate", "GABA")
_SIGN = {"Acetylcholine": 1, "Glutamate": 1, "GABA": -1}


_PADDED = re.compile(r"^(AS|DA|DB|DD|VA|VB|VC|VD)0(\d)$")


class UnknownNameError(KeyError):
    """An unknown neuron, muscle or dataset name (the message suggests close matches)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def _suggest(name: str, valid, what: str) -> UnknownNameError:
    close = difflib.get_close_matches(str(name).upper(), [v.upper() for v in valid], n=3,
                                      cutoff=0.6)
    lookup = {v.upper(): v for v in valid}
    hint = f"; did you mean {', '.join(lookup[c] for c in close)}?" if close else ""
    return UnknownNameError(f"unknown {what} {name!r}{hint}")


def resolve_dataset(name: str) -> str:
    """Canonical dataset name; unknown names raise with the valid choices listed."""
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in DATASETS:
        raise UnknownNameError(
            f"unknown connectome dataset {name!r}; choose one of: {', '.join(DATASETS)}"
        )
    return key


@functools.cache
def _cect_dataset(reader: str):
    module = importlib.import_module(f"cect.readers.{reader}")
    with contextlib.redirect_stdout(io.StringIO()):  # cect prints progress chatter
        return module.get_instance(from_cache=True)


def _matrix(ds, key: str, rows, cols) -> np.ndarray:
    """Sub-matrix of a cect connection matrix by names; absent cells give zero rows/cols."""
    mat = ds.connections.get(key)
    out = np.zeros((len(rows), len(cols)), dtype=np.float64)
    if mat is None:
        return out
    pos = {n: i for i, n in enumerate(ds.nodes)}
    r_src = [pos.get(n, -1) for n in rows]
    c_src = [pos.get(n, -1) for n in cols]
    r_ok = np.array([i for i, j in enumerate(r_src) if j >= 0], dtype=int)
    c_ok = np.array([i for i, j in enumerate(c_src) if j >= 0], dtype=int)
    if len(r_ok) and len(c_ok):
        src = np.asarray(mat, dtype=np.float64)
        out[np.ix_(r_ok, c_ok)] = src[np.ix_([r_src[i] for i in r_ok], [c_src[j] for j in c_ok])]
    return out


@functools.lru_cache(maxsize=1)
def transmitter_table() -> pd.DataFrame:
    """Transmitter identity per neuron (Wang et al. 2024 via cect), 302 rows.

    Columns: one bool per transmitter Wang 2024 lists (fast ones first), ``transmitter`` (the
    main fast transmitter, else a neuromodulator, else ``None``) and ``sign`` (+1 excitatory,
    -1 inhibitory, 0 unknown/modulatory).
    A neuron counts as using a transmitter if Wang 2024 lists any outgoing synapse with it.
    """
    ds = _cect_dataset(DATASETS["wang2024"].reader)
    others = [k for k in ds.connections if k not in FAST_TRANSMITTERS]
    rows = {}
    for nt in (*FAST_TRANSMITTERS, *others):
        rows[nt] = _matrix(ds, nt, NEURONS, list(ds.nodes)).sum(axis=1) > 0
    df = pd.DataFrame(rows, index=list(NEURONS))
    main = []
    for n in NEURONS:
        # GABA wins (GABAergic neurons may co-release ACh in the atlas), then ACh, then Glu,
        # then a neuromodulator (sign 0)
        used = [nt for nt in ("GABA", "Acetylcholine", "Glutamate", *others) if df.at[n, nt]]
        main.append(used[0] if used else None)
    df["transmitter"] = main
    df["sign"] = [_SIGN.get(m, 0) if m else 0 for m in main]
    return df


@dataclass(frozen=True, eq=False)
class Connectome:
    """A wiring diagram over the 302 hermaphrodite neurons and 95 body-wall muscles.

    Matrices are counts of synaptic contacts (as in the source), indexed ``[pre, post]``.
    Neurons the dataset did not reconstruct keep zero rows/columns and ``present=False``.

    Attributes:
        dataset: canonical dataset name (see :data:`DATASETS`).
        citation: source paper.
        neurons: 302 names in a stable (alphabetical, cect) order.
        muscles: 95 body-wall muscle names.
        chem: (302, 302) directed chemical synapse counts, pre -> post.
        gap: (302, 302) symmetric gap-junction counts.
        neuron_muscle: (302, 95) chemical synapse counts, neuron -> muscle.
        present: (302,) bool, neuron appears in the dataset.
    """

    dataset: str
    citation: str
    neurons: tuple[str, ...]
    muscles: tuple[str, ...]
    chem: np.ndarray
    gap: np.ndarray
    neuron_muscle: np.ndarray
    present: np.ndarray
    _index: dict = field(repr=False, default_factory=dict)

    def __repr__(self) -> str:
        s = self.summary()
        return (f"Connectome({self.dataset!r}: {s['neurons_present']}/{s['neurons']} neurons, "
                f"{s['muscles']} muscles, {s['chem_edges']} chemical edges, "
                f"{s['gap_pairs']} gap-junction pairs)")

    def __post_init__(self):
        self._index.update({n: i for i, n in enumerate(self.neurons)})
        for arr in (self.chem, self.gap, self.neuron_muscle, self.present):
            arr.setflags(write=False)

    # -- names ------------------------------------------------------------------------
    @property
    def n_neurons(self) -> int:
        return len(self.neurons)

    def index(self, name: str) -> int:
        """Row of a neuron; unknown names raise :class:`UnknownNameError` with suggestions.

        Zero-padded motor-neuron names used by some labs (``VB02``, ``DB01``) are accepted.
        """
        try:
            return self._index[name]
        except KeyError:
            m = _PADDED.match(str(name))
            if m and (m.group(1) + m.group(2)) in self._index:
                return self._index[m.group(1) + m.group(2)]
            raise _suggest(name, self.neurons, "neuron") from None

    def indices(self, names) -> list[int]:
        return [self.index(n) for n in names]

    def muscle_index(self, name: str) -> int:
        try:
            return self.muscles.index(name)
        except ValueError:
            raise _suggest(name, self.muscles, "body-wall muscle") from None

    @property
    def classes(self) -> tuple[str, ...]:
        """Class of each neuron (AVAL -> AVA), aligned with :attr:`neurons`."""
        return tuple(neuron_class(n) for n in self.neurons)

    @property
    def types(self) -> tuple[str, ...]:
        """'sensory' | 'inter' | 'motor' | 'other' per neuron."""
        return tuple(neuron_type(n) for n in self.neurons)

    def neurons_of_class(self, cls: str) -> list[str]:
        members = [n for n, c in zip(self.neurons, self.classes) if c == cls]
        if not members:
            raise _suggest(cls, sorted(set(self.classes)), "neuron class")
        return members

    @property
    def transmitters(self) -> tuple[str | None, ...]:
        """Main transmitter per neuron (Wang et al. 2024) or None."""
        return tuple(transmitter_table()["transmitter"])

    @property
    def sign(self) -> np.ndarray:
        """(302,) +1 excitatory / -1 inhibitory / 0 unknown, per presynaptic neuron."""
        return transmitter_table()["sign"].to_numpy(dtype=np.int8)

    def neuron_table(self) -> pd.DataFrame:
        """One row per neuron: class, type, transmitter, sign, degrees, present."""
        return pd.DataFrame(
            {
                "class": self.classes,
                "type": self.types,
                "transmitter": self.transmitters,
                "sign": self.sign,
                "chem_out": (self.chem > 0).sum(1),
                "chem_in": (self.chem > 0).sum(0),
                "gap_degree": (self.gap > 0).sum(1),
                "muscle_out": (self.neuron_muscle > 0).sum(1),
                "present": self.present,
            },
            index=pd.Index(self.neurons, name="neuron"),
        )

    def muscle_table(self) -> pd.DataFrame:
        info = [muscle_info(m) for m in self.muscles]
        return pd.DataFrame(info, columns=["side", "lr", "row"],
                            index=pd.Index(self.muscles, name="muscle"))

    # -- views ------------------------------------------------------------------------
    def adjacency(self, kind: str = "chem", *, dtype=None, sparse: bool = False, names=None):
        """Adjacency as a torch tensor, indexed [pre, post].

        Args:
            kind: 'chem' (302x302), 'gap' (302x302, symmetric), 'neuron_muscle' (302x95), or
                'signed' (chem counts times the presynaptic sign).
            dtype: torch dtype (default float32).
            sparse: return a sparse COO tensor.
            names: restrict rows/columns to these neurons, in this order (not for muscles).
        """
        import torch

        mats = {"chem": self.chem, "gap": self.gap, "neuron_muscle": self.neuron_muscle,
                "signed": self.chem * self.sign[:, None]}
        if kind not in mats:
            raise ValueError(f"unknown adjacency kind {kind!r}; choose one of: {', '.join(mats)}")
        mat = mats[kind]
        if names is not None:
            idx = self.indices(names)
            mat = mat[np.ix_(idx, idx)] if kind != "neuron_muscle" else mat[idx]
        t = torch.as_tensor(np.array(mat), dtype=dtype or torch.float32)
        return t.to_sparse() if sparse else t

    def edges(self) -> pd.DataFrame:
        """Long table of connections: pre, post, kind ('chem'|'gap'|'neuron_muscle'), count.

        Gap junctions are listed once per unordered pair (pre < post in neuron order).
        """
        parts = []
        for kind, mat, cols in (("chem", self.chem, self.neurons),
                                ("gap", np.triu(self.gap), self.neurons),
                                ("neuron_muscle", self.neuron_muscle, self.muscles)):
            r, c = np.nonzero(mat)
            parts.append(pd.DataFrame({"pre": np.array(self.neurons)[r],
                                       "post": np.array(cols)[c], "kind": kind,
                                       "count": mat[r, c]}))
        return pd.concat(parts, ignore_index=True)

    def partners(self, name: str) -> pd.DataFrame:
        """Every partner of one neuron: direction, kind and synapse count, strongest first."""
        i = self.index(name)
        rows = []
        for j, n in enumerate(self.neurons):
            if self.chem[i, j]:
                rows.append((n, "out", "chem", self.chem[i, j]))
            if self.chem[j, i]:
                rows.append((n, "in", "chem", self.chem[j, i]))
            if self.gap[i, j]:
                rows.append((n, "both", "gap", self.gap[i, j]))
        for k, m in enumerate(self.muscles):
            if self.neuron_muscle[i, k]:
                rows.append((m, "out", "neuron_muscle", self.neuron_muscle[i, k]))
        df = pd.DataFrame(rows, columns=["partner", "direction", "kind", "count"])
        return df.sort_values(["count", "partner"], ascending=[False, True], ignore_index=True)

    def class_adjacency(self, kind: str = "chem") -> pd.DataFrame:
        """Synapse counts summed over neuron classes (rows pre-class, columns post-class)."""
        mat = {"chem": self.chem, "gap": self.gap}[kind]
        df = pd.DataFrame(mat, index=self.classes, columns=self.classes)
        return df.T.groupby(level=0).sum().T.groupby(level=0).sum()

    def to_networkx(self, include_muscles: bool = True):
        """A ``networkx.MultiDiGraph``: edge attribute ``kind`` and ``weight`` (count).

        Gap junctions appear as two directed edges (both directions).
        """
        import networkx as nx

        g = nx.MultiDiGraph(dataset=self.dataset)
        table = self.neuron_table()
        for n in self.neurons:
            g.add_node(n, cell="neuron", **{k: table.at[n, k] for k in ("class", "type")})
        if include_muscles:
            for m, (side, lr, row) in zip(self.muscles, map(muscle_info, self.muscles)):
                g.add_node(m, cell="muscle", side=side, lr=lr, row=row)
        for pre, post, kind, count in self.edges().itertuples(index=False):
            if kind == "neuron_muscle" and not include_muscles:
                continue
            g.add_edge(pre, post, kind=kind, weight=float(count))
            if kind == "gap":
                g.add_edge(post, pre, kind=kind, weight=float(count))
        return g

    def summary(self) -> dict:
        return {
            "dataset": self.dataset,
            "neurons": self.n_neurons,
            "neurons_present": int(self.present.sum()),
            "muscles": len(self.muscles),
            "chem_edges": int((self.chem > 0).sum()),
            "chem_synapses": float(self.chem.sum()),
            "gap_pairs": int((np.triu(self.gap) > 0).sum()),
            "neuron_muscle_edges": int((self.neuron_muscle > 0).sum()),
        }


def load(dataset: str = DEFAULT_DATASET) -> Connectome:
    """Load a connectome by name (offline, from cect's cache).

    Args:
        dataset: one of :data:`DATASETS` (``cook2019`` default) or an alias such as
            ``witvliet_8``. Unknown names raise :class:`UnknownNameError` listing the choices.
    """
    return _load(resolve_dataset(dataset))


@functools.cache
def _load(key: str) -> Connectome:
    info = DATASETS[key]
    ds = _cect_dataset(info.reader)
    # Wang 2024 labels Cook 2019 anatomy with transmitters: its wiring IS Cook 2019's.
    wiring = _cect_dataset(DATASETS["cook2019"].reader) if info.has_transmitters else ds
    chem = _matrix(wiring, "Generic_CS", NEURONS, NEURONS)
    gap = _matrix(wiring, "Generic_GJ", NEURONS, NEURONS)
    nm = _matrix(wiring, "Generic_CS", NEURONS, MUSCLES)
    gap = np.maximum(gap, gap.T)  # some sources list each gap junction in one direction only
    nodes = set(ds.nodes)
    present = np.array([n in nodes for n in NEURONS])
    return Connectome(key, info.citation, NEURONS, MUSCLES, chem, gap, nm, present)
