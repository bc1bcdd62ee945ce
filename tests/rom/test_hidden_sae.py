"""Optional SAE (wormlab.sae) on a ROM's hidden states."""

import numpy as np
import pytest
import torch

from wormlab import rom


def test_sae_on_gru_hidden_states_reconstructs_and_reports_correlations():
    torch.manual_seed(0)
    d = rom.smoke_dataset().resample(4)  # 126 steps of 4 ms: small and fast
    m = rom.RomModel("gru", 4, 6, 4)
    m.set_normalisation(torch.as_tensor(d.inputs, dtype=torch.float32),
                        torch.as_tensor(d.outputs, dtype=torch.float32))
    r = rom.fit_hidden_sae(m, d.subset(list(range(8))), d.subset([8, 9, 10, 11]),
                           expansion=2.0, n_steps=300)
    assert r.activations.shape == (d.n_steps, 4, 12)
    assert r.unit_output_corr.shape == (12, 4) and r.unit_input_corr.shape == (12, 4)
    assert np.all(np.abs(r.unit_output_corr) <= 1 + 1e-6)
    assert r.metrics["variance_explained"] > 0.5  # it learnt to reconstruct held-out frames
    assert r.metrics["l0"] < 12  # and is sparser than dense
    with pytest.raises(ValueError, match="the model expects"):
        rom.fit_hidden_sae(rom.RomModel("gru", 3, 6, 4), d, d)


def test_panel_has_sae_tab():
    import sys

    from wormlab.paths import project_root

    sys.path.insert(0, str(project_root()))
    from widgets.rom import rom_panel

    torch.manual_seed(0)
    d = rom.smoke_dataset().resample(10)
    m = rom.RomModel("gru", 4, 4, 4)
    m.meta = {"input_names": d.input_names, "output_names": d.output_names}
    hs = rom.fit_hidden_sae(m, d.subset([0, 1, 2, 3]), d.subset([4, 5]), n_steps=50)
    panel = rom_panel(m, d.subset([4, 5]), hidden_sae=hs)
    assert [panel.get_title(i) for i in range(len(panel.children))] == [
        "currents → ROM vs simulation", "hidden units", "SAE on hidden states"]
