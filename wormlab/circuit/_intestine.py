"""The intestinal Ca2+ oscillator (OpenWorm DD009) as a circuit mechanism.

C. elegans has 20 intestinal cells in nine rings (int1: four cells, int2-int9: two each; White
et al. 1986, WormAtlas "Alimentary system - intestine"). Every ~45-50 s a Ca2+ wave starts in the
posterior intestine (int9) and crosses the intestine anteriorly in ~3-4 s, driving the
defecation motor program (Thomas 1990; Dal Santo et al. 1999; Teramoto & Iwasaki 2006). The
cells are coupled by gap junctions (innexin INX-16, Peters et al. 2007).

Model (:class:`IntestinalCa`): the Li & Rinzel (1994) reduction of the De Young & Keizer (1992)
IP3-receptor model in every intestinal cell (cytosolic Ca2+ ``ca_int``, fraction of IP3
receptors not inactivated ``h_ip3r``), a per-cell IP3 level ``ip3`` that relaxes to a set point
rising from anterior to posterior (the posterior cells are the pacemaker), and diffusion of Ca2+
and IP3 through the gap junctions between neighbouring cells. Units: mM, ms (circuit
convention); the paper's uM and s are converted and stated with every parameter.

Cell naming (wormlab's choice, documented here): ring 1 ``INT1DL INT1DR INT1VL INT1VR``, rings
2-9 ``INT<k>L INT<k>R``; :data:`INTESTINE_CELLS` lists them anterior to posterior.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from wormlab.circuit._mechanisms import Mechanism, Param
from wormlab.circuit._nml import CellType, NetSpec

INTESTINE_CELLS: tuple[str, ...] = (
    "INT1DL", "INT1DR", "INT1VL", "INT1VR",
    *(f"INT{k}{s}" for k in range(2, 10) for s in "LR"))
#: ring number (1 anterior .. 9 posterior) of each cell of :data:`INTESTINE_CELLS`
INTESTINE_RING: dict[str, int] = {n: int(n[3]) for n in INTESTINE_CELLS}
INTESTINE_CELL_TYPE = "IntestinalCell"
INTESTINE_GAP_TYPE = "intestine_inx16_gap"
INTESTINE_AREA_UM2 = 4.0 * math.pi * 10.0 ** 2  # sphere of 20 um diameter (placeholder)
INTESTINE_GAP_NS = 0.00052  # c302 C1 neuron_to_neuron_elec_syn (placeholder; V is passive)


def _neighbours() -> list[tuple[str, str]]:
    """Gap-junction pairs: left-right within a ring, and each cell to the same side of the next
    ring (int1 dorsal and ventral cells of a side both to int2 of that side; int1 D-V pairs)."""
    pairs = [("INT1DL", "INT1DR"), ("INT1VL", "INT1VR"), ("INT1DL", "INT1VL"),
             ("INT1DR", "INT1VR"), ("INT1DL", "INT2L"), ("INT1VL", "INT2L"),
             ("INT1DR", "INT2R"), ("INT1VR", "INT2R")]
    for k in range(2, 10):
        pairs.append((f"INT{k}L", f"INT{k}R"))
        if k < 9:
            pairs += [(f"INT{k}L", f"INT{k + 1}L"), (f"INT{k}R", f"INT{k + 1}R")]
    return pairs


def add_intestine(spec: NetSpec) -> NetSpec:
    """``spec`` plus the 20 intestinal cells and their gap junctions.

    The cells get a NeuroML cell type ``IntestinalCell``: the first non-muscle type of ``spec``
    (C1 ``GenericNeuronCell``) with its own area (:data:`INTESTINE_AREA_UM2`), **leak only**
    (k_slow, k_fast and ca_boyle densities set to 0) and V starting at the leak reversal, so the
    membrane stays at rest and the Ca2+ dynamics come from :class:`IntestinalCa` alone. Gap
    junctions (type :data:`INTESTINE_GAP_TYPE`, INX-16) join neighbouring cells; they couple V
    (passive here) and define the neighbours through which :class:`IntestinalCa` diffuses Ca2+
    and IP3.
    """
    if not isinstance(spec, NetSpec):
        raise TypeError(f"add_intestine expects a NetSpec, got {type(spec).__name__}")
    clash = sorted(set(INTESTINE_CELLS) & set(spec.cells))
    if clash:
        raise ValueError(f"network {spec.name} already has intestinal cells {clash[:4]}")
    base = next((t for t in spec.cell_types.values() if "Muscle" not in t.id), None)
    if base is None:
        raise ValueError(f"network {spec.name} has no non-muscle cell type to copy")
    g = {k: (v if k == "Leak" else 0.0) for k, v in base.g_mS_per_cm2.items()}
    ct = dataclasses.replace(base, id=INTESTINE_CELL_TYPE, area_um2=INTESTINE_AREA_UM2,
                             g_mS_per_cm2=g, v_init_mV=base.erev_mV["Leak"])
    types: dict[str, CellType] = {**spec.cell_types, INTESTINE_CELL_TYPE: ct}
    n0 = len(spec.cells)
    idx = {n: n0 + i for i, n in enumerate(INTESTINE_CELLS)}
    gap_types = [*spec.gap_types, (INTESTINE_GAP_TYPE, INTESTINE_GAP_NS)]
    gt = len(gap_types) - 1
    gaps = [*spec.gaps, *((idx[a], idx[b], gt, 1.0) for a, b in _neighbours())]
    return dataclasses.replace(
        spec, name=f"{spec.name}+intestine", cells=[*spec.cells, *INTESTINE_CELLS],
        cell_type=[*spec.cell_type, *[INTESTINE_CELL_TYPE] * len(INTESTINE_CELLS)],
        cell_types=types, gap_types=gap_types, gaps=gaps)


def intestine_spec() -> NetSpec:
    """A network of the 20 intestinal cells only (C1 channel and pool definitions from the
    shipped c302 template, no neurons, no chemical synapses)."""
    from wormlab.circuit._build import _template_objects, load_template

    cell_types, channels, pool, syn, gaps = _template_objects(load_template())
    empty = NetSpec(name="empty", cells=[], cell_type=[],
                    cell_types={"GenericNeuronCell": cell_types["GenericNeuronCell"]},
                    channels=channels, ca_pool=pool, syn_types=syn, chem=[], gap_types=[],
                    gaps=[], inputs=[], source="wormlab.circuit._intestine")
    return add_intestine(empty)


_SRC = "Li & Rinzel 1994 (J Theor Biol 166:461), Table 1"
_UM = 1e-3  # uM -> mM
_PER_S = 1e-3  # 1/s -> 1/ms


def _p(name, unit, kind, default, source, bounds=None):
    return Param(name, unit, kind, source=source, default=default, bounds=bounds,
                 provenance="mechanistic-default")


INTESTINE_PARAMS: tuple[Param, ...] = (
    _p("int_c0", "mM", "concentration", 2.0 * _UM, f"{_SRC}: c0 = 2 uM (total Ca / cytosol vol)"),
    _p("int_c1", "1", "fraction", 0.185, f"{_SRC}: c1 = 0.185 (ER / cytosol volume)"),
    _p("int_v1", "1/ms", "rate", 6.0 * _PER_S, f"{_SRC}: v1 = 6 /s (IP3R flux)"),
    _p("int_v2", "1/ms", "rate", 0.11 * _PER_S, f"{_SRC}: v2 = 0.11 /s (ER leak)"),
    _p("int_kpump", "1/ms", "rate", 9.0 * _PER_S,
       f"{_SRC}: v3 = 0.9 uM/s = kpump * k3 (SERCA max flux)"),
    _p("int_k3", "mM", "concentration", 0.1 * _UM, f"{_SRC}: k3 = 0.1 uM (SERCA)"),
    _p("int_d1", "mM", "concentration", 0.13 * _UM, f"{_SRC}: d1 = 0.13 uM (IP3)"),
    _p("int_d2", "mM", "concentration", 1.049 * _UM, f"{_SRC}: d2 = 1.049 uM (Ca inact.)"),
    _p("int_d3", "mM", "concentration", 0.9434 * _UM, f"{_SRC}: d3 = 0.9434 uM (IP3)"),
    _p("int_d5", "mM", "concentration", 0.08234 * _UM, f"{_SRC}: d5 = 0.08234 uM (Ca act.)"),
    _p("int_a2", "1/(mM ms)", "rate", 0.02,
       "Li & Rinzel 1994 a2 = 0.2 /(uM s) = 0.2 /(mM ms), slowed 10x by wormlab so the "
       "period is ~50 s (Thomas 1990)", bounds=(1e-4, 10.0)),
    _p("int_ip3", "mM", "concentration", 0.42 * _UM,
       "wormlab: anterior IP3 set point 0.42 uM, inside Li-Rinzel's oscillatory range"),
    _p("int_ip3_grad", "1", "fraction", 0.1,
       "wormlab: posterior set point 10 % higher (int9 pacemaker, Teramoto & Iwasaki 2006)"),
    _p("int_k_ip3", "1/ms", "rate", 0.1 * _PER_S, "wormlab: IP3 turnover 0.1 /s"),
    _p("int_d_ca", "1/ms", "rate", 0.5 * _PER_S,
       "wormlab: Ca exchange through INX-16 gap junctions 0.5 /s per neighbour (Peters 2007)"),
    _p("int_d_ip3", "1/ms", "rate", 0.5 * _PER_S,
       "wormlab: IP3 exchange through gap junctions 0.5 /s per neighbour"),
)


@dataclass(frozen=True)
class IntestinalCa(Mechanism):
    """IP3-receptor Ca2+ oscillator of the intestinal cells (Li-Rinzel), coupled by gap
    junctions. Build it for a spec with :meth:`for_spec` (it needs the neighbour list and the
    anterior-posterior position of each cell); ``where`` is the 20 intestinal cells.

    States: ``ca_int`` (cytosolic [Ca2+], mM), ``h_ip3r`` (1), ``ip3`` ([IP3], mM).
    """

    name: str = "intestinal_ca"
    params: tuple[Param, ...] = INTESTINE_PARAMS
    states: tuple[str, ...] = ("ca_int", "h_ip3r", "ip3")
    nonnegative: tuple[str, ...] = ("ca_int", "ip3")
    where: tuple[str, ...] = INTESTINE_CELLS
    #: directed neighbour pairs (dst, src) as network cell indices, both directions
    edges: tuple[tuple[int, int], ...] = ()
    #: per network cell: 0 anterior (int1) .. 1 posterior (int9); 0 for other cells
    position: tuple[float, ...] = ()
    equation: str = (
        "c_ER = (c0 - c)/c1; J = c1 v1 (p/(p+d1))^3 (c/(c+d5))^3 h^3 (c_ER - c) "
        "+ c1 v2 (c_ER - c) - kpump k3 c^2/(c^2+k3^2); dc/dt = J + D_ca sum_nb (c_j - c); "
        "dh/dt = a2 (Q2 (1-h) - c h), Q2 = d2 (p+d1)/(p+d3); "
        "dp/dt = k_ip3 (ip3 (1 + grad x) - p) + D_ip3 sum_nb (p_j - p)")
    source: str = ("Li & Rinzel 1994 (De Young & Keizer 1992 reduced); DD009; Teramoto & "
                   "Iwasaki 2006 (posterior-to-anterior wave); Peters et al. 2007 (INX-16)")

    @classmethod
    def for_spec(cls, spec: NetSpec, **fields) -> IntestinalCa:
        """The mechanism for the cells of ``spec`` (from :func:`add_intestine`)."""
        missing = [n for n in INTESTINE_CELLS if n not in spec.cells]
        if missing:
            raise KeyError(f"network {spec.name} lacks intestinal cells {missing[:4]}: build "
                           "it with add_intestine(spec)")
        idx = {n: i for i, n in enumerate(spec.cells)}
        edges = []
        for a, b in _neighbours():
            edges += [(idx[a], idx[b]), (idx[b], idx[a])]
        pos = [0.0] * len(spec.cells)
        for n in INTESTINE_CELLS:
            pos[idx[n]] = (INTESTINE_RING[n] - 1) / 8.0
        return cls(edges=tuple(edges), position=tuple(pos), **fields)

    def _check(self, x: torch.Tensor) -> None:
        if not self.edges:
            raise ValueError("IntestinalCa has no neighbour list: build it with "
                             "IntestinalCa.for_spec(spec)")
        if x.shape[-1] != len(self.position):
            raise ValueError(f"IntestinalCa was built for {len(self.position)} cells, the state "
                             f"has {x.shape[-1]}: rebuild it with IntestinalCa.for_spec(spec)")

    def _diffuse(self, x: torch.Tensor) -> torch.Tensor:
        """sum over neighbours j of (x_j - x_i), (B, N)."""
        self._check(x)
        e = torch.tensor(self.edges, dtype=torch.long, device=x.device)
        dst, src = e[:, 0], e[:, 1]
        return torch.zeros_like(x).index_add(-1, dst, x[..., src] - x[..., dst])

    def _target(self, P: dict, like: torch.Tensor) -> torch.Tensor:
        self._check(like)
        x = torch.tensor(self.position, dtype=like.dtype, device=like.device)
        return P["int_ip3"] * (1.0 + P["int_ip3_grad"] * x)

    def derivative(self, P, S, v, aux):
        c, h, p = S["ca_int"], S["h_ip3r"], S["ip3"]
        c_er = (P["int_c0"] - c) / P["int_c1"]
        m = p / (p + P["int_d1"])
        n = c / (c + P["int_d5"])
        open3 = (m * n * h) ** 3
        c2 = c * c
        k3 = P["int_k3"]
        j = (P["int_c1"] * (P["int_v1"] * open3 + P["int_v2"]) * (c_er - c)
             - P["int_kpump"] * k3 * c2 / (c2 + k3 * k3))
        q2 = P["int_d2"] * (p + P["int_d1"]) / (p + P["int_d3"])
        return {
            "ca_int": j + P["int_d_ca"] * self._diffuse(c),
            "h_ip3r": P["int_a2"] * (q2 * (1.0 - h) - c * h),
            "ip3": P["int_k_ip3"] * (self._target(P, p) - p) + P["int_d_ip3"] * self._diffuse(p),
        }

    def initial(self, P, v, net):
        # resting cytosolic Ca 0.1 uM (Li-Rinzel's lower branch), receptors mostly available
        ca = torch.full_like(v, 0.1 * _UM)
        return {"ca_int": ca, "h_ip3r": torch.full_like(v, 0.8),
                "ip3": self._target(P, v).expand_as(v).clone()}


# ----------------------------------------------------------------------------- simulation
#: C1 gate and pool time constants (ms) of the intestine-only network: the channels have zero
#: density on intestinal cells so their gates are inert; slowing them lets RK4 take 10+ ms steps
INERT_TAUS = ("tau_n", "tau_p", "tau_q", "tau_e", "tau_f", "tau_ca")
INERT_TAU_MS = 10_000.0
#: the intestine-only network has no chemical synapses; its (unused) activation rate is set to
#: the rate's lower bound so the empty synaptic row does not limit the step
INERT_SYN_K_PER_MS = 1e-5


def intestine_network(**mechanism_fields):
    """A :class:`~wormlab.circuit.Network` of the 20 intestinal cells with
    :class:`IntestinalCa`; the inert C1 gate/pool time constants set to :data:`INERT_TAU_MS`
    (provenance ``mechanistic-default``) and the unused synaptic rate to
    :data:`INERT_SYN_K_PER_MS`, so coarse steps are stable."""
    from wormlab.circuit._build import build_network

    spec = intestine_spec()
    net = build_network(spec, mechanisms=[IntestinalCa.for_spec(spec, **mechanism_fields)])
    with torch.no_grad():
        for k in INERT_TAUS:
            net.params[k].fill_(INERT_TAU_MS)
            net.set_provenance(k, "mechanistic-default",
                               source="wormlab: inert (zero-density) channel on intestinal cells")
        net.params["syn_k"].fill_(INERT_SYN_K_PER_MS)
        net.set_provenance("syn_k", "mechanistic-default",
                           source="wormlab: no chemical synapses in the intestine-only network")
    return net


def simulate_intestine(seconds: float, dt_ms: float = 100.0, params: dict | None = None,
                       net=None, **sim_options) -> torch.Tensor:
    """Simulate the 20 intestinal cells for ``seconds`` and return cytosolic [Ca2+].

    Args:
        seconds: simulated time, s.
        dt_ms: RK4 step, ms (100 ms default: stable up to 400 ms, period unchanged to 1e-3 s
            from 50 ms; docs/autofit.md).
        params: ``{name: tensor}`` overrides (functional use, gradients flow through them),
            e.g. ``{"int_ip3": torch.tensor([...])}`` with the parameter's shape.
        net: a network from :func:`intestine_network` (built if None).

    Returns:
        (T, 20) [Ca2+] in uM, T = seconds / (dt_ms / 1000) + 1, columns in
        :data:`INTESTINE_CELLS` order (anterior to posterior); (T, B, 20) when the network
        or ``params`` carry a batch B > 1.
    """
    from wormlab.circuit._simulate import simulate

    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"seconds must be a finite number > 0, got {seconds}")
    net = net or intestine_network()
    res = simulate(net, None, duration_ms=seconds * 1e3, dt_ms=dt_ms,
                   record={"ca_int": list(INTESTINE_CELLS)}, params=params, **sim_options)
    tr = res.states["ca_int"] / _UM
    assert tr.shape[0] == res.t_ms.shape[0] and tr.shape[2] == len(INTESTINE_CELLS)
    return tr[:, 0] if tr.shape[1] == 1 else tr


# ----------------------------------------------------------------------------- analysis
def _acf(x: np.ndarray) -> np.ndarray:
    n = len(x)
    f = np.fft.rfft(x, 2 * n)
    return np.fft.irfft(f * np.conj(f))[:n]


def _parabolic(y: np.ndarray, k: int) -> float:
    """Vertex offset of the parabola through y[k-1], y[k], y[k+1] (in samples, |d| <= 0.5)."""
    a, b, c = y[k - 1], y[k], y[k + 1]
    den = a - 2.0 * b + c
    return 0.0 if den == 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))


def oscillation_period_s(trace, dt_s: float, min_cycles: float = 2.0) -> float:
    """Period (s) of an oscillating trace from its autocorrelation (no threshold crossing).

    The mean and linear trend are removed; a first estimate is the lag of the highest
    autocorrelation peak between the first negative lobe and half the record (the biased
    estimator makes the first period the highest; parabolic interpolation on the unbiased
    one). It is refined to the frequency, within +-10 %, that maximises the Hann-windowed
    power summed over the first harmonics (up to 5), with parabolic interpolation.

    Args:
        trace: (T,) samples (tensor or array).
        dt_s: sample spacing, s.
        min_cycles: the record must hold at least this many periods.

    Raises:
        ValueError: naming the problem when the trace is too short, flat, non-finite or not
            oscillating.
    """
    x = np.asarray(trace.detach().cpu() if isinstance(trace, torch.Tensor) else trace,
                   dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"trace must be 1-D (T,), got shape {x.shape}")
    if not (dt_s > 0 and math.isfinite(dt_s)):
        raise ValueError(f"dt_s must be a finite number > 0, got {dt_s}")
    if len(x) < 8 or not np.isfinite(x).all():
        raise ValueError(f"trace needs >= 8 finite samples, got {len(x)} "
                         f"({int((~np.isfinite(x)).sum())} non-finite)")
    t = np.arange(len(x))
    x = x - np.polyval(np.polyfit(t, x, 1), t)
    if not np.ptp(x) > 1e-12 * max(1.0, np.abs(x).max()):
        raise ValueError("trace is flat: no oscillation")
    r = _acf(x)
    n = len(x)
    neg = np.flatnonzero(r < 0)
    if len(neg) == 0:
        raise ValueError("autocorrelation never turns negative: no oscillation in the trace")
    lo, hi = int(neg[0]), int(n / min_cycles)
    if hi <= lo + 1:
        raise ValueError(f"trace of {n * dt_s:g} s holds fewer than {min_cycles} cycles")
    k = lo + int(np.argmax(r[lo:hi]))
    if r[k] <= 0 or k + 1 >= n:
        raise ValueError("no positive autocorrelation peak: no oscillation in the trace")
    # the biased estimator's taper (1 - lag/n) pulls its peak to shorter lags: refine on the
    # unbiased autocorrelation, whose peak lies within a few samples
    ru = r / (n - np.arange(n))
    a, b = max(lo, k - 3), min(n - 1, k + 4)
    k = a + int(np.argmax(ru[a:b]))
    if k + 1 >= n:
        raise ValueError("autocorrelation peak at the end of the record: too few cycles")
    p0 = k + _parabolic(ru, k)  # samples
    # refine: maximise the Hann-windowed harmonic power sum_h |X(h f)|^2 over f near 1/p0
    # (the autocorrelation of a finite record is biased by its partial windows)
    harmonics = max(1, min(5, int(p0 / 2.0)))  # below Nyquist
    f = np.linspace(0.9 / p0, 1.1 / p0, 401)
    xw = x * np.hanning(n)
    ph = np.exp(-2j * np.pi * np.outer(f, t))
    power = sum(np.abs((ph ** h) @ xw) ** 2 for h in range(1, harmonics + 1))
    j = int(np.argmax(power))
    if 0 < j < len(f) - 1:
        fj = f[j] + _parabolic(power, j) * (f[1] - f[0])
    else:  # at the edge of the search window: keep the autocorrelation estimate
        fj = 1.0 / p0
    return dt_s / fj


def _lag_s(a: np.ndarray, b: np.ndarray, dt_s: float, max_lag: int) -> float:
    """Lag (s) of ``b`` behind ``a`` from the cross-correlation peak (parabolic refinement)."""
    a = a - a.mean()
    b = b - b.mean()
    n = len(a)
    f = np.fft.irfft(np.fft.rfft(a, 2 * n).conj() * np.fft.rfft(b, 2 * n))
    lags = np.r_[np.arange(0, max_lag + 1), np.arange(-max_lag, 0)]
    vals = np.r_[f[:max_lag + 1], f[-max_lag:]]
    order = np.argsort(lags)
    lags, vals = lags[order], vals[order]
    k = int(np.argmax(vals))
    d = _parabolic(vals, k) if 0 < k < len(vals) - 1 else 0.0
    return (lags[k] + d) * dt_s


def wave_direction(traces, dt_s: float, max_lag_s: float = 10.0) -> dict:
    """Direction and timing of the intestinal Ca2+ wave.

    Args:
        traces: (T, 20) [Ca2+] in :data:`INTESTINE_CELLS` order (anterior to posterior).
        dt_s: sample spacing, s.
        max_lag_s: largest lag searched, s (keep below half the period).

    Returns:
        dict with ``ring_lag_s`` (9 rings: lag of each ring's mean trace behind int9, s),
        ``lag_s`` (int1 behind int9; > 0 is a posterior-to-anterior wave), ``direction``
        (``"posterior_to_anterior"``, ``"anterior_to_posterior"`` or ``"none"`` if |lag| is
        under one sample) and ``speed_rings_per_s`` (8 ring steps / |lag|).
    """
    x = np.asarray(traces.detach().cpu() if isinstance(traces, torch.Tensor) else traces,
                   dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(INTESTINE_CELLS):
        raise ValueError(f"traces must be (T, {len(INTESTINE_CELLS)}) in INTESTINE_CELLS order, "
                         f"got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("traces hold non-finite values")
    max_lag = max(1, min(int(max_lag_s / dt_s), x.shape[0] // 2))
    rings = [x[:, [i for i, n in enumerate(INTESTINE_CELLS) if INTESTINE_RING[n] == r]].mean(1)
             for r in range(1, 10)]
    lags = [float(_lag_s(rings[-1], rr, dt_s, max_lag)) for rr in rings]
    lag = lags[0]
    direction = ("none" if abs(lag) < dt_s else
                 "posterior_to_anterior" if lag > 0 else "anterior_to_posterior")
    return {"ring_lag_s": lags, "lag_s": lag, "direction": direction,
            "speed_rings_per_s": 8.0 / abs(lag) if abs(lag) >= dt_s else math.inf}


# ----------------------------------------------------------------------------- period fit
def measured_period_s(traces: torch.Tensor, dt_ms: float, skip_s: float = 50.0) -> float:
    """Period (s) of the mean intestinal [Ca2+] after dropping the first ``skip_s`` s."""
    d = dt_ms / 1e3
    k = int(round(skip_s / d))
    if traces.shape[0] - k < 8:
        raise ValueError(f"record of {traces.shape[0] * d:g} s is shorter than skip_s={skip_s}")
    return oscillation_period_s(traces[k:].mean(1), d)


def fit_period(target_s: float = 50.0, name: str = "int_ip3",
               bracket: tuple[float, float] = (0.38e-3, 0.55e-3), net=None,
               seconds: float = 250.0, dt_ms: float = 200.0, tol_s: float = 0.5,
               max_evals: int = 12) -> dict:
    """Fit one parameter of :class:`IntestinalCa` so the oscillation period is ``target_s``.

    The measured period is piecewise smooth but its gradient is not useful (it jumps where the
    autocorrelation peak moves by a sample), so this is a 1-D bracketing search: Illinois
    false position on log(period / target) against the parameter, inside ``bracket`` (the
    parameter's unit; the default brackets ``int_ip3`` within Li-Rinzel's oscillatory range,
    0.38-0.55 uM). The fitted value is written into ``net`` and tagged ``fitted``.

    Returns:
        dict with ``value``, ``period_s``, ``evals`` and ``history`` [(value, period_s)].

    Raises:
        ValueError: the bracket does not contain the target (or does not oscillate at an end).
    """
    net = net or intestine_network()
    if name not in net.params or net.param_mechanism.get(name) != IntestinalCa.name:
        raise KeyError(f"{name!r} is not a parameter of {IntestinalCa.name}; choose from "
                       f"{[p.name for p in INTESTINE_PARAMS]}")
    lo, hi = (float(b) for b in bracket)
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ValueError(f"bracket must be 0 < low < high, got {bracket}")
    shape = net.params[name].shape
    history: list[tuple[float, float]] = []

    def period(x: float) -> float:
        with torch.no_grad():
            tr = simulate_intestine(seconds, dt_ms=dt_ms, net=net,
                                    params={name: torch.full(shape, x, dtype=net.dtype)})
        try:
            per = measured_period_s(tr, dt_ms)
        except ValueError as exc:
            raise ValueError(f"fit_period: {name}={x:.4g} gives no oscillation ({exc}); "
                             "narrow the bracket") from exc
        history.append((float(x), float(per)))
        return per

    g_lo, g_hi = math.log(period(lo) / target_s), math.log(period(hi) / target_s)
    if g_lo * g_hi > 0:
        raise ValueError(f"fit_period: {name} in [{lo:.4g}, {hi:.4g}] gives periods "
                         f"{history[0][1]:.2f}-{history[1][1]:.2f} s, which do not bracket "
                         f"target_s={target_s}")
    side = 0
    x, per = (lo, history[0][1]) if abs(g_lo) < abs(g_hi) else (hi, history[1][1])
    while abs(per - target_s) > tol_s and len(history) < max_evals:
        x = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
        per = period(x)
        g = math.log(per / target_s)
        if g * g_hi > 0:
            hi, g_hi = x, g
            if side == 1:
                g_lo /= 2.0
            side = 1
        else:
            lo, g_lo = x, g
            if side == -1:
                g_hi /= 2.0
            side = -1
    with torch.no_grad():
        net.params[name].fill_(x)
    net.set_provenance(name, "fitted", target_period_s=target_s, period_s=per,
                       method="bracketing (Illinois) on the autocorrelation period")
    return {"value": float(x), "period_s": float(per), "evals": len(history), "history": history,
            "converged": bool(abs(per - target_s) <= tol_s)}
