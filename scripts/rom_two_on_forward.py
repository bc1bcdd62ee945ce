"""Two-scenario ROMs (paper protocol) on new forward-set test stimuli, 4 shared outputs.

The `two` table has only 3 forward test sequences; this scores its checkpoints on the forward
set's test sequences that the two-scenario set does not contain, next to the forward-only GRUs
of `arch` and the constant mean. Run from the repository root after both tables exist:
    python scripts/rom_two_on_forward.py
"""

import numpy as np
import torch

from wormlab import rom
from wormlab.rom._train import SplitConfig, split_indices

R = "data/cache/rom/results_paper"
fwd = rom.load("data/cache/rom/synthetic_c302_C1_forward/dt0.5ms")
two = rom.load("data/cache/rom/synthetic_c302_C1_two/dt0.5ms")
sp = split_indices(fwd, SplitConfig(seed=0))
# drop forward test stimuli that also occur in the two-scenario set (same recipe and seed)
test = [a for a in sp["test"] if not any(np.allclose(fwd.inputs[:, a], two.inputs[:, b, :4])
                                         for b in range(len(two)))]
print(f"{len(test)} of {len(sp['test'])} forward test sequences are new to the two-scenario set")
y = torch.as_tensor(fwd.outputs[:, test], dtype=torch.float32)
x_fwd = torch.as_tensor(fwd.inputs[:, test], dtype=torch.float32)
x_two = torch.zeros(fwd.n_steps, len(test), len(two.input_names))  # IL2 inputs stay at zero
for j, n in enumerate(fwd.input_names):
    x_two[:, :, two.input_names.index(n)] = x_fwd[:, :, j]
cols = [two.output_names.index(n) for n in fwd.output_names]


def show(name: str, folder: str, label: str, x, outputs=slice(None)) -> None:
    v = []
    for r in range(10):
        m = rom.load_model(f"{R}/{folder}/{label}_run{r}.safetensors")
        with torch.no_grad():
            v.append(float((m(x)[:, :, outputs] - y).pow(2).mean().sqrt()))
    print(f"{name} {label}: {np.mean(v):.2f} ± {np.std(v, ddof=1):.2f} mV")


for label in ("gru32", "gru16", "lstm32"):
    show("two-scenario", "two_models", label, x_two, cols)
for label in ("gru32", "gru8"):
    show("forward-only", "arch_models", label, x_fwd)
tr = fwd.outputs[:, sp["train"]]
base = np.sqrt(((fwd.outputs[:, test] - tr.mean(axis=(0, 1))) ** 2).mean())
print(f"forward constant training mean: {base:.2f} mV")
