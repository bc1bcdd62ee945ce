"""Training as in Mestre et al. (2021): Adam, RMSE loss, mini-batches of 32 sequences, a fixed
number of epochs, and the weights of the best validation epoch restored at the end; early
stopping (patience) is an option. Repeated runs differ in the weight-initialisation seed only.

RMSE is reported in the data's own output unit (``SequenceSet.output_unit``: V for c302/NEURON
files, mV for this package's generator) and, as ``*_nrmse``, on outputs z-scored with the
training-set statistics (the loss that is optimised).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from wormlab.io import config_from_dict, config_to_dict
from wormlab.rom._format import SequenceSet
from wormlab.rom._models import CELLS, RomModel
from wormlab.runs import atomic_path, progress, seed_everything


@dataclass(frozen=True)
class ModelConfig:
    kind: str = "gru"  # rnn | lstm | gru
    hidden: int = 8

    def __post_init__(self):
        if self.kind not in CELLS:
            raise ValueError(f"unknown model {self.kind!r}; available: {sorted(CELLS)}")
        if self.hidden < 1:
            raise ValueError(f"hidden units must be >= 1, got {self.hidden}")


NORMALISE = ("zscore", "outputs", "none")


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser settings (paper: Adam, RMSE, batch 32, ~1000 epochs, best validation kept)."""

    epochs: int = 1000
    lr: float = 1e-2
    batch_size: int = 32
    patience: int | None = None  # early stopping after this many epochs without improvement
    seed: int = 0
    clip_grad: float | None = 1.0
    normalise: str = "zscore"  # zscore (inputs and outputs) | outputs (inputs raw) | none

    def __post_init__(self):
        if self.normalise not in NORMALISE:
            raise ValueError(f"normalise must be one of {NORMALISE}, got {self.normalise!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs and batch_size must be >= 1 and lr > 0")


@dataclass(frozen=True)
class SplitConfig:
    """Seeded random split by fractions, or explicit lists of sequence names."""

    seed: int = 0
    fractions: tuple[float, float, float] = (0.5, 0.25, 0.25)
    train: tuple[str, ...] | None = None
    val: tuple[str, ...] | None = None
    test: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RomConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    runs: int = 1

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RomConfig:
        return config_from_dict(cls, d)


def split_indices(data: SequenceSet, cfg: SplitConfig) -> dict[str, list[int]]:
    """Indices of the train / val / test sequences.

    Explicit name lists win; otherwise a seeded permutation split by ``fractions`` (each split
    gets at least one sequence). Raises ``ValueError`` on unknown names, overlaps or too few
    sequences.
    """
    names = list(data.names)
    if cfg.train is not None or cfg.val is not None or cfg.test is not None:
        if cfg.train is None or cfg.val is None or cfg.test is None:
            raise ValueError("explicit splits need all three lists: train, val and test")
        out = {}
        for key in ("train", "val", "test"):
            lst = [n[:-4] if n.endswith((".dat", ".txt")) else n for n in getattr(cfg, key)]
            unknown = [n for n in lst if n not in names]
            if unknown:
                raise ValueError(f"{key} split names unknown sequences {unknown[:5]}")
            if not lst:
                raise ValueError(f"{key} split is empty")
            out[key] = [names.index(n) for n in lst]
        seen = out["train"] + out["val"] + out["test"]
        if len(set(seen)) != len(seen):
            raise ValueError("the explicit train/val/test lists overlap")
        return out
    n = len(names)
    if n < 3:
        raise ValueError(f"need at least 3 sequences for a train/val/test split, got {n}")
    f = np.asarray(cfg.fractions, dtype=float)
    if f.shape != (3,) or np.any(f <= 0):
        raise ValueError(f"fractions must be three positive numbers, got {cfg.fractions}")
    f = f / f.sum()
    perm = np.random.default_rng(cfg.seed).permutation(n)
    n_val = max(1, int(round(f[1] * n)))
    n_test = max(1, int(round(f[2] * n)))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(f"{n} sequences are too few for fractions {cfg.fractions}")
    return {"train": sorted(perm[:n_train].tolist()),
            "val": sorted(perm[n_train : n_train + n_val].tolist()),
            "test": sorted(perm[n_train + n_val :].tolist())}


def _tensors(data: SequenceSet, idx):
    x = torch.as_tensor(data.inputs[:, idx], dtype=torch.float32)
    y = torch.as_tensor(data.outputs[:, idx], dtype=torch.float32)
    return x, y


def rmse(model: RomModel, x: torch.Tensor, y: torch.Tensor, y_std: torch.Tensor | None = None
         ) -> tuple[float, float]:
    """(RMSE in data units, RMSE on outputs divided by ``y_std`` (default the model's, i.e.
    the training-set sd)) over all steps, sequences and outputs."""
    with torch.no_grad():
        pred = model(x)
        err = pred - y
        sd = model.y_std if y_std is None else y_std
        return (float(err.pow(2).mean().sqrt()), float((err / sd).pow(2).mean().sqrt()))


@dataclass
class TrainResult:
    model: RomModel
    history: dict[str, list[float]]
    best_epoch: int
    metrics: dict[str, float]
    split: dict[str, list[str]]
    seconds: float

    def summary(self) -> dict:
        return dict(self.metrics, best_epoch=self.best_epoch, epochs_run=len(self.history["train"]),
                    seconds=self.seconds)


class _Packed(torch.nn.Module):
    """Several independent ROMs of one cell kind packed block-diagonally into one layer.

    On one CPU thread a 1,000-step recurrence costs per-op overhead, not FLOPs, so training
    ``n`` models side by side costs about as much as one. Entries that would couple two models
    are zero and their gradients are masked, so Adam never moves them; gradient clipping is done
    per model. The loss is the sum of the per-model RMSEs, so every model gets exactly the
    gradient it would get alone (up to float summation order).
    """

    def __init__(self, kind: str, n_in: int, hiddens: list[int], n_out: int, seeds: list[int]):
        super().__init__()
        from wormlab.rom._models import CELLS

        self.kind, self.hiddens, self.n_out = kind, list(hiddens), n_out
        self.offsets = np.cumsum([0] + list(hiddens)).tolist()
        ht, g = self.offsets[-1], {"rnn": 1, "gru": 3, "lstm": 4}[kind]
        self.cell = CELLS[kind](n_in, ht)
        self.readout = torch.nn.Linear(ht, n_out * len(hiddens))
        block = torch.empty(ht, dtype=torch.long)
        for i, (a, b) in enumerate(zip(self.offsets[:-1], self.offsets[1:])):
            block[a:b] = i
        gate_block = block.repeat(g)  # rows of the stacked gate matrices
        owners = {
            "cell.weight_ih_l0": gate_block[:, None].expand(g * ht, n_in).clone(),
            "cell.weight_hh_l0": torch.where(gate_block[:, None] == block[None, :],
                                             gate_block[:, None], -1),
            "cell.bias_ih_l0": gate_block.clone(), "cell.bias_hh_l0": gate_block.clone(),
            "readout.weight": torch.where(
                torch.arange(len(hiddens)).repeat_interleave(n_out)[:, None] == block[None, :],
                block[None, :].expand(n_out * len(hiddens), ht), -1),
            "readout.bias": torch.arange(len(hiddens)).repeat_interleave(n_out),
        }
        self.owners = owners
        with torch.no_grad():
            for p in self.parameters():
                p.zero_()
            for i, (h, s) in enumerate(zip(hiddens, seeds)):
                torch.manual_seed(s)
                single = RomModel(kind, n_in, h, n_out)
                self._put(i, single)

    def _rows(self, i: int) -> torch.Tensor:
        a, b = self.offsets[i], self.offsets[i + 1]
        ht, g = self.offsets[-1], {"rnn": 1, "gru": 3, "lstm": 4}[self.kind]
        return torch.cat([torch.arange(k * ht + a, k * ht + b) for k in range(g)])

    def _put(self, i: int, m: RomModel) -> None:
        rows, a, b = self._rows(i), self.offsets[i], self.offsets[i + 1]
        c, k = self.cell, self.n_out
        c.weight_ih_l0[rows] = m.cell.weight_ih_l0
        c.weight_hh_l0[rows[:, None], torch.arange(a, b)[None, :]] = m.cell.weight_hh_l0
        c.bias_ih_l0[rows] = m.cell.bias_ih_l0
        c.bias_hh_l0[rows] = m.cell.bias_hh_l0
        self.readout.weight[i * k : (i + 1) * k, a:b] = m.readout.weight
        self.readout.bias[i * k : (i + 1) * k] = m.readout.bias

    @torch.no_grad()
    def take(self, i: int, state: dict, n_in: int) -> RomModel:
        """Model ``i`` as a standalone :class:`RomModel` from a packed ``state`` dict."""
        rows, a, b = self._rows(i), self.offsets[i], self.offsets[i + 1]
        k = self.n_out
        m = RomModel(self.kind, n_in, self.hiddens[i], k)
        m.cell.weight_ih_l0.copy_(state["cell.weight_ih_l0"][rows])
        m.cell.weight_hh_l0.copy_(state["cell.weight_hh_l0"][rows][:, a:b])
        m.cell.bias_ih_l0.copy_(state["cell.bias_ih_l0"][rows])
        m.cell.bias_hh_l0.copy_(state["cell.bias_hh_l0"][rows])
        m.readout.weight.copy_(state["readout.weight"][i * k : (i + 1) * k, a:b])
        m.readout.bias.copy_(state["readout.bias"][i * k : (i + 1) * k])
        return m

    def forward(self, xn):  # (T, B, M) -> (T, B, n_models, K)
        hs, _ = self.cell(xn)
        y = self.readout(hs)
        return y.reshape(*y.shape[:2], len(self.hiddens), self.n_out)

    def mask_and_clip(self, clip: float | None) -> None:
        n = len(self.hiddens)
        sq = torch.zeros(n + 1)
        named = dict(self.named_parameters())
        for name, own in self.owners.items():
            gr = named[name].grad
            if gr is None:
                continue
            gr[own < 0] = 0.0
            if clip:
                sq.index_add_(0, (own % (n + 1)).flatten(), gr.pow(2).flatten())
        if clip:
            scale = (clip / (sq[:n].sqrt() + 1e-6)).clamp(max=1.0)
            scale = torch.cat([scale, torch.ones(1)])
            for name, own in self.owners.items():
                gr = named[name].grad
                if gr is not None:
                    gr.mul_(scale[own % (n + 1)])


MAX_PACKED_HIDDEN = 128  # beyond this the dense packed layer costs more than it saves (1 core)


def train_many(data: SequenceSet, kind: str, hiddens: list[int], seeds: list[int],
               tcfg: TrainConfig, split: dict[str, list[int]], *, show_progress: bool = True,
               meta: dict | None = None, max_packed: int = MAX_PACKED_HIDDEN,
               resume_dir: str | Path | None = None, save_every_s: float = 60.0
               ) -> list[TrainResult]:
    """Train several models of one cell ``kind`` (sizes ``hiddens``, init ``seeds``).

    Models are packed side by side into layers of at most ``max_packed`` hidden units (see
    :class:`_Packed`). Each model keeps the weights of its own best validation epoch; early
    stopping (if ``tcfg.patience``) stops a pack when every model in it has been stale that long.
    Results are in the order of ``hiddens``.

    ``resume_dir``: every ``save_every_s`` seconds the state of a pack after its last finished
    epoch (weights, Adam state, best-validation weights, histories, shuffling generator) is
    written atomically to ``resume_dir/<kind>_h.._s.._<fingerprint>.resume.pt``; a rerun with
    the same data, split and settings continues from there and gives the same result as an
    uninterrupted run. The file is removed when the pack finishes.
    """
    if len(hiddens) != len(seeds) or not hiddens:
        raise ValueError("give one seed per hidden size (at least one model)")
    packs, cur = [], []
    for i in sorted(range(len(hiddens)), key=lambda i: hiddens[i]):
        if cur and sum(hiddens[j] for j in cur) + hiddens[i] > max_packed:
            packs.append(cur)
            cur = []
        cur.append(i)
    packs.append(cur)
    out: list[TrainResult | None] = [None] * len(hiddens)
    for pk in packs:
        res = _train_pack(data, kind, [hiddens[i] for i in pk], [seeds[i] for i in pk], tcfg,
                          split, show_progress=show_progress, meta=meta, resume_dir=resume_dir,
                          save_every_s=save_every_s)
        for i, r in zip(pk, res):
            out[i] = r
    return out


def _resume_file(resume_dir, data: SequenceSet, kind: str, hiddens, seeds, tcfg: TrainConfig,
                 split) -> tuple[Path, str]:
    """The resume file of one pack and its fingerprint: everything that decides the result
    (data values and columns, split, cell, sizes, seeds, optimiser settings)."""
    h = hashlib.sha256()
    for arr in (data.inputs, data.outputs):
        h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    h.update(json.dumps({"kind": kind, "hiddens": list(hiddens), "seeds": list(seeds),
                         "train": asdict(tcfg), "names": list(data.names),
                         "inputs": list(data.input_names), "outputs": list(data.output_names),
                         "split": {k: list(v) for k, v in split.items()}},
                        sort_keys=True).encode())
    fp = h.hexdigest()
    name = (f"{kind}_h{'-'.join(map(str, hiddens))}_s{'-'.join(map(str, seeds))}_{fp[:12]}"
            ".resume.pt")
    return Path(resume_dir) / name, fp


def _train_pack(data: SequenceSet, kind: str, hiddens: list[int], seeds: list[int],
                tcfg: TrainConfig, split: dict[str, list[int]], *, show_progress: bool = True,
                meta: dict | None = None, resume_dir: str | Path | None = None,
                save_every_s: float = 60.0) -> list[TrainResult]:
    t0 = time.perf_counter()
    n_in, n_out, n = len(data.input_names), len(data.output_names), len(hiddens)
    seed_everything(seeds[0])
    packed = _Packed(kind, n_in, hiddens, n_out, seeds)
    xs = {k: _tensors(data, v) for k, v in split.items()}
    norm = RomModel(kind, n_in, 1, n_out)
    norm.set_normalisation(*xs["train"])
    train_sd = norm.y_std.clone()  # for the normalised metrics, whatever the normalisation
    if tcfg.normalise in ("outputs", "none"):
        norm.x_mean.zero_()
        norm.x_std.fill_(1.0)
    if tcfg.normalise == "none":
        norm.y_mean.zero_()
        norm.y_std.fill_(1.0)

    def _n(x, y):
        return (x - norm.x_mean) / norm.x_std, (y - norm.y_mean) / norm.y_std

    xtrn, ytrn = _n(*xs["train"])
    xvn, yvn = _n(*xs["val"])
    opt = torch.optim.Adam(packed.parameters(), lr=tcfg.lr)
    gen = torch.Generator().manual_seed(seeds[0])
    n_tr = xtrn.shape[1]
    best = [math.inf] * n
    best_epoch = [-1] * n
    best_state: list[dict | None] = [None] * n
    stale = [0] * n
    hist = [{"train": [], "val": []} for _ in range(n)]
    start, done_s = 0, 0.0
    rpath = fp = None
    if resume_dir is not None:
        rpath, fp = _resume_file(resume_dir, data, kind, hiddens, seeds, tcfg, split)
        st = _load_pack_state(rpath, fp)
        if st is not None:
            info = json.loads(st["info"])
            packed.load_state_dict(st["packed"])
            opt.load_state_dict(st["opt"])
            gen.set_state(st["gen"])
            best, best_epoch, stale, hist = (info["best"], info["best_epoch"], info["stale"],
                                             info["hist"])
            best_state = [st["best_state"][i] if info["has_best"][i] else None
                          for i in range(n)]
            start, done_s = info["epoch"] + 1, info["seconds"]
            t0 -= done_s  # the reported seconds include the interrupted run's
    last_save = time.perf_counter()
    kw = {} if show_progress else {"disable": True}
    label = f"{kind.upper()}-{'/'.join(str(h) for h in hiddens)}"
    bar = progress(range(start, tcfg.epochs), desc=label, leave=False, initial=start,
                   total=tcfg.epochs, **kw)
    for epoch in bar:
        packed.train()
        perm = torch.randperm(n_tr, generator=gen)
        tot = torch.zeros(n)
        for s in range(0, n_tr, tcfg.batch_size):
            b = perm[s : s + tcfg.batch_size]
            opt.zero_grad()
            err = packed(xtrn[:, b]) - ytrn[:, b, None, :]
            per = err.pow(2).mean(dim=(0, 1, 3)).sqrt()  # (n_models,)
            per.sum().backward()
            packed.mask_and_clip(tcfg.clip_grad)
            opt.step()
            tot += per.detach() * len(b)
        packed.eval()
        with torch.no_grad():
            vl = (packed(xvn) - yvn[:, :, None, :]).pow(2).mean(dim=(0, 1, 3)).sqrt()
        state = None
        for i in range(n):
            hist[i]["train"].append(float(tot[i]) / n_tr)
            hist[i]["val"].append(float(vl[i]))
            if float(vl[i]) < best[i]:
                best[i], best_epoch[i], stale[i] = float(vl[i]), epoch, 0
                state = state or copy.deepcopy(packed.state_dict())
                best_state[i] = state
            else:
                stale[i] += 1
        if tcfg.patience is not None and min(stale) >= tcfg.patience:
            break
        if hasattr(bar, "set_postfix") and epoch % 10 == 0:
            bar.set_postfix(val=f"{float(vl.min()):.3g}")
        if rpath is not None and time.perf_counter() - last_save >= save_every_s:
            _save_pack_state(rpath, fp, epoch, packed, opt, gen, best, best_epoch, stale, hist,
                             best_state, time.perf_counter() - t0)
            last_save = time.perf_counter()
    seconds = time.perf_counter() - t0
    names = {k: [data.names[i] for i in v] for k, v in split.items()}
    out = []
    for i in range(n):
        m = packed.take(i, best_state[i] or packed.state_dict(), n_in)
        for buf in ("x_mean", "x_std", "y_mean", "y_std"):
            getattr(m, buf).copy_(getattr(norm, buf))
        m.meta = dict(meta or {}, input_names=list(data.input_names),
                      output_names=list(data.output_names), dt_s=data.dt_s,
                      input_unit=data.input_unit, output_unit=data.output_unit, seed=seeds[i])
        m.eval()
        metrics = {}
        for k, (x, y) in xs.items():
            metrics[f"{k}_rmse"], metrics[f"{k}_nrmse"] = rmse(m, x, y, train_sd)
        out.append(TrainResult(m, hist[i], best_epoch[i], metrics, names, seconds))
    if rpath is not None and rpath.exists():
        rpath.unlink()  # finished: the caller saves the models
    return out


def _save_pack_state(path: Path, fp: str, epoch: int, packed, opt, gen, best, best_epoch, stale,
                     hist, best_state, seconds: float) -> None:
    """The pack's state after ``epoch`` (plain tensors and a JSON string: loads weights-only)."""
    info = json.dumps({"epoch": epoch, "best": best, "best_epoch": best_epoch, "stale": stale,
                       "hist": hist, "has_best": [b is not None for b in best_state],
                       "seconds": seconds})
    state = {"fingerprint": fp, "info": info, "packed": packed.state_dict(),
             "opt": opt.state_dict(), "gen": gen.get_state(),
             "best_state": [b if b is not None else {} for b in best_state]}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_pack_state(path: Path, fp: str) -> dict | None:
    """The saved pack state, or ``None`` when absent or written for other settings (then the
    pack trains afresh and overwrites it); an unreadable file raises ``CheckpointError``."""
    from wormlab.io import load_torch_weights

    if not path.exists():
        return None
    state = load_torch_weights(path, "ROM training state")
    if not isinstance(state, dict) or state.get("fingerprint") != fp:
        return None
    return state


def train_model(data: SequenceSet, cfg: RomConfig, *, run: int = 0,
                split: dict[str, list[int]] | None = None, show_progress: bool = True
                ) -> TrainResult:
    """Train one model on ``data``; returns the best-validation model and its RMSEs.

    Args:
        run: repetition index; the initialisation seed is ``cfg.train.seed + run``.
        split: precomputed indices (default :func:`split_indices`).
    """
    split = split or split_indices(data, cfg.split)
    return train_many(data, cfg.model.kind, [cfg.model.hidden], [cfg.train.seed + run],
                      cfg.train, split, show_progress=show_progress,
                      meta={"config": cfg.to_dict(), "run": run})[0]


def repeated_runs(data: SequenceSet, cfg: RomConfig, *, show_progress: bool = True,
                  keep_models: bool = False) -> dict:
    """``cfg.runs`` trainings on the same split; mean and sd of every metric.

    Returns a JSON-able dict: ``train_rmse``, ``val_rmse``, ``test_rmse`` (means), ``*_sd``,
    the normalised variants, per-run values under ``runs`` and the split names.
    """
    if cfg.runs < 1:
        raise ValueError("runs must be >= 1")
    split = split_indices(data, cfg.split)
    results = train_many(data, cfg.model.kind, [cfg.model.hidden] * cfg.runs,
                         [cfg.train.seed + r for r in range(cfg.runs)], cfg.train, split,
                         show_progress=show_progress, meta={"config": cfg.to_dict()})
    keys = list(results[0].metrics)
    out: dict = {}
    for k in keys:
        vals = np.array([r.metrics[k] for r in results])
        out[k] = float(vals.mean())
        out[f"{k}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
    out["model"] = f"{cfg.model.kind.upper()}-{cfg.model.hidden}"
    out["runs"] = [r.summary() for r in results]
    out["split"] = results[0].split
    out["output_unit"] = data.output_unit
    if keep_models:
        out["_models"] = [r.model for r in results]
    return out
