"""Ada-STFT against torchaudio and an independent numpy rfft; which parameters get gradients."""
import numpy as np
import pytest
import scipy.signal
import torch
import torchaudio

from models import functional as F
from models.frontends import AdaSTFT, AdaSTFTStack

SR, N_FFT, HOP, N_POINTS = 8000, 256, 64, 2000
FROZEN = dict(learn_window=False, learn_kernels=False)
PATHS = {"fft": False, "matmul": True}  # learn_kernels selects the torch.stft or the unfold + matmul path


def numpy_magnitude(x, window, n_fft, hop, pad_mode):
    """``|rfft|`` of explicitly centre-padded, windowed frames: ``(n_fft // 2 + 1, frames)``."""
    xp = np.pad(x, n_fft // 2, mode=pad_mode)
    frames = np.stack([xp[t * hop:t * hop + n_fft] for t in range(len(x) // hop + 1)])
    return np.abs(np.fft.rfft(frames * window, axis=-1)).T


def signal(batch=3, n_points=N_POINTS, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((batch, n_points)))


@pytest.mark.parametrize("path", PATHS)
def test_hann_matches_torchaudio_spectrogram(path):
    x = signal().float()
    layer = AdaSTFT(SR, N_FFT, HOP, "hann", learn_window=False, learn_kernels=PATHS[path], n_mels=None, log=False)
    ref = torchaudio.transforms.Spectrogram(N_FFT, hop_length=HOP, power=1, center=True, pad_mode="reflect")(x)
    got = layer(x).detach()
    assert got.shape == ref.shape == (3, N_FFT // 2 + 1, N_POINTS // HOP + 1)
    # float32, measured max |error| / max |ref|: 1.6e-7 (FFT path), 3.1e-7 (matmul over 256 products)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6 * ref.max().item())


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("window,pad_mode", [("hamming", "reflect"), ("blackman", "constant")])
def test_matches_numpy_rfft(path, window, pad_mode):
    x = signal(2, 1000, seed=1)
    layer = AdaSTFT(SR, N_FFT, 50, window, learn_kernels=PATHS[path], n_mels=None, log=False,
                    pad_mode=pad_mode).double()
    got = layer(x).detach().numpy()
    w = scipy.signal.get_window(window, N_FFT, fftbins=True)
    want = np.stack([numpy_magnitude(xi, w, N_FFT, 50, pad_mode) for xi in x.numpy()])
    # float64 module; the kernels are rounded to float32 when built
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * want.max())


@pytest.mark.parametrize("path", PATHS)
def test_mel_log_matches_torchaudio_melscale(path):
    x = signal().float()
    layer = AdaSTFT(SR, N_FFT, HOP, "hann", learn_kernels=PATHS[path], n_mels=40)
    mag = torchaudio.transforms.Spectrogram(N_FFT, hop_length=HOP, power=1, center=True, pad_mode="reflect")(x)
    mel = torchaudio.transforms.MelScale(40, SR, n_stft=N_FFT // 2 + 1, norm=None, mel_scale="htk")(mag)
    want = torch.log10(1 + 10 * mel)
    got = layer(x).detach()
    assert got.shape == (3, 40, N_POINTS // HOP + 1)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("learn_window", [False, True])
@pytest.mark.parametrize("learn_kernels", [False, True])
def test_gradients_reach_exactly_the_learned_parameters(learn_window, learn_kernels):
    layer = AdaSTFT(SR, N_FFT, HOP, learn_window=learn_window, learn_kernels=learn_kernels, n_mels=32)
    assert [n for n, _ in layer.named_parameters()] == ["window"] + ["kernels"] * learn_kernels
    out = layer(signal().float())
    assert out.requires_grad == (learn_window or learn_kernels)
    if out.requires_grad:
        out.sum().backward()
    for param, learned in ((layer.window, learn_window), (layer.kernels, learn_kernels)):
        if param is None:
            continue
        if learned:
            assert torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0
        else:
            assert param.grad is None


@pytest.mark.parametrize("path", PATHS)
def test_zero_input_has_finite_gradients(path):
    layer = AdaSTFT(SR, N_FFT, HOP, learn_kernels=PATHS[path], n_mels=32)
    out = layer(torch.zeros(2, N_POINTS))
    out.sum().backward()
    assert torch.isfinite(out).all()
    for param in layer.parameters():
        assert torch.isfinite(param.grad).all()


def test_window_and_kernel_change():
    layer = AdaSTFT(SR, N_FFT, HOP, learn_kernels=True, n_mels=32)
    assert layer.window_change() == 0.0 and layer.kernel_change() == 0.0
    torch.testing.assert_close(layer.initial_window(), torch.hann_window(N_FFT))
    opt = torch.optim.SGD(layer.parameters(), lr=1e-3)
    layer(signal().float()).mean().backward()
    opt.step()
    assert layer.window_change() > 0 and layer.kernel_change() > 0
    assert AdaSTFT(SR, N_FFT, HOP, learn_kernels=False, n_mels=32).kernel_change() == 0.0


def test_stack_channels():
    stack = AdaSTFTStack(SR, n_fft=N_FFT, hop_length=HOP, n_mels=32)
    out = stack(signal().float())
    assert out.shape == (3, 3, 32, N_POINTS // HOP + 1)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert not torch.allclose(out[:, a], out[:, b])
    torch.testing.assert_close(out[:, 1], stack.members[1](signal().float()))
    assert stack.window_change() == 0.0 and stack.kernel_change() == 0.0


def test_frozen_kernels_refuse_learned_state_dict():
    learned = AdaSTFT(SR, N_FFT, HOP, learn_kernels=True, n_mels=32)
    frozen = AdaSTFT(SR, N_FFT, HOP, learn_kernels=False, n_mels=32)
    assert set(frozen.state_dict()) == {"window"}  # no kernel tensor, and the filterbank is not persistent
    with pytest.raises(RuntimeError, match="kernels"):
        frozen.load_state_dict(learned.state_dict())
    with pytest.raises(RuntimeError, match="kernels"):
        learned.load_state_dict(frozen.state_dict())


def test_functional_pieces():
    assert F.dft_kernels(8).shape == (2, 5, 8)
    torch.testing.assert_close(torch.complex(*F.dft_kernels(16).double()),
                               torch.fft.rfft(torch.eye(16, dtype=torch.float64), dim=0).to(torch.complex128),
                               rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="'nope'"):
        F.stft_window("nope", 16)
    with pytest.warns(UserWarning, match="6 of 128 mel filters are empty at n_fft=256"):
        AdaSTFT(SR, N_FFT, HOP, n_mels=128)
    with pytest.raises(ValueError, match="pad_mode"):
        AdaSTFT(SR, pad_mode="circular")
    torch.testing.assert_close(F.log_compress(torch.tensor([0.0, 0.9])), torch.tensor([0.0, 1.0]))
