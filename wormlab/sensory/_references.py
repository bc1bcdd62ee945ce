"""Reference sensory-neuron responses per modality (``data/references.json``).

No digitised response data for these experiments was found offline (the ``search`` corpora,
the package lists and the shared recordings were checked; Kato/Flavell recordings have no
sensory stimuli), and no figure images are available. Every curve is therefore
**reconstructed from a published description** (not pixel-digitised): the published
qualitative/quantitative facts (sign, ON/OFF, latency, rise, decay, threshold, approximate peak
amplitude) are written down per neuron with the paper and figure they describe, and the curve
is built from them with one stated parametric form (:func:`response_curve`). Amplitudes and
time constants are approximate values recalled from the cited figures; they were NOT checked
against the figures in this session (no internet); parameters that are modelling choices and
not taken from a source say so in their ``source`` field.

Parametric form (per neuron). The stimulus ``s(t)`` (40 ms frames) is mapped to a drive
``d(t)``: a Hill function ``s^n / (s^n + K^n)`` for chemicals and touch (dimensionless, 0..1),
or ``w * softplus((T - T*) / w)`` (degC above the AFD threshold T*) for temperature. Every
frame's drive increment ``Δd`` launches a kernel ``k`` scaled by ``a_up * Δd`` (Δd > 0) or
``a_down * |Δd|`` (Δd < 0)::

    k(u) = 0 for u < latency;  with v = u - latency:
    k(u) = (1 - f) * g(v) / max g + f * (1 - exp(-v / tau_rise)),
    g(v) = (1 - exp(-v / tau_rise)) * exp(-v / tau_decay)

so ``a_up`` is the peak response (dF/F or ratio change) to a full-drive step for a purely
transient kernel, ``f`` the sustained fraction. The response is the sum over frames.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wormlab.paths import package_data

REFERENCES_FILE = package_data("sensory", "data", "references.json")
FRAME_DT_MS = 40.0
KIND_RECONSTRUCTED = "reconstructed from published description (not pixel-digitised)"
MODALITIES = ("temperature", "nacl", "odour", "touch", "noxious")
UNITS = {"temperature": "degC", "nacl": "mM", "odour": "uM", "touch": "um", "noxious": "M"}


class ReferenceError(ValueError):
    """The reference file is malformed (names the file, modality, field and value)."""


@dataclass
class Protocol:
    """One stimulus protocol and the reference responses of the modality's neurons.

    Attributes:
        name: protocol id, e.g. ``"up_0_50"``.
        t_s: (T,) frame times, s (every :data:`FRAME_DT_MS`).
        stimulus: (T,) stimulus in the modality's units.
        response: neuron -> (T,) reference dF/F (or ratio change, see ``measure``).
        description: what the protocol is.
    """

    name: str
    t_s: np.ndarray
    stimulus: np.ndarray
    response: dict[str, np.ndarray]
    description: str = ""


@dataclass
class Reference:
    """Reference responses of one modality (see module docstring for how they were built)."""

    modality: str
    neurons: list[str]
    units: str
    measure: str
    kind: str
    protocols: dict[str, Protocol]
    heldout: list[str]
    sources: list[dict] = field(default_factory=list)
    parameters: dict = field(default_factory=dict)

    @property
    def train(self) -> list[str]:
        return [p for p in self.protocols if p not in self.heldout]


# --------------------------------------------------------------------------- the parametric form
def kernel(u_s: np.ndarray, latency_s: float, tau_rise_s: float, tau_decay_s: float,
           sustained: float) -> np.ndarray:
    """The response kernel k(u) of the module docstring (u in s; dimensionless, peak ~1)."""
    v = np.maximum(u_s - latency_s, 0.0)
    rise = 1.0 - np.exp(-v / tau_rise_s)
    g = rise * np.exp(-v / tau_decay_s)
    # peak of g: d/dv = 0 at v* = tau_r * ln(1 + tau_d / tau_r)
    vs = tau_rise_s * math.log1p(tau_decay_s / tau_rise_s)
    gmax = (1.0 - math.exp(-vs / tau_rise_s)) * math.exp(-vs / tau_decay_s)
    k = (1.0 - sustained) * g / gmax + sustained * rise
    return np.where(u_s >= latency_s, k, 0.0)


def drive(stimulus: np.ndarray, p: dict) -> np.ndarray:
    """The dimensionless (Hill) or degC (AFD threshold) drive of one neuron's parameters."""
    s = np.asarray(stimulus, dtype=np.float64)
    form = p["drive"]
    if form == "hill":
        side = p.get("side", 1.0)  # touch: +1 anterior (s > 0), -1 posterior (s < 0)
        x = np.maximum(side * s, 0.0)
        n, K = p["hill_n"], p["hill_K"]
        return x ** n / (x ** n + K ** n)
    if form == "threshold":
        w, T = p["width_degC"], p["threshold_degC"]
        return w * np.logaddexp(0.0, (s - T) / w)
    raise ReferenceError(f"unknown drive form {form!r}")


def response_curve(t_s: np.ndarray, stimulus: np.ndarray, p: dict) -> np.ndarray:
    """The reconstructed response (T,) of one neuron to ``stimulus`` (T,) sampled at ``t_s``."""
    d = drive(stimulus, p)
    inc = np.diff(d, prepend=d[0])
    out = np.zeros_like(d)
    for j in np.nonzero(np.abs(inc) > 1e-12)[0]:
        up = inc[j] > 0
        a = p["a_up"] if up else p["a_down"]
        if a == 0.0:
            continue
        kp = p["kernel_up"] if up else p["kernel_down"]
        u = t_s[j:] - t_s[j]
        out[j:] += a * abs(inc[j]) * kernel(u, kp["latency_s"], kp["tau_rise_s"],
                                             kp["tau_decay_s"], kp["sustained"])
    return out


# --------------------------------------------------------------------------- protocols
def _frames(duration_s: float) -> np.ndarray:
    n = int(round(duration_s * 1000.0 / FRAME_DT_MS))
    return np.arange(n) * FRAME_DT_MS / 1000.0


def _step(t, before, after, at_s):
    return np.where(t >= at_s, after, before).astype(np.float64)


def _pulse(t, base, amp, at_s, width_s):
    return np.where((t >= at_s) & (t < at_s + width_s), amp, base).astype(np.float64)


def _ramp(t, start, rate, t0, t1):
    return start + rate * (np.clip(t, t0, t1) - t0)


def _protocol_stimuli(modality: str) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """name -> (t_s, stimulus, description). Durations are short (10-20 s) to keep training
    through the circuit at 1 ms affordable; the published protocols are longer."""
    out = {}
    if modality == "nacl":
        t = _frames(20.0)
        for a, b in ((0, 50), (50, 0), (0, 10), (50, 40), (10, 50), (50, 10), (50, 75),
                     (75, 50), (0, 25), (50, 25)):
            kind = "up" if b > a else "down"
            out[f"{kind}_{a}_{b}"] = (t, _step(t, a, b, 5.0),
                                      f"NaCl step {a} -> {b} mM at 5 s")
        # the closed loop's arenas hold 25-75 mM with slow changes along a track
        out["ramp_40_60"] = (t, _ramp(t, 40.0, 2.0, 5.0, 15.0),
                             "NaCl hold 40 mM 5 s, ramp +2 mM/s for 10 s, hold 60 mM")
        out["ramp_60_40"] = (t, _ramp(t, 60.0, -2.0, 5.0, 15.0),
                             "NaCl hold 60 mM 5 s, ramp -2 mM/s for 10 s, hold 40 mM")
    elif modality == "odour":
        t = _frames(20.0)
        for a, b in ((920, 0), (92, 0), (0, 920), (30, 0), (0, 92), (300, 0)):
            kind = "off" if b < a else "on"
            out[f"{kind}_{a}_{b}"] = (t, _step(t, a, b, 5.0),
                                      f"isoamyl alcohol {a} -> {b} uM at 5 s "
                                      "(920 uM ~ 1e-4 dilution)")
    elif modality == "temperature":
        t = _frames(20.0)
        for name, start, rate in (("warm_18_21", 18.0, 0.25), ("warm_13_16", 13.0, 0.25),
                                  ("cool_22_19", 22.0, -0.25), ("warm_18_19.2", 18.0, 0.1),
                                  ("cool_21_19.8", 21.0, -0.1), ("warm_18.5_20.3", 18.5, 0.15)):
            out[name] = (t, _ramp(t, start, rate, 4.0, 16.0),
                         f"hold {start} degC 4 s, ramp {rate:+} degC/s for 12 s, hold")
    elif modality == "touch":
        t = _frames(10.0)
        for name, amp in (("anterior_10", 10.0), ("posterior_10", -10.0), ("anterior_3", 3.0),
                          ("posterior_20", -20.0), ("anterior_20", 20.0), ("posterior_3", -3.0),
                          ("anterior_6", 6.0), ("posterior_6", -6.0)):
            out[name] = (t, _pulse(t, 0.0, amp, 2.0, 0.2),
                         f"{abs(amp)} um indentation, 200 ms, at 2 s, "
                         f"{'anterior (ALM/AVM field)' if amp > 0 else 'posterior (PLM field)'}")
    elif modality == "noxious":
        t = _frames(15.0)
        for amp in (1.0, 2.0, 0.25, 0.75, 0.5):
            out[f"glycerol_{amp:g}M"] = (t, _pulse(t, 0.0, amp, 3.0, 5.0),
                                         f"{amp} M glycerol for 5 s from 3 s")
    else:
        raise ReferenceError(f"unknown modality {modality!r}; choose from {MODALITIES}")
    return out


# --------------------------------------------------------------------------- the descriptions
def _k(lat, rise, decay, sus):
    return {"latency_s": lat, "tau_rise_s": rise, "tau_decay_s": decay, "sustained": sus}


ASSUMED = "modelling choice (not from a source)"
RECALLED = ("approximate value recalled from the cited figure; not checked against the figure "
            "in this session (no internet)")

SPECS: dict[str, dict] = {
    "nacl": {
        "neurons": ["ASEL", "ASER"],
        "measure": "YC3.60 cameleon YFP/CFP ratio change, dR/R0",
        "heldout": ["up_0_25", "down_50_25"],
        "sources": [{"cite": "Suzuki H, Thiele TR, Faumont S, Ezcurra M, Lockery SR, Schafer WR "
                             "(2008) Functional asymmetry in Caenorhabditis elegans taste "
                             "neurons and its computational role in chemotaxis. Nature "
                             "454:114-117", "figure": "Fig. 1 (ASEL and ASER responses to NaCl "
                             "up- and down-steps); panel letters not verified",
                     "facts": "ASEL is an ON cell: transient Ca rise on NaCl upsteps, small or "
                              "no response on downsteps. ASER is an OFF cell: larger, slower, "
                              "more sustained rise on downsteps; Ca decreases on upsteps."}],
        "params": {
            "ASEL": {"drive": "hill", "hill_K": 20.0, "hill_n": 1.0, "a_up": 0.25,
                     "a_down": -0.03, "kernel_up": _k(0.2, 0.5, 3.0, 0.1),
                     "kernel_down": _k(0.2, 1.0, 5.0, 0.5)},
            "ASER": {"drive": "hill", "hill_K": 20.0, "hill_n": 1.0, "a_up": -0.1,
                     "a_down": 0.4, "kernel_up": _k(0.3, 1.0, 10.0, 0.7),
                     "kernel_down": _k(0.3, 1.5, 12.0, 0.5)},
        },
        "param_sources": {"a_up, a_down, latencies, time constants": RECALLED,
                          "signs (ASEL ON, ASER OFF)": "Suzuki et al. 2008 (text and Fig. 1)",
                          "hill_K, hill_n, sustained fractions": ASSUMED},
    },
    "odour": {
        "neurons": ["AWCL", "AWCR"],
        "measure": "G-CaMP dF/F",
        "heldout": ["off_300_0"],
        "sources": [{"cite": "Chalasani SH, Chronis N, Tsunozaki M, Gray JM, Ramot D, Goodman "
                             "MB, Bargmann CI (2007) Dissecting a circuit for olfactory "
                             "behaviour in Caenorhabditis elegans. Nature 450:63-70",
                     "figure": "Fig. 1 (AWC G-CaMP responses to isoamyl alcohol addition and "
                               "removal); panel letters not verified",
                     "facts": "AWC is an OFF cell: odour addition decreases Ca, odour removal "
                              "evokes a large Ca rise that peaks within seconds and decays "
                              "over ~10 s."}],
        "params": {n: {"drive": "hill", "hill_K": 92.0, "hill_n": 1.0, "a_up": -0.2,
                       "a_down": 0.8, "kernel_up": _k(0.3, 0.5, 20.0, 0.8),
                       "kernel_down": _k(0.5, 1.0, 6.0, 0.15)} for n in ("AWCL", "AWCR")},
        "param_sources": {"a_up, a_down, latencies, time constants": RECALLED,
                          "signs (OFF cell)": "Chalasani et al. 2007 (text and Fig. 1)",
                          "hill_K (92 uM ~ 1e-5 dilution), hill_n, sustained": ASSUMED,
                          "AWCL = AWCR": ASSUMED + "; the two AWCs respond alike to IAA"},
    },
    "temperature": {
        "neurons": ["AFDL", "AFDR"],
        "measure": "YC3.60 cameleon YFP/CFP ratio change, dR/R0",
        "heldout": ["warm_18.5_20.3"],
        "cultivation_degC": 20.0,
        "sources": [{"cite": "Kimura KD, Miyawaki A, Matsumoto K, Mori I (2004) The C. elegans "
                             "thermosensory neuron AFD responds to warming. Curr Biol "
                             "14:1291-1295", "figure": "Figs. 1-2 (AFD responses to warming "
                             "and cooling at cultivation temperatures 15/20/25 degC); panels "
                             "not verified",
                     "facts": "AFD Ca rises on warming and falls on cooling only above a "
                              "threshold set by the cultivation temperature Tc."},
                    {"cite": "Clark DA, Biron D, Sengupta P, Samuel ADT (2006) The AFD sensory "
                             "neurons encode multiple functions underlying thermotactic "
                             "behavior in Caenorhabditis elegans. J Neurosci 26:7444-7451",
                     "figure": "Fig. 2 (AFD responses to warming ramps; threshold T*_AFD a "
                               "few degC below Tc); panel not verified",
                     "facts": "AFD responds to slow warming ramps (~0.05 degC/s there) once T "
                              "exceeds T*_AFD, below Tc; no response to warming well below "
                              "T*."}],
        "params": {n: {"drive": "threshold", "threshold_degC": 17.5, "width_degC": 0.3,
                       "a_up": 0.15, "a_down": -0.1, "kernel_up": _k(0.3, 1.0, 20.0, 0.3),
                       "kernel_down": _k(0.3, 1.0, 20.0, 0.3)} for n in ("AFDL", "AFDR")},
        "param_sources": {"threshold 17.5 degC (Tc 20 - 2.5)": RECALLED,
                          "a_up, a_down (per degC of drive), time constants": RECALLED,
                          "ramp rates 0.15-0.25 degC/s (faster than published ~0.05)": ASSUMED
                          + "; chosen to keep protocols 20 s",
                          "width_degC, sustained": ASSUMED},
    },
    "touch": {
        "neurons": ["ALML", "ALMR", "AVM", "PLML", "PLMR"],
        "measure": "cameleon YFP/CFP ratio change, dR/R0",
        "heldout": ["anterior_6", "posterior_6"],
        "stimulus_note": "signed indentation: > 0 anterior touch (ALM/AVM field), < 0 "
                         "posterior touch (PLM field), magnitude um",
        "sources": [{"cite": "Suzuki H, Kerr R, Bianchi L, Frokjaer-Jensen C, Slone D, Xue J, "
                             "Gerstbrein B, Driscoll M, Schafer WR (2003) In vivo imaging of C. "
                             "elegans mechanosensory neurons demonstrates a specific role for "
                             "the MEC-4 channel in the process of gentle touch sensation. "
                             "Neuron 39:1005-1017", "figure": "Figs. 1-3 (ALM/PLM cameleon "
                             "responses to gentle touch with a glass probe); panels not "
                             "verified",
                     "facts": "ALM and PLM respond with a fast, transient Ca rise to gentle "
                              "touch in their receptive fields (anterior / posterior), graded "
                              "with the stimulus; abolished in mec-4."},
                    {"cite": "Chalfie M, Sulston JE, White JG, Southgate E, Thomson JN, Brenner "
                             "S (1985) The neural circuit for touch sensitivity in C. elegans. "
                             "J Neurosci 5:956-964", "figure": "receptive fields (text)",
                     "facts": "ALM and AVM mediate anterior, PLM posterior gentle touch."}],
        "params": {n: {"drive": "hill", "side": side, "hill_K": 5.0, "hill_n": 2.0,
                       "a_up": amp, "a_down": 0.0, "kernel_up": _k(0.1, 0.2, 1.5, 0.0),
                       "kernel_down": _k(0.1, 0.2, 1.5, 0.0)}
                   for n, side, amp in (("ALML", 1.0, 0.15), ("ALMR", 1.0, 0.15),
                                        ("AVM", 1.0, 0.1), ("PLML", -1.0, 0.15),
                                        ("PLMR", -1.0, 0.15))},
        "param_sources": {"a_up, time constants": RECALLED,
                          "AVM amplitude (0.1), hill_K, hill_n": ASSUMED,
                          "receptive fields": "Chalfie et al. 1985"},
    },
    "noxious": {
        "neurons": ["ASHL", "ASHR"],
        "measure": "G-CaMP dF/F",
        "heldout": ["glycerol_0.5M"],
        "sources": [{"cite": "Hilliard MA, Apicella AJ, Kerr R, Suzuki H, Bazzicalupo P, "
                             "Schafer WR (2005) In vivo imaging of C. elegans ASH neurons: "
                             "cellular response and adaptation to chemical repellents. EMBO J "
                             "24:63-72", "figure": "Figs. 1-2 (ASH G-CaMP responses to 1 M "
                             "glycerol, Cu2+, SDS; adaptation on repeats); panels not verified",
                     "facts": "ASH responds to glycerol onset with a fast Ca rise that decays "
                              "during the stimulus; the response adapts with repeated "
                              "stimulation."}],
        "params": {n: {"drive": "hill", "hill_K": 0.5, "hill_n": 2.0, "a_up": 0.35,
                       "a_down": 0.0, "kernel_up": _k(0.3, 0.5, 4.0, 0.3),
                       "kernel_down": _k(0.3, 0.5, 4.0, 0.3)} for n in ("ASHL", "ASHR")},
        "param_sources": {"a_up, time constants": RECALLED,
                          "hill_K, hill_n, sustained, no OFF response": ASSUMED},
    },
}


def build_references() -> dict:
    """The JSON document of :data:`REFERENCES_FILE` (curves generated from :data:`SPECS`)."""
    doc = {"format": "wormlab.sensory.references/1", "frame_dt_ms": FRAME_DT_MS,
           "kind": KIND_RECONSTRUCTED, "form": __doc__.split("Parametric form (per neuron).")[1]
           .strip(), "modalities": {}}
    for m in MODALITIES:
        spec = SPECS[m]
        prots = {}
        for name, (t, s, desc) in _protocol_stimuli(m).items():
            prots[name] = {"description": desc, "t_s": [round(float(x), 6) for x in t],
                           "stimulus": [round(float(x), 6) for x in s],
                           "response": {n: [round(float(x), 6) for x in
                                            response_curve(t, s, spec["params"][n])]
                                        for n in spec["neurons"]}}
        doc["modalities"][m] = {
            "neurons": spec["neurons"], "units": UNITS[m], "measure": spec["measure"],
            "kind": KIND_RECONSTRUCTED, "heldout": spec["heldout"], "sources": spec["sources"],
            "parameters": spec["params"], "parameter_sources": spec["param_sources"],
            **{k: spec[k] for k in ("cultivation_degC", "stimulus_note") if k in spec},
            "protocols": prots}
    return doc


def write_references(path: str | Path = REFERENCES_FILE) -> Path:
    """Regenerate the reference file (atomically)."""
    import re

    from wormlab.runs import atomic_path

    text = json.dumps(build_references(), indent=1)
    # one line per number list (the curves), keeping the rest readable
    text = re.sub(r"\[\s+([-0-9.e,\s]+?)\s+\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return Path(path)


# --------------------------------------------------------------------------- loading
def _fail(path, where, msg):
    raise ReferenceError(f"{path}: {where}: {msg}")


def _array(path, where, x, n=None):
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        _fail(path, where, f"not a list of numbers: {str(x)[:60]}")
    if a.ndim != 1:
        _fail(path, where, f"must be a 1-D list, got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        _fail(path, where, f"has {a.shape[0]} samples, expected {n} (the length of t_s)")
    if not np.all(np.isfinite(a)):
        bad = int(np.nonzero(~np.isfinite(a))[0][0])
        _fail(path, where, f"non-finite value {a[bad]} at index {bad}")
    return a


def parse_references(doc: dict, path: str | Path = "<references>") -> dict[str, Reference]:
    """Validate a references document (neuron names against :mod:`wormlab.connectome`,
    modalities, shapes, NaN, time grid) and return modality -> :class:`Reference`."""
    from wormlab.connectome import NEURONS

    known = set(NEURONS)
    if not isinstance(doc, dict) or not isinstance(doc.get("modalities"), dict):
        _fail(path, "top level", "needs a 'modalities' object")
    dt = doc.get("frame_dt_ms", FRAME_DT_MS)
    if dt != FRAME_DT_MS:
        _fail(path, "frame_dt_ms", f"{dt}; the transducers run at {FRAME_DT_MS} ms frames")
    out = {}
    for m, md in doc["modalities"].items():
        if m not in MODALITIES:
            _fail(path, f"modality {m!r}", f"unknown; choose from {MODALITIES}")
        for key in ("neurons", "units", "measure", "kind", "protocols", "heldout"):
            if key not in md:
                _fail(path, f"modality {m!r}", f"missing field {key!r}")
        neurons = list(md["neurons"])
        bad = [n for n in neurons if n not in known]
        if bad or not neurons:
            _fail(path, f"modality {m!r} field 'neurons'",
                  f"unknown neuron names {bad} (not in wormlab.connectome.NEURONS)" if bad
                  else "is empty")
        prots = {}
        for pname, p in md["protocols"].items():
            w = f"modality {m!r} protocol {pname!r}"
            t = _array(path, f"{w} field 't_s'", p.get("t_s"))
            if t.shape[0] < 2 or not np.allclose(np.diff(t), dt / 1000.0, atol=1e-6):
                _fail(path, f"{w} field 't_s'", f"must be an evenly spaced grid of "
                      f"{dt / 1000.0} s with >= 2 samples")
            s = _array(path, f"{w} field 'stimulus'", p.get("stimulus"), len(t))
            resp = p.get("response", {})
            extra = sorted(set(resp) - set(neurons))
            if extra:
                _fail(path, f"{w} field 'response'", f"neurons {extra} are not in the "
                      f"modality's neurons {neurons}")
            missing = [n for n in neurons if n not in resp]
            if missing:
                _fail(path, f"{w} field 'response'", f"no curve for {missing}")
            r = {n: _array(path, f"{w} response of {n}", resp[n], len(t)) for n in neurons}
            prots[pname] = Protocol(pname, t, s, r, p.get("description", ""))
        heldout = list(md["heldout"])
        unknown = [h for h in heldout if h not in prots]
        if unknown:
            _fail(path, f"modality {m!r} field 'heldout'", f"unknown protocols {unknown}")
        if len(prots) - len(heldout) < 1 or not heldout:
            _fail(path, f"modality {m!r}", "needs >= 1 training and >= 1 held-out protocol")
        out[m] = Reference(m, neurons, md["units"], md["measure"], md["kind"], prots, heldout,
                           md.get("sources", []), md.get("parameters", {}))
    return out


def load_references(path: str | Path | None = None) -> dict[str, Reference]:
    """modality -> :class:`Reference`, read and validated from ``path`` (default: the shipped
    ``wormlab/sensory/data/references.json``)."""
    path = Path(path) if path is not None else REFERENCES_FILE
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReferenceError(f"{path}: reference file not found") from None
    except json.JSONDecodeError as exc:
        raise ReferenceError(f"{path}: not valid JSON ({exc})") from None
    return parse_references(doc, path)
