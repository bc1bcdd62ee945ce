"""RNN / LSTM / GRU models: shapes, gradients, checkpoints."""

import pytest
import torch

from wormlab import rom


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_forward_backward_every_parameter_gets_gradient(kind):
    torch.manual_seed(0)
    m = rom.RomModel(kind, 4, 5, 3)
    x = torch.randn(20, 2, 4)
    y, h = m(x, return_hidden=True)
    assert y.shape == (20, 2, 3) and h.shape == (20, 2, 5)
    y.pow(2).mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown model 'transformer'"):
        rom.RomModel("transformer", 1, 1, 1)
    with pytest.raises(ValueError, match="sizes must be"):
        rom.RomModel("gru", 1, 0, 1)
    with pytest.raises(ValueError, match=r"expected inputs \(T, B, 4\)"):
        rom.RomModel("gru", 4, 2, 1)(torch.zeros(3, 1, 2))


def test_safetensors_round_trip(tmp_path):
    torch.manual_seed(1)
    m = rom.RomModel("lstm", 2, 6, 3)
    m.set_normalisation(torch.randn(10, 3, 2) * 2 + 1, torch.randn(10, 3, 3) - 50)
    m.meta = {"output_names": ["a", "b", "c"]}
    p = rom.save_model(m, tmp_path / "m.safetensors")
    m2 = rom.load_model(p)
    x = torch.randn(7, 2, 2)
    torch.testing.assert_close(m2.predict(x), m.predict(x), rtol=0, atol=0)
    assert m2.meta == m.meta and m2.describe() == "LSTM-6"
    (tmp_path / "bad.safetensors").write_bytes(b"junk")
    with pytest.raises(Exception):  # noqa: B017 - safetensors raises its own error type
        rom.load_model(tmp_path / "bad.safetensors")
