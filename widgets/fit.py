"""Fit panel: choose the parameters to recover, the optimiser and the budget; run a short fit
and watch the loss curve and the parameters against their bounds.

Callbacks call :func:`wormlab.fit.recovery_config`, :func:`wormlab.fit.run_fit`,
:func:`wormlab.fit.plot_history` and :func:`wormlab.fit.plot_params_vs_bounds`: the functions the
notebook runs headless and the tests check.
"""

from __future__ import annotations

import tempfile

import ipywidgets as w

from wormlab import fit

CANDIDATES = ("g_ca", "e_leak", "g_kslow", "tau_n", "g_leak", "e_kfast")


def fit_panel(parameters=("g_ca", "e_leak"), optimiser: str = "adam", epochs: int = 10,
              evals: int = 32, factor: float = 1.2) -> w.Widget:
    """Recovery of perturbed c302 parameters on the 6-neuron circuit of
    :func:`wormlab.fit.recovery_config`; each run starts in a fresh temporary folder."""
    params = w.SelectMultiple(options=CANDIDATES, value=tuple(parameters), rows=4,
                              description="fit")
    opt = w.ToggleButtons(options=["adam", "cma", "hybrid"], value=optimiser)
    n_epochs = w.IntSlider(value=epochs, min=1, max=100, description="Adam epochs")
    n_evals = w.IntSlider(value=evals, min=8, max=400, step=8, description="CMA evals")
    fac = w.FloatSlider(value=factor, min=0.5, max=2.0, step=0.05, description="start x")
    run = w.Button(description="fit", button_style="primary")
    status = w.HTML()
    out = w.Output()

    def refresh(*_):
        names = list(params.value) or ["g_ca"]
        with tempfile.TemporaryDirectory() as tmp:
            cfg = fit.recovery_config(names, [fac.value] * len(names), optimiser=opt.value,
                                      max_epochs=n_epochs.value, max_evals=n_evals.value,
                                      cma_popsize=8, out_dir=tmp)
            try:
                res, fitted = fit.run_fit(cfg, show_progress=False)
            except (ValueError, KeyError) as exc:
                status.value = f"<b style='color:#b00'>{exc}</b>"
                return
            obj = fit.Objective(cfg)
        status.value = (f"<b>{opt.value}: loss {res.history[0]['loss']:.3g} → {res.loss:.3g} "
                        f"in {res.evals} evaluations, {res.wall_s:.1f} s</b>")
        out.clear_output(wait=True)
        with out:
            import matplotlib.pyplot as plt

            fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
            fit.plot_history({opt.value: res}, ax=axes[0])
            fit.plot_params_vs_bounds(obj.net, res.params, start=obj.start,
                                      truth=obj.true_params, ax=axes[1])
            plt.show()

    run.on_click(refresh)
    refresh()
    return w.VBox([w.HBox([params, w.VBox([opt, n_epochs, n_evals, fac, run])]), status, out])
