"""Two-scenario ROMs (paper protocol) on new forward-set test stimuli, 4 shared outputs.

The `two` table has only 3 forward test sequences; this scores its checkpoints on the forward
set's test sequences that the two-scenario set does not contain, next to the forward-only GRUs
of `arch` and the constant mean. Run from the repository root after both tables exist:
    python scripts/rom_two_on_forward.py
"""
import numpy as np, torch
from wormlab import rom
from wormlab.rom._train import SplitConfig, split_indices
fwd = rom.load("data/cache/rom/synthetic_c302_C1_forward/dt0.5ms")
two = rom.load("data/cache/rom/synthetic_c302_C1_two/dt0.5ms")
sp = split_indices(fwd, SplitConfig(seed=0))
# drop forward test stimuli that also occur in the two-scenario set (same recipe and seed)
test = [a for a in sp["test"] if not any(np.allclose(fwd.inputs[:, a], two.inputs[:, b, :4])
                                         for b in range(len(two)))]
print(f"{len(test)} of {len(sp['test'])} forward test sequences are new to the two-scenario set")
x = np.zeros((fwd.n_steps, len(test), len(two.input_names)), np.float32)
for j, n in enumerate(fwd.input_names):
    x[:, :, two.input_names.index(n)] = fwd.inputs[:, test, j]
cols = [two.output_names.index(n) for n in fwd.output_names]
y = torch.as_tensor(fwd.outputs[:, test], dtype=torch.float32)
def show(name, v): print(f"{name}: {np.mean(v):.2f} ± {np.std(v, ddof=1):.2f} mV")
for label in ("gru32", "gru16", "lstm32"):
    show(f"two {label}", [float((rom.load_model(f"data/cache/rom/results_paper/two_models/{label}_run{r}.safetensors")
               .predict(x)[:, :, cols] - y).pow(2).mean().sqrt()) for r in range(10)])
for label in ("gru32", "gru8"):
    show(f"forward-only {label}", [float((rom.load_model(f"data/cache/rom/results_paper/arch_models/{label}_run{r}.safetensors")
               .predict(fwd.inputs[:, test]) - y).pow(2).mean().sqrt()) for r in range(10)])
tr = fwd.outputs[:, sp["train"]]
print(f"forward constant training mean: {np.sqrt(((fwd.outputs[:, test] - tr.mean(axis=(0,1)))**2).mean()):.2f} mV")
