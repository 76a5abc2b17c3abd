"""DMEL's fast CPU path (closed-form window gradient, chunked FFTs, banded mel product) equals the
reference path (autograd through torch.stft and a dense mel product), values and lambda gradient."""
import pytest
import torch

from models import functional as F
from models.frontends import DMEL


def reference_dmel(layer: DMEL, x: torch.Tensor) -> torch.Tensor:
    """The same DMEL by autograd: torch.stft of the mean-removed signal, |.|^2, dense fb^T S, log."""
    spec = layer.spectrogram
    lambd = spec.effective_lambd()
    win_length, n_fft = spec.geometry()
    window = F.gaussian_window(lambd, win_length)
    left = (n_fft - win_length) // 2
    window = torch.nn.functional.pad(window, (left, n_fft - win_length - left))
    x = x - x.mean(-1, keepdim=True)
    z = torch.stft(x, n_fft, spec.hop_length, window=window, center=True, pad_mode="constant", return_complex=True)
    fb = layer.filterbank(n_fft, x.device, x.dtype)
    return torch.log(torch.matmul(fb.T, z.abs().square()) + F.LOG_EPS)


@pytest.mark.parametrize("window_ms,chunk_size", [(10.0, None), (10.0, 3), (35.0, 2), (300.0, None)])
def test_fast_path_equals_reference(window_ms, chunk_size):
    torch.manual_seed(0)
    x = torch.randn(5, 4000, dtype=torch.float64)
    layer = DMEL(sample_rate=8000, n_mels=40, init_lambd=F.ms_to_lambd(window_ms, 8000), n_points=4000,
                 hop_length=80, window_mode="optimized", chunk_size=chunk_size).double()
    weights = torch.randn(5, 40, 4000 // 80 + 1, dtype=torch.float64)
    fast = layer(x)
    (fast * weights).sum().backward()
    grad_fast = layer.lambd.grad.clone()
    layer.lambd.grad = None
    ref = reference_dmel(layer, x)
    (ref * weights).sum().backward()
    torch.testing.assert_close(fast, ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(grad_fast, layer.lambd.grad, rtol=1e-8, atol=1e-12)


def test_banded_product_equals_dense_with_empty_filters():
    """n_fft 32 with 64 mels leaves 34 filters empty (whole empty blocks included)."""
    fb, n_empty = F.mel_filterbank(32, 64, 8000)
    assert n_empty > F.FILTER_BLOCK
    spec = torch.rand(3, 17, 20, dtype=torch.float64, requires_grad=True)
    got = F.apply_filterbank(spec, fb)
    want = torch.matmul(fb.double().T, spec)
    torch.testing.assert_close(got, want)
    g = torch.randn_like(got)
    (grad_got,) = torch.autograd.grad(got, spec, g)
    (grad_want,) = torch.autograd.grad(want, spec, g)
    torch.testing.assert_close(grad_got, grad_want)
