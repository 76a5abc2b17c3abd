"""Varying-window (DSTFT-style) front-end against a numpy Gaussian-window STFT, per frame and per bin;
finite differences for the window gradient; which parameters learn; guards."""
import librosa
import numpy as np
import pytest
import torch

from models import frontend_functional as FF
from models.classifiers import build_model
from models.varying_stft import VARIATIONS, VaryingSTFTMel
from training.config import resolve_config

SR, HOP, N_FFT = 8000, 50, 64
N_FREQS = N_FFT // 2 + 1


def signal(batch=2, n_points=600, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((batch, n_points)))


def numpy_gaussian(lambd, n_fft):
    w = np.exp(-0.5 * ((np.arange(n_fft) - n_fft / 2) / lambd) ** 2)
    return w / np.sqrt(np.sum(w**2))


def numpy_power(x, lambd, n_fft, hop):
    """One rfft per (frame, bin) window: ``lambd[f, t]`` broadcast from ``(1 or F, 1 or T)``."""
    xp = np.pad(x, n_fft // 2)
    n_frames = len(x) // hop + 1
    lambd = np.broadcast_to(lambd, (n_fft // 2 + 1, n_frames))
    out = np.empty(lambd.shape)
    for t in range(n_frames):
        frame = xp[t * hop:t * hop + n_fft]
        for f in range(n_fft // 2 + 1):
            out[f, t] = np.abs(np.fft.rfft(frame * numpy_gaussian(lambd[f, t], n_fft))[f]) ** 2
    return out


def widths(shape, seed=1):
    return torch.from_numpy(np.random.default_rng(seed).uniform(2.0, N_FFT / 6, shape))


@pytest.mark.parametrize("shape", [(1, 1), (1, 600 // HOP + 1), (N_FREQS, 1), (N_FREQS, 600 // HOP + 1)],
                         ids=["none", "time", "frequency", "time_frequency"])
def test_power_matches_numpy_per_frame_and_bin(shape):
    x, lambd = signal(), widths(shape)
    got = FF.varying_power_stft(x, lambd, N_FFT, HOP).numpy()
    want = np.stack([numpy_power(xi, lambd.numpy(), N_FFT, HOP) for xi in x.numpy()])
    assert got.shape == want.shape == (2, N_FREQS, 600 // HOP + 1)
    # float64; the per-bin paths use models.functional.dft_kernels, rounded to float32 (measured max
    # |error| / max |want|: 2.5e-8; the FFT paths: 3e-16)
    tol = 1e-9 if shape[0] == 1 else 1e-6
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * want.max())


def test_constant_width_module_matches_numpy_stft_and_librosa_mel():
    layer = VaryingSTFTMel(SR, 600, init_lambd=5.0, hop_length=HOP, n_mels=16, variation="none", max_lambd=10.0)
    assert layer.n_fft == 64
    x = signal().float()
    got = layer(x).detach().numpy()
    fb = librosa.filters.mel(sr=SR, n_fft=64, n_mels=16, fmin=0.0, fmax=SR / 2, htk=True, norm=None)
    xd = x.double().numpy()
    want = np.stack([np.log(fb @ numpy_power(xi - xi.mean(), np.array([[5.0]]), 64, HOP) + 1e-10) for xi in xd])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)  # float32 module, log domain (measured 2.4e-6)


@pytest.mark.parametrize("shape", [(1, 600 // HOP + 1), (N_FREQS, 1)], ids=["time", "frequency"])
def test_window_gradient_matches_finite_differences(shape):
    x = signal(1, 300)[:, :300]
    lambd = widths((shape[0], 300 // HOP + 1) if shape[1] > 1 else shape).requires_grad_()
    weights = torch.rand(1, N_FREQS, 300 // HOP + 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.autograd.gradcheck(lambda lam: (FF.varying_power_stft(x, lam, N_FFT, HOP) * weights).sum(),
                                    (lambd,), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("variation", VARIATIONS)
def test_gradients_reach_exactly_the_window_widths(variation):
    layer = VaryingSTFTMel(SR, 600, init_lambd=4.0, hop_length=HOP, n_mels=16, variation=variation)
    frames = 600 // HOP + 1
    want = {"none": (1, 1), "time": (1, frames), "frequency": (N_FREQS, 1), "time_frequency": (N_FREQS, frames)}
    assert [n for n, _ in layer.named_parameters()] == ["log_lambd"]
    assert layer.log_lambd.shape == want[variation]
    layer(signal().float()).sum().backward()
    grad = layer.log_lambd.grad
    assert torch.isfinite(grad).all()
    if variation in ("frequency", "time_frequency"):  # a bin no mel filter weighs (DC, Nyquist) has no gradient
        covered = layer.fb.sum(1) > 0
        assert (grad[covered] != 0).all() and (grad[~covered] == 0).all() and covered.sum() >= N_FREQS - 2
    else:
        assert (grad != 0).all()


def test_widths_stay_inside_their_bounds_with_a_gradient():
    layer = VaryingSTFTMel(SR, 600, init_lambd=4.0, hop_length=HOP, n_mels=16, variation="time", min_lambd=1.0)
    with torch.no_grad():
        layer.log_lambd[0, ::2] = 50.0
        layer.log_lambd[0, 1::2] = -50.0
    lambd = layer.lambd()
    torch.testing.assert_close(lambd[0, ::2].detach(), torch.full((7,), 8.0))  # ceiling 2 x 4 samples
    torch.testing.assert_close(lambd[0, 1::2].detach(), torch.full((6,), 1.0))  # floor min_lambd
    out = layer(signal().float())
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert torch.isfinite(layer.log_lambd.grad).all() and (layer.log_lambd.grad != 0).all()


def test_drift_is_zero_at_init_and_moves_after_a_step():
    layer = VaryingSTFTMel(SR, 600, init_lambd=4.0, hop_length=HOP, n_mels=16, variation="frequency")
    assert layer.drift() == {"window_length_change": 0.0}
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    layer(signal().float()).mean().backward()
    opt.step()
    assert layer.drift()["window_length_change"] > 0


@pytest.mark.parametrize("variation,compression", [("time", "log"), ("frequency", "log"), ("time", "pcen")])
def test_build_model_trains_on_fsdd_shapes(variation, compression):
    config = resolve_config({"frontend": "dstft", "model_name": "mel_linear_net", "hop_length": 80, "n_mels": 64,
                             "init_window_ms": 25.0, "dstft_variation": variation, "compression": compression})
    model = build_model(config, n_points=5500, n_classes=10, sample_rate=8000)
    stft = model.frontend.frontend if compression == "pcen" else model.frontend  # PCEN wraps the mel energies
    assert isinstance(stft, VaryingSTFTMel) and stft.log == (compression == "log") and stft.variation == variation
    assert stft.n_fft == 512  # ceiling 2 x 25 ms = 400 samples, next power of two
    logits, spec = model(signal(2, 5500).float())
    assert spec.shape == (2, 64, 5500 // 80 + 1) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    assert "window_length_change" in model.frontend_drift()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="gives mel"):
        build_model(resolve_config({"frontend": "dstft", "model_name": "linear_net", "feature": "spec"}), 5500, 10, 8000)
    with pytest.raises(ValueError, match="unknown variation"):
        VaryingSTFTMel(SR, 600, init_lambd=4.0, variation="diagonal")
    with pytest.raises(ValueError, match="time-varying window was built for 600"):
        VaryingSTFTMel(SR, 600, init_lambd=4.0, hop_length=HOP, n_mels=16, variation="time")(torch.zeros(1, 700))
