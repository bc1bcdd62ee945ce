"""The evaluation figure: one panel per protocol, reference and circuit per neuron."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from wormlab import sensory  # noqa: E402
from wormlab.sensory._plots import plot_evaluation  # noqa: E402


def test_plot_evaluation_draws_reference_and_circuit_per_neuron():
    ref = sensory.load_references()["nacl"]
    names = list(ref.protocols)
    T = len(ref.protocols[names[0]].t_s)
    K = len(ref.neurons)
    dff = np.zeros((T, len(names), K))
    dff[:, 1, 0] = 0.5  # a recognisable circuit trace in protocol 1, neuron 0
    ev = {"sim": {"t_s": ref.protocols[names[0]].t_s.tolist(), "protocols": names,
                  "dff": dff.tolist()},
          "protocols": {p: {"split": "heldout" if p in ref.heldout else "train",
                            "max_abs_peak_error_pct": 1.0} for p in names}}
    axes = plot_evaluation(ev, ref, max_protocols=len(names))
    assert sum(ax.get_visible() for ax in axes) == len(names)
    ax1 = axes[1]
    assert len(ax1.lines) == 2 * K
    np.testing.assert_allclose(ax1.lines[1].get_ydata(), 0.5)       # circuit, neuron 0
    np.testing.assert_allclose(ax1.lines[0].get_ydata(),
                               ref.protocols[names[1]].response[ref.neurons[0]])
    held = [ax.get_title() for ax in axes[:len(names)] if "heldout" in ax.get_title()]
    assert len(held) == len(ref.heldout)
    assert "not pixel-digitised" in axes[0].figure._suptitle.get_text()
