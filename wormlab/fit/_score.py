"""Validation scorecard (issue 16 item 1): the same numbers for any parameter set.

Targets are named as OpenWorm DD017's configuration names them where it has a name
(``tier2_functional_connectivity``, ``tier3_speed``, ``tier3_wavelength``,
``tier3_defecation_period``); ``tier2_correlation_structure`` is wormlab's name (DD017 has none).

* functional connectivity vs the signal-propagation atlas of Randi et al. 2023 (Nature 623:406),
  read from the GPL-3 package ``wormneuroatlas`` (optional extra ``wormlab[atlas]``): Pearson r
  between simulated and measured response amplitudes over held-out pairs with q < 0.05;
* correlation structure vs whole-brain recordings (Kato et al. 2015 Cell 163:656 worm 0; the
  Flavell-lab worms of Dag et al. 2023 Cell 186:2574): MSE between simulated and measured Pearson
  correlation matrices over the identified neurons present in the circuit (off-diagonal entries);
* intestinal (defecation) period vs 50 +- 10 s and the kinematic tier: hooks (callables); absent
  ones are reported as "not available".
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from wormlab.paths import cache_dir
from wormlab.runs import atomic_path

ATLAS_CITATION = ("Randi F, Sharma AK, Dvali S, Leifer AM (2023). Neural signal propagation "
                  "atlas of Caenorhabditis elegans. Nature 623:406-414 (package wormneuroatlas "
                  "0.0.7.3, funatlas.h5, strain 'wt').")
ZHAO2024_CITATION = ("Zhao M et al. (2024). An integrative data-driven model simulating "
                     "C. elegans brain, body and environment interactions (BAAIWorm). Nature "
                     "Computational Science: correlation-matrix MSE 0.076 on 136 neurons.")
ATLAS_MISSING = "not available (pip install wormlab[atlas])"
Q_MAX = 0.05
ATLAS_CACHE = ("fit", "randi2023_atlas_{strain}.csv")
ATLAS_COLUMNS = ("stim", "resp", "dff", "q", "n_trials")

#: DD017 target names plus wormlab's correlation tier, in scorecard order.
TARGETS = ("tier2_functional_connectivity", "tier2_correlation_structure",
           "tier3_defecation_period", "tier3_speed", "tier3_wavelength")


class AtlasUnavailable(ModuleNotFoundError):
    """The atlas package is not installed and no extracted table is cached."""


@dataclass(frozen=True)
class AtlasProtocol:
    """The simulated atlas experiment (one batch member per stimulated neuron).

    The circuit settles ``settle_ms`` from c302's initial state without input; then a square pulse
    of ``pulse_nA`` for ``pulse_ms`` goes into neuron j (20 pA x 2 ms depolarises a C1 neuron by
    tens of mV: measured on the 8-cell test circuit). The response of i is the mean over
    ``window_ms`` after pulse onset of V_i(stimulated) - V_i(control), the control being the same
    circuit from the same state without the pulse (a signed proxy of the mean dF/F the atlas
    reports over its response window)."""

    pulse_nA: float = 0.02
    pulse_ms: float = 2.0
    settle_ms: float = 100.0
    window_ms: float = 100.0
    dt_ms: float = 0.1
    batch_size: int = 16


@dataclass(frozen=True)
class CorrelationProtocol:
    """Spontaneous-activity protocol for the simulated correlation matrix.

    c302's default input (5 pA into PLML/PLMR, 50-950 ms; scaled to the run) plus seeded
    piecewise-constant Gaussian currents (``noise_nA`` std, new value every ``noise_hold_ms``) into
    every sensory neuron of the circuit (cect/Cook 2019 neuron types), ``duration_ms`` long; V is
    sampled every ``sample_ms`` after discarding the first ``discard_ms``."""

    duration_ms: float = 1000.0
    discard_ms: float = 100.0
    noise_nA: float = 0.002
    noise_hold_ms: float = 5.0
    sample_ms: float = 1.0
    dt_ms: float = 0.1
    seed: int = 0


@dataclass(frozen=True)
class CorrelationTarget:
    """Measured Pearson correlation matrix of one recording's identified circuit neurons."""

    recording: str
    neurons: tuple[str, ...]
    corr: np.ndarray  # (n, n)
    citation: str


# ------------------------------------------------------------------------------- atlas data
def _norm_name(name: str) -> str:
    """Atlas / recording names to connectome spelling: zero-padded numbers (VB01 -> VB1)."""
    return re.sub(r"(?<=[A-Z])0+(?=\d)", "", str(name).strip())


def _extract_atlas(strain: str) -> pd.DataFrame:
    try:
        import wormneuroatlas
    except ImportError as e:
        raise AtlasUnavailable(f"signal-propagation atlas {ATLAS_MISSING}") from e
    # offline patch (shared/DATA.md): NeuroAtlas() asks WormBase for its version at start
    wormneuroatlas.WormBase.get_db_version_http = classmethod(lambda cls: "WS287")
    atlas = wormneuroatlas.NeuroAtlas()  # merge_bilateral etc. off: one row per neuron
    ids = [_norm_name(n) for n in atlas.neuron_ids]
    dff = np.asarray(atlas.get_signal_propagation_map(strain=strain), dtype=float)
    q = np.asarray(atlas.get_signal_propagation_q(strain=strain), dtype=float)
    occ = np.asarray(atlas.get_signal_propagation_occurrence_matrix(strain=strain))
    n = len(ids)
    if dff.shape != (n, n) or q.shape != (n, n):
        raise ValueError(f"wormneuroatlas {strain}: dFF {dff.shape} / q {q.shape} are not "
                         f"({n}, {n})")
    # atlas convention (NeuroAtlas.get_kernel): entry [i, j] is the response of i to j
    i, j = np.nonzero(np.isfinite(dff) & np.isfinite(q) & ~np.eye(n, dtype=bool))
    return pd.DataFrame({"stim": [ids[k] for k in j], "resp": [ids[k] for k in i],
                         "dff": dff[i, j], "q": q[i, j], "n_trials": occ[i, j].astype(int)})


def _atlas_table(strain: str = "wt", refresh: bool = False) -> pd.DataFrame:
    """All measured (stim, resp) pairs of the atlas, cached as CSV in data/cache/fit (GPL data:
    never in the repository)."""
    path = cache_dir(ATLAS_CACHE[0]) / ATLAS_CACHE[1].format(strain=strain)
    if path.exists() and not refresh:
        table = pd.read_csv(path)
        missing = [c for c in ATLAS_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"atlas cache {path}: missing columns {missing}; delete it to "
                             "re-extract")
        return table
    table = _extract_atlas(strain)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return table


def atlas_targets(cells: Sequence[str] | None = None, *, q_max: float = Q_MAX,
                  strain: str = "wt", refresh: bool = False) -> pd.DataFrame:
    """Significant pairs of the Randi et al. 2023 signal-propagation atlas.

    Args:
        cells: keep pairs whose stimulated and responding neurons are both in ``cells`` (e.g.
            ``net.names``); None keeps all.
        q_max: keep pairs with q < q_max (default 0.05, the atlas' significance level).
        strain: ``"wt"`` or ``"unc31"``.
        refresh: re-extract from the package instead of reading the cache.

    Returns:
        DataFrame with columns ``stim`` (j, stimulated), ``resp`` (i, responding), ``dff`` (mean
        dF/F response over trials), ``q``, ``n_trials``; sorted by (stim, resp).

    Raises:
        AtlasUnavailable: ``wormneuroatlas`` missing and nothing cached.
    """
    if strain not in ("wt", "unc31"):
        raise ValueError(f"atlas strain must be 'wt' or 'unc31', got {strain!r}")
    if not 0 < q_max <= 1:
        raise ValueError(f"q_max must be in (0, 1], got {q_max}")
    table = _atlas_table(strain, refresh)
    keep = table["q"] < q_max
    if cells is not None:
        cs = set(cells)
        keep &= table["stim"].isin(cs) & table["resp"].isin(cs)
    return table[keep].sort_values(["stim", "resp"]).reset_index(drop=True)


def split_atlas_pairs(seed: int = 0, pairs: pd.DataFrame | None = None, *,
                      heldout_fraction: float = 0.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded split of atlas pairs into (fit, held-out); the scorecard scores held-out pairs.

    ``pairs`` defaults to :func:`atlas_targets` (all significant pairs). The split depends only on
    the seed and the pair names (pairs sorted by (stim, resp) first), so a fit and a scorecard
    built from the same seed never share a pair."""
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
    if pairs is None:
        pairs = atlas_targets()
    pairs = pairs.sort_values(["stim", "resp"]).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    held = np.zeros(len(pairs), dtype=bool)
    held[rng.permutation(len(pairs))[: int(round(heldout_fraction * len(pairs)))]] = True
    return pairs[~held].reset_index(drop=True), pairs[held].reset_index(drop=True)


# ------------------------------------------------------------------------------- metrics
def atlas_r(simulated, measured) -> tuple[float, int]:
    """Pearson r between simulated and measured response amplitudes over the finite pairs.

    Returns ``(r, n_pairs)``; r is NaN with fewer than 3 pairs or a constant vector."""
    s = np.asarray(simulated, dtype=float).ravel()
    m = np.asarray(measured, dtype=float).ravel()
    if s.shape != m.shape:
        raise ValueError(f"simulated {s.shape} and measured {m.shape} amplitudes differ in "
                         "shape")
    ok = np.isfinite(s) & np.isfinite(m)
    n = int(ok.sum())
    if n < 3 or np.std(s[ok]) == 0 or np.std(m[ok]) == 0:
        return math.nan, n
    return float(np.corrcoef(s[ok], m[ok])[0, 1]), n


def pearson_matrix(traces) -> np.ndarray:
    """(T, N) traces -> (N, N) Pearson correlation; a constant trace gives NaN rows."""
    x = np.asarray(traces, dtype=float)
    if x.ndim != 2 or x.shape[0] < 3:
        raise ValueError(f"traces must be (T >= 3, N), got shape {x.shape}")
    x = x - x.mean(0)
    sd = np.sqrt((x**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = x / np.where(sd > 0, sd, np.nan)
    c = z.T @ z
    np.fill_diagonal(c, 1.0)
    return np.clip(c, -1.0, 1.0)


def correlation_mse(simulated, measured) -> tuple[float, int]:
    """MSE over the off-diagonal entries (i < j) of two correlation matrices.

    Measured NaN entries (a constant measured trace) are left out; a simulated NaN (a cell that
    does not move) counts as correlation 0. Returns ``(mse, n_entries)``."""
    s = np.asarray(simulated, dtype=float)
    m = np.asarray(measured, dtype=float)
    if s.shape != m.shape or s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"correlation matrices must be square and equal in shape, got "
                         f"{s.shape} and {m.shape}")
    iu = np.triu_indices(s.shape[0], 1)
    s, m = np.nan_to_num(s[iu], nan=0.0), m[iu]
    ok = np.isfinite(m)
    n = int(ok.sum())
    return (float(np.mean((s[ok] - m[ok]) ** 2)) if n else math.nan), n


# ------------------------------------------------------------------------------- recordings
def _default_recordings() -> list:
    from wormlab import recordings as R

    out = []
    for rid in R.list_shared():
        if rid.startswith(("kato2015/", "flavell2023/")):
            out.append(R.load_shared(rid))
    return out


def correlation_targets(recordings: Sequence | None = None,
                        cells: Sequence[str] | None = None, *,
                        min_neurons: int = 3) -> list[CorrelationTarget]:
    """Measured correlation matrices of the identified neurons present in ``cells``.

    Args:
        recordings: :class:`wormlab.recordings.Recording` objects; default every Kato 2015 and
            Flavell-lab recording in the shared data folder (``R.list_shared()``).
        cells: circuit cell names (``net.names``); None keeps every identified neuron.
        min_neurons: recordings with fewer matched neurons are skipped (the Flavell SWF415 worms
            have no identities).

    Returns:
        One :class:`CorrelationTarget` per usable recording: neurons sorted by name, the Pearson
        matrix of their traces (partial NaN gaps interpolated, ``Recording.fill_nan``).
    """
    if recordings is None:
        recordings = _default_recordings()
    cs = None if cells is None else set(cells)
    out = []
    for rec in recordings:
        rec = rec.fill_nan()
        cols = {}
        for k in rec.identified:
            name = _norm_name(rec.neuron_names[k])
            if cs is None or name in cs:
                cols[name] = k
        if len(cols) < min_neurons:
            continue
        names = tuple(sorted(cols))
        x = np.asarray(rec.traces)[:, [cols[n] for n in names]]
        label = f"{rec.dataset}/{rec.worm_id}" if rec.dataset else rec.worm_id
        out.append(CorrelationTarget(label, names, pearson_matrix(x), rec.citation))
    return out


# ------------------------------------------------------------------------------- simulation
def _settled_state(net, settle_ms: float, dt_ms: float):
    from wormlab import circuit

    if settle_ms <= 0:
        return net.initial_state(1)
    with torch.no_grad():
        res = circuit.simulate(net, None, settle_ms, dt_ms, record=[], dtype=torch.float64)
    return res.y_final


def atlas_responses(net, pairs: pd.DataFrame, protocol: AtlasProtocol = AtlasProtocol(), *,
                    show_progress: bool = False) -> np.ndarray:
    """Simulated atlas experiment: response amplitude (mV) of ``resp`` to a pulse into ``stim``.

    One batch member per stimulated neuron plus one unstimulated control per batch, from the
    same settled state; returns (n_pairs,) mean V_i(stim) - V_i(control) over the window."""
    from wormlab import circuit
    from wormlab.runs import progress

    if len(pairs) == 0:
        return np.zeros(0)
    unknown = sorted(set(pairs["stim"]).union(pairs["resp"]) - set(net.names))
    if unknown:
        raise KeyError(f"atlas pairs name cells not in the network: {unknown[:10]}")
    y0 = _settled_state(net, protocol.settle_ms, protocol.dt_ms)
    stims = sorted(set(pairs["stim"]))
    resps = sorted(set(pairs["resp"]))
    col = {n: k for k, n in enumerate(resps)}
    amp: dict[str, np.ndarray] = {}
    n_win = int(round(protocol.window_ms / protocol.dt_ms))
    chunks = [stims[k:k + protocol.batch_size] for k in range(0, len(stims), protocol.batch_size)]
    for chunk in progress(chunks, desc="atlas", disable=not show_progress):
        B = len(chunk) + 1  # last member: control
        pulses = []
        for b, j in enumerate(chunk):
            a = torch.zeros(B, dtype=torch.float64)
            a[b] = protocol.pulse_nA
            pulses.append(circuit.Pulse(j, 0.0, protocol.pulse_ms, a))
        with torch.no_grad():
            res = circuit.simulate(net.batched(B), circuit.Stimulus(pulses=pulses),
                                   protocol.window_ms, protocol.dt_ms, record=resps,
                                   y0=y0.expand(B, -1, -1).clone(), dtype=torch.float64)
        v = res.v_mV[1:n_win + 1].double()  # (T, B, K) after onset
        dv = (v[:, :-1] - v[:, -1:]).mean(0).numpy()  # (B-1, K)
        for b, j in enumerate(chunk):
            amp[j] = dv[b]
    return np.array([amp[s][col[r]] for s, r in zip(pairs["stim"], pairs["resp"])])


def simulated_correlation(net, neurons: Sequence[str],
                          protocol: CorrelationProtocol = CorrelationProtocol()) -> np.ndarray:
    """(n, n) Pearson matrix of the circuit's V over ``neurons`` under the spontaneous protocol."""
    from wormlab import circuit
    from wormlab.connectome import neuron_type

    if protocol.discard_ms >= protocol.duration_ms:
        raise ValueError(f"discard_ms {protocol.discard_ms} >= duration_ms "
                         f"{protocol.duration_ms}")
    sensory = [n for n, k in zip(net.names, net.kinds)
               if k == "neuron" and neuron_type(n) == "sensory"]
    stim = circuit.Stimulus()
    if "PLML" in net.index or "PLMR" in net.index:
        plm = [n for n in ("PLML", "PLMR") if n in net.index]
        stim = circuit.Stimulus.step(plm, 0.005, start_ms=min(50.0, protocol.duration_ms / 20),
                                     stop_ms=protocol.duration_ms * 0.95)
    if sensory and protocol.noise_nA > 0:
        g = torch.Generator().manual_seed(protocol.seed)
        n_hold = int(math.ceil(protocol.duration_ms / protocol.noise_hold_ms)) + 1
        noise = torch.randn(n_hold, len(sensory), generator=g, dtype=torch.float64)
        stim = stim + circuit.Stimulus.waveform(sensory, noise * protocol.noise_nA,
                                                protocol.noise_hold_ms)
    every = max(1, int(round(protocol.sample_ms / protocol.dt_ms)))
    with torch.no_grad():
        res = circuit.simulate(net, stim, protocol.duration_ms, protocol.dt_ms,
                               record=list(neurons), record_every=every, dtype=torch.float64)
    keep = res.t_ms >= protocol.discard_ms
    return pearson_matrix(res.v_mV[keep, 0].numpy())


# ------------------------------------------------------------------------------- scorecard
def _row(target, metric, value=math.nan, goal="", passed=None, n=0, status="ok", source="",
         wall_s=0.0):
    return {"target": target, "metric": metric, "value": value, "goal": goal, "passed": passed,
            "n": n, "status": status, "source": source, "wall_s": round(wall_s, 2)}


def scorecard(net, *, targets: Sequence[str] = TARGETS,
              heldout_pairs: pd.DataFrame | None = None, smoke: bool = False, seed: int = 0,
              recordings: Sequence | None = None,
              intestine: Callable | None = None, kinematics: Callable | None = None,
              atlas_protocol: AtlasProtocol | None = None,
              correlation_protocol: CorrelationProtocol | None = None) -> pd.DataFrame:
    """Score one parameter set (``net``) against every validation target.

    Args:
        net: a :class:`wormlab.circuit.Network` (batch 1).
        targets: names from :data:`TARGETS`.
        heldout_pairs: atlas pairs to score; default the held-out half of
            ``split_atlas_pairs(seed)`` restricted to the network's cells.
        smoke: small and fast: at most 8 stimulated neurons, 50 ms windows, 200 ms of
            spontaneous activity and the first two usable recordings.
        recordings: for the correlation tier (default: the shared Kato/Flavell recordings).
        intestine: ``f(net) -> period_s`` (the intestinal oscillator); None = not available.
        kinematics: ``f(net) -> {"speed": mm/s, "wavelength": body lengths}`` through the body
            (the crawling issue); None = not available.

    Returns:
        DataFrame, one row per number: ``target, metric, value, goal, passed, n, status,
        source, wall_s``. The correlation tier has one row per recording plus their mean.
    """
    bad = [t for t in targets if t not in TARGETS]
    if bad:
        raise ValueError(f"unknown scorecard targets {bad}; valid: {list(TARGETS)}")
    ap = atlas_protocol or (AtlasProtocol(window_ms=50.0) if smoke else AtlasProtocol())
    cp = correlation_protocol or (CorrelationProtocol(duration_ms=200.0, discard_ms=50.0,
                                                      seed=seed) if smoke
                                  else CorrelationProtocol(seed=seed))
    rows = []
    if "tier2_functional_connectivity" in targets:
        t0 = time.perf_counter()
        name, metric = "tier2_functional_connectivity", "pearson_r_heldout"
        try:
            if heldout_pairs is None:
                _, heldout_pairs = split_atlas_pairs(seed, atlas_targets(net.names))
            pairs = heldout_pairs[heldout_pairs["stim"].isin(net.names)
                                  & heldout_pairs["resp"].isin(net.names)]
            if smoke:
                stims = sorted(set(pairs["stim"]))[:8]
                pairs = pairs[pairs["stim"].isin(stims)]
            sim = atlas_responses(net, pairs, ap)
            r, n = atlas_r(sim, pairs["dff"].to_numpy())
            status = "ok" if math.isfinite(r) else f"too few pairs ({n})"
            rows.append(_row(name, metric, r, "r > 0.5", bool(r > 0.5) if n >= 3 else None,
                             n, status, ATLAS_CITATION, time.perf_counter() - t0))
        except AtlasUnavailable:
            rows.append(_row(name, metric, status=ATLAS_MISSING, source=ATLAS_CITATION))
    if "tier2_correlation_structure" in targets:
        t0 = time.perf_counter()
        name, metric = "tier2_correlation_structure", "corr_mse_offdiag"
        tg = correlation_targets(recordings, net.names)
        if smoke:
            tg = tg[:2]
        if not tg:
            rows.append(_row(name, metric, status="not available (no recording with >= 3 "
                             "identified circuit neurons)", source=ZHAO2024_CITATION))
        else:
            union = sorted({n for t in tg for n in t.neurons})
            sim = simulated_correlation(net, union, cp)
            pos = {n: k for k, n in enumerate(union)}
            mses = []
            for t in tg:
                idx = [pos[n] for n in t.neurons]
                mse, n = correlation_mse(sim[np.ix_(idx, idx)], t.corr)
                mses.append(mse)
                rows.append(_row(f"{name}[{t.recording}]", metric, mse,
                                 "BAAIWorm: 0.076 (136 neurons)", None, len(t.neurons), "ok",
                                 t.citation.split(".")[0]))
            rows.append(_row(name, metric + "_mean", float(np.mean(mses)),
                             "BAAIWorm: 0.076 (136 neurons)", None, len(union), "ok",
                             ZHAO2024_CITATION, time.perf_counter() - t0))
    if "tier3_defecation_period" in targets:
        name = "tier3_defecation_period"
        if intestine is None:
            rows.append(_row(name, "period_s", status="not available (no intestinal "
                             "oscillator given)", goal="50 +- 10 s"))
        else:
            t0 = time.perf_counter()
            p = float(intestine(net))
            rows.append(_row(name, "period_s", p, "50 +- 10 s", abs(p - 50.0) <= 10.0, 1,
                             "ok", "DD017 tier 3 (defecation motor program ~50 s)",
                             time.perf_counter() - t0))
    kin = [t for t in ("tier3_speed", "tier3_wavelength") if t in targets]
    if kin:
        got = None if kinematics is None else kinematics(net)
        for name in kin:
            key = name.removeprefix("tier3_")
            if got is None or key not in got:
                rows.append(_row(name, key, status="not available (kinematic tier waits for the "
                                 "crawling issue)"))
            else:
                rows.append(_row(name, key, float(got[key]), status="ok", n=1))
    return pd.DataFrame(rows, columns=list(_row("", "").keys()))
