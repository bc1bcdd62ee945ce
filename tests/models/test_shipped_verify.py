"""The shipped models of the real recordings reproduce their recorded metrics (``wormlab models
verify``): the posture 4 x 260 LSTM and its SAE, notebook 06's behaviour tables (spot-check rows
retrained). Skipped where the shared recordings are absent; the models' own files are checked
either way."""

import pytest

from wormlab import models
from wormlab.paths import shared_data_dir

NAMES = ("posture_lstm_4x260", "posture_sae_4x260", "posture_strains_ucr", "behaviour_tables_fwd_rev")
LOCAL = ("body_surrogate_crawl", "crawl_params")  # held-out data ship with them


@pytest.mark.parametrize("name", NAMES)
def test_shipped_model_verifies(name):
    res = models.verify(name)
    if shared_data_dir() is None:
        assert res.get("skipped"), res
        pytest.skip("shared recordings absent: only the file checks ran")
    assert res["ok"], res
    checked = [m for m in res["metrics"].values() if m.get("tolerance") is not None]
    assert checked and all(m["ok"] for m in checked)


@pytest.mark.parametrize("name", LOCAL)
def test_shipped_worm_models_verify_without_shared_data(name):
    """The crawl-tuned surrogate (both held-out sets ship with the models) and the fitted crawl
    parameters (verify reruns 4 s crawls)."""
    res = models.verify(name)
    assert res["ok"], res
    assert all(m["ok"] for m in res["metrics"].values() if m.get("tolerance") is not None)
