"""Pure functions for the differentiable Gaussian-window (mel) spectrogram.

Units: ``lambd`` is the standard deviation of the Gaussian window in **samples**;
a window of ``lambd`` samples at sample rate ``fs`` Hz is ``6 * lambd / fs`` seconds long
(the +-3 sigma support the paper uses). Shapes follow torchaudio: ``(..., time)`` in,
``(..., freq, frames)`` out with ``freq = n_fft // 2 + 1`` and ``frames = time // hop + 1``.

Reference: Martinsson & Sandsten, "DMEL: The differentiable log-Mel spectrogram as a
trainable layer in neural networks", ICASSP 2024.

The Ada-STFT functions (:func:`stft_window`, :func:`dft_kernels`, :func:`stft_magnitude`,
:func:`apply_filterbank`, :func:`log_compress`) give a magnitude STFT whose window and DFT
kernels can both be learned; ``n_fft`` and ``hop_length`` are in samples.
"""
from __future__ import annotations

import math
import warnings

import torch
import torchaudio
from torch.utils.weak import WeakTensorKeyDictionary

WINDOW_MODES = ("full", "optimized")
N_STDS = 6  # window support in standard deviations ("optimized" mode)
LOG_EPS = 1e-10
PAD_MODES = ("reflect", "constant")
MAGNITUDE_FLOOR = 1e-20  # power floor under the square root: finite gradient at |z| = 0


def next_power_of_2(x: float) -> int:
    """Smallest power of two >= ``x`` (at least 1)."""
    n = max(int(math.ceil(x)), 1)
    return 1 << (n - 1).bit_length()


def lambd_to_ms(lambd: float, sample_rate: float) -> float:
    """Window length in milliseconds, ``1000 * 6 * lambd / sample_rate``."""
    return 1000.0 * N_STDS * lambd / sample_rate


def ms_to_lambd(ms: float, sample_rate: float) -> float:
    """Inverse of :func:`lambd_to_ms`: lambda in samples for a window of ``ms`` milliseconds."""
    return ms * sample_rate / (1000.0 * N_STDS)


def window_geometry(lambd: float, n_points: int, mode: str) -> tuple[int, int]:
    """Window length ``L`` and FFT size for a given (detached) lambda, as the DMEL code computes them.

    ``full``: ``L = n_points`` and ``n_fft = 2 L`` (the synthetic experiment).
    ``optimized``: ``L = n_fft = 2 ** ceil(log2(int(6 lambd)))`` (audio): ``6 lambd`` is truncated to an
    integer first, then rounded up to a power of two, as the DMEL code's ``next_power_of_2(int(6 lambda))``
    (so 6 lambda = 128.7 gives 128, not 256; and float32's 1024 / 6, whose 6 lambda is 1024.00003,
    stays a 1024-sample window). At least 2.
    """
    if mode == "full":
        return n_points, 2 * n_points
    if mode == "optimized":
        length = max(1 << (int(N_STDS * lambd) - 1).bit_length(), 2)
        return length, length
    raise ValueError(f"unknown window mode {mode!r}; choose one of {WINDOW_MODES}")


def gaussian_window(lambd: torch.Tensor, win_length: int, normalize: bool = False) -> torch.Tensor:
    """Gaussian window ``w[m] = exp(-0.5 ((m - L/2) / lambd)^2)``, ``m = 0..L-1``.

    Args:
        lambd: scalar tensor, standard deviation in samples (> 0); gradients flow through it.
        win_length: ``L``, number of samples.
        normalize: divide by ``sqrt(sum w^2)`` so the window has unit energy. ``False`` (peak 1) is
            what every grid of the DMEL paper ran (``normalize_window: False``).
    Returns:
        ``(L,)`` tensor of ``lambd``'s dtype and device.
    """
    m = torch.arange(win_length, dtype=lambd.dtype, device=lambd.device)
    window = torch.exp(-0.5 * ((m - win_length / 2) / lambd) ** 2)
    if normalize:
        window = window / torch.sqrt(torch.sum(window**2))
    return window


def power_spectrogram(
    x: torch.Tensor,
    window: torch.Tensor,
    n_fft: int,
    hop_length: int,
    chunk_size: int | None = None,
    pad_mode: str = "constant",
    workspace: dict | None = None,
    remove_mean: bool = False,
) -> torch.Tensor:
    """``|STFT|^2`` with ``center=True`` (``pad_mode`` padding, zeros by default).

    Args:
        x: ``(..., time)`` waveform.
        window: ``(L,)`` analysis window, ``L <= n_fft`` (centred inside the FFT frame).
        n_fft: FFT size.
        hop_length: hop in samples.
        chunk_size: window and transform the flattened batch this many signals at a time (bounds
            the temporaries for long windows; ``None`` = the whole batch at once).
        workspace: a dict the caller keeps across calls (one per layer, used by one thread at a time):
            the scratch tensors of the closed-form path live there and are reused (see
            :class:`_WindowPowerSTFT`); ``None`` = fresh temporaries at every call.
        remove_mean: subtract each signal's mean first (on the closed-form path, as it is copied into the
            padded signal: no separate centred copy).
    Returns:
        ``(..., n_fft // 2 + 1, time // hop_length + 1)`` power spectrogram.
    """
    shape = x.shape
    flat = x.reshape(-1, shape[-1])
    if window.numel() != n_fft:  # centred in the frame
        left = (n_fft - window.numel()) // 2
        window = torch.nn.functional.pad(window, (left, n_fft - window.numel() - left))
    chunk_size = max(chunk_size or len(flat), 1)
    if x.requires_grad:  # gradients for the signal too: let autograd differentiate torch.stft
        if remove_mean:
            flat = flat - flat.mean(dim=-1, keepdim=True)
        spec = torch.cat([torch.view_as_real(torch.stft(c, n_fft=n_fft, hop_length=hop_length, window=window,
                                                        center=True, pad_mode=pad_mode, return_complex=True))
                          .pow(2).sum(-1) for c in flat.split(chunk_size)])
    else:
        # frequency stays the fastest-moving axis: log_mel's transpose back is contiguous (one matrix product)
        spec = _WindowPowerSTFT.apply(flat, window, n_fft, hop_length, pad_mode, chunk_size, workspace,
                                      remove_mean).transpose(-1, -2)
    return spec.reshape(shape[:-1] + spec.shape[-2:])


def _padded(x: torch.Tensor, n_fft: int, pad_mode: str, workspace: dict | None,
            mean: torch.Tensor | None = None) -> torch.Tensor:
    """``x - mean`` (``x`` ``(B, time)``, ``mean`` ``(B, 1)`` or ``None`` for ``x``) with ``center=True``
    padding, ``n_fft // 2`` samples each side, in the scratch tensor ``"padded"`` of ``workspace``
    (:func:`_scratch`), ``(B, time + 2 (n_fft // 2))``: zeros (``"constant"``) or the signal mirrored about
    its first and last samples (``"reflect"``, which needs ``n_fft // 2 < time``), as
    ``torch.nn.functional.pad`` pads."""
    half, length = n_fft // 2, x.shape[-1]
    if pad_mode == "reflect" and half >= length:
        raise ValueError(f"reflect padding of {half} samples needs a longer signal than {length} samples")
    out = _scratch(workspace, "padded", (len(x), length + 2 * half), x, x.dtype)
    signal = out[:, half:half + length]
    if mean is None:
        signal.copy_(x)
    else:
        torch.sub(x, mean, out=signal)
    if pad_mode == "constant":
        out[:, :half].zero_()
        out[:, half + length:].zero_()
    else:  # s[half], ..., s[1] on the left; s[-2], ..., s[-half - 1] on the right
        out[:, :half].copy_(signal[:, 1:half + 1].flip(-1))
        out[:, half + length:].copy_(signal[:, length - half - 1:length - 1].flip(-1))
    return out


def _scratch(workspace: dict | None, name: str, shape: tuple[int, ...], like: torch.Tensor,
             dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised ``shape`` tensor of ``dtype`` on ``like``'s device for a temporary: the leading rows
    of ``workspace[name]``, replaced by a new tensor when it has fewer rows or another row shape, dtype or
    device (so a workspace holds one tensor per name); a fresh tensor when ``workspace`` is ``None``."""
    if workspace is None:
        return torch.empty(shape, dtype=dtype, device=like.device)
    buffer = workspace.get(name)
    if (buffer is None or len(buffer) < shape[0] or buffer.shape[1:] != shape[1:] or buffer.dtype != dtype
            or buffer.device != like.device):
        buffer = workspace[name] = torch.empty(shape, dtype=dtype, device=like.device)
    return buffer[:shape[0]]


class _WindowPowerSTFT(torch.autograd.Function):
    """``S = |rfft(frames * w)|^2``, ``(B, frames, n_fft // 2 + 1)`` from ``(B, time)`` (less each signal's
    mean with ``remove_mean``), ``chunk_size`` signals at a time, with a closed-form gradient for the
    window ``w`` ``(n_fft,)`` only.

    With ``Z = rfft(frames * w)`` and upstream gradient ``G = dL/dS`` (real),
    ``dL/dw[m] = sum_{b,t} frames[b,t,m] * N * irfft(X)[b,t,m]`` where ``X = G * Z`` with its
    DC and Nyquist bins doubled (they appear once, not twice, in the one-sided spectrum).
    That is one inverse FFT instead of autograd's complex FFT backward and frame re-assembly.

    On the CPU, at short windows, first touches of freshly allocated memory cost as much as the FFTs
    (page faults). So the chunks write into one output (no concatenation), and the temporaries live in
    three scratch tensors of ``workspace`` (:func:`_scratch`), reused by every chunk and, when the caller
    keeps ``workspace``, by every call: the padded signal ``(B, time + 2 (N // 2))`` (padded again in the
    backward pass from the saved input: a copy costs less than fresh memory), a real ``(chunk, frames, N)``
    one for the windowed frames, and a complex ``(chunk, frames, F)`` one for ``|Z|^2``'s squares and then
    ``X``. ``irfft(X)`` is new for each chunk (``irfft(out=...)`` copies from a temporary, so it saves
    nothing). Every step works in the FFT's ``(B, frames, freq)`` layout and is one vectorised pass over
    contiguous memory (a strided pass over a complex tensor's real and imaginary parts is slower); the
    sum over frames is one in-place product and reduction (an ``einsum`` would copy the frames
    transposed). The FFT beat a DFT by matrix product at every size measured on one CPU thread.
    The timings behind each choice: docs/benchmarks.md, "DMEL's CPU STFT".
    """

    @staticmethod
    def forward(ctx, x, window, n_fft, hop_length, pad_mode, chunk_size, workspace, remove_mean):
        mean = x.mean(dim=-1, keepdim=True) if remove_mean else None  # (B, 1)
        padded = _padded(x, n_fft, pad_mode, workspace, mean)
        frames = padded.unfold(-1, n_fft, hop_length)  # (B, T, N), a view
        n_frames, n_freqs = frames.shape[1], n_fft // 2 + 1
        power = x.new_empty(len(frames), n_frames, n_freqs)  # (B, T, F)
        spectra = []  # Z per chunk, (chunk, T, F) complex
        for start in range(0, len(frames), chunk_size):
            chunk = frames[start:start + chunk_size]
            windowed = torch.mul(chunk, window, out=_scratch(workspace, "frames", chunk.shape, x, x.dtype))
            z = torch.fft.rfft(windowed, dim=-1)
            squares = torch.view_as_real(_scratch(workspace, "spectra", z.shape, x, z.dtype))  # (chunk, T, F, 2)
            torch.square(torch.view_as_real(z), out=squares)
            torch.add(squares[..., 0], squares[..., 1], out=power[start:start + chunk_size])
            spectra.append(z)
        ctx.save_for_backward(x, *spectra)  # not the padded copy: it is scratch, padded again in backward
        ctx.n_fft, ctx.hop_length, ctx.chunk_size, ctx.workspace = n_fft, hop_length, chunk_size, workspace
        ctx.pad_mode, ctx.mean = pad_mode, mean
        return power

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, *spectra = ctx.saved_tensors
        if not ctx.needs_input_grad[1]:
            return None, None, None, None, None, None, None, None
        n_fft, step, workspace = ctx.n_fft, ctx.chunk_size, ctx.workspace
        padded = _padded(x, n_fft, ctx.pad_mode, workspace, ctx.mean)
        frames = padded.unfold(-1, n_fft, ctx.hop_length)
        grad_window = torch.zeros(n_fft, dtype=padded.dtype, device=padded.device)
        doubled = torch.ones(n_fft // 2 + 1, dtype=padded.dtype, device=padded.device)  # (F,)
        doubled[0] = 2  # DC
        if n_fft % 2 == 0:
            doubled[-1] = 2  # Nyquist
        for start, z in zip(range(0, len(frames), step), spectra):
            chunk = frames[start:start + step]
            spec_grad = _scratch(workspace, "spectra", z.shape, z, z.dtype)  # X = G * Z, (chunk, T, F)
            torch.mul(grad[start:start + step], doubled, out=spec_grad).mul_(z)  # G cast to complex as it is written
            # N * irfft(X), (chunk, T, N): norm="forward" leaves out the 1 / N
            r = torch.fft.irfft(spec_grad, n=n_fft, dim=-1, norm="forward")
            grad_window += r.mul_(chunk).sum((0, 1))
        return None, grad_window, None, None, None, None, None, None


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int, f_min: float = 0.0,
                   f_max: float | None = None) -> tuple[torch.Tensor, int]:
    """HTK mel filterbank without normalisation (torchaudio ``melscale_fbanks``).

    Returns:
        ``(fb, n_empty)``: ``fb`` of shape ``(n_fft // 2 + 1, n_mels)`` and the number of
        all-zero filters (too few FFT bins for ``n_mels`` bands).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # we count empty filters ourselves and warn once
        fb = torchaudio.functional.melscale_fbanks(
            n_freqs=n_fft // 2 + 1, f_min=f_min, f_max=f_max if f_max is not None else sample_rate / 2,
            n_mels=n_mels, sample_rate=sample_rate, norm=None, mel_scale="htk",
        )
    n_empty = int((fb.max(dim=0).values == 0).sum())
    return fb, n_empty


def log_mel(power_spec: torch.Tensor, fb: torch.Tensor, eps: float = LOG_EPS) -> torch.Tensor:
    """``log(fb^T @ S + eps)``.

    Args:
        power_spec: ``(..., n_fft // 2 + 1, frames)``.
        fb: ``(n_fft // 2 + 1, n_mels)``.
    Returns:
        ``(..., n_mels, frames)`` natural-log mel spectrogram.
    """
    return torch.log(apply_filterbank(power_spec, fb, offset=eps))


def stft_window(name: str, n_fft: int) -> torch.Tensor:
    """Periodic (``fftbins=True``) window ``scipy.signal.get_window(name, n_fft)``.

    Args:
        name: any scipy window name that needs no parameter (``"hann"``, ``"hamming"``, ...).
        n_fft: window length in samples.
    Returns:
        ``(n_fft,)`` float32 tensor.
    """
    import scipy.signal  # here, not at the top: slow to import, and only Ada-STFT needs it

    try:
        window = scipy.signal.get_window(name, n_fft, fftbins=True)
    except ValueError as err:
        raise ValueError(f"bad STFT window name {name!r} (a parameter-free scipy.signal.get_window name, "
                         f"such as 'hann', 'hamming' or 'blackman'): {err}") from err
    return torch.as_tensor(window, dtype=torch.float32)


def dft_kernels(n_fft: int) -> torch.Tensor:
    """One-sided DFT matrix split into real and imaginary parts (torch.stft's sign).

    ``K[0, k, n] = cos(2 pi k n / n_fft)`` and ``K[1, k, n] = -sin(2 pi k n / n_fft)``,
    computed in float64 from ``k n mod n_fft`` so large ``n_fft`` keeps full float32 accuracy.

    Returns:
        ``(2, n_fft // 2 + 1, n_fft)`` float32 tensor.
    """
    k = torch.arange(n_fft // 2 + 1, dtype=torch.int64)[:, None]
    n = torch.arange(n_fft, dtype=torch.int64)[None, :]
    angle = 2 * math.pi * ((k * n) % n_fft).double() / n_fft
    return torch.stack([torch.cos(angle), -torch.sin(angle)]).float()


def stft_magnitude(x: torch.Tensor, window: torch.Tensor, hop_length: int, kernels: torch.Tensor | None = None,
                   pad_mode: str = "reflect", chunk_size: int | None = None) -> torch.Tensor:
    """Magnitude STFT ``|STFT|`` with ``center=True`` (``n_fft // 2`` samples of padding each side).

    ``kernels=None``: the exact DFT by FFT, ``sqrt`` of :func:`power_spectrogram` (whose closed-form
    window gradient is cheaper than autograd through ``torch.stft``; docs/benchmarks.md).
    Otherwise the frames (``unfold`` of the padded signal) go through one matmul with the
    window-weighted kernels, ``sum_n frame[n] w[n] K[:, k, n]`` (the window is folded into the
    kernels rather than into a windowed copy of the frames: same sum, one large matmul less in
    the backward pass). The magnitude is the true ``sqrt(re^2 + im^2)``, with the power clamped
    at ``MAGNITUDE_FLOOR`` so the gradient is finite at zero; the original Ada-STFT code took
    ``abs(re)`` by mistake.

    Args:
        x: ``(..., time)`` waveform.
        window: ``(n_fft,)`` analysis window.
        hop_length: hop in samples.
        kernels: ``(2, n_fft // 2 + 1, n_fft)`` real and imaginary DFT kernels (:func:`dft_kernels`
            at initialisation), or ``None`` for the FFT.
        pad_mode: ``"reflect"`` (torchaudio's default) or ``"constant"`` (zeros).
        chunk_size: signals per FFT call on the ``kernels=None`` path (``None`` = all at once).
    Returns:
        ``(..., n_fft // 2 + 1, time // hop_length + 1)`` magnitude spectrogram.
    """
    if pad_mode not in PAD_MODES:
        raise ValueError(f"unknown pad_mode {pad_mode!r}; choose one of {PAD_MODES}")
    n_fft = window.numel()
    shape = x.shape
    flat = x.reshape(-1, shape[-1])
    if kernels is None:
        power = power_spectrogram(flat, window, n_fft, hop_length, chunk_size, pad_mode)
        spec = power.clamp(min=MAGNITUDE_FLOOR).sqrt()
    else:
        n_freqs = n_fft // 2 + 1
        padded = torch.nn.functional.pad(flat[:, None], (n_fft // 2, n_fft // 2), mode=pad_mode)[:, 0]
        frames = padded.unfold(-1, n_fft, hop_length)  # (B, frames, n_fft)
        weighted = (kernels * window).reshape(2 * n_freqs, n_fft)  # rows: n_freqs real, then n_freqs imaginary
        z = torch.matmul(frames, weighted.T).unflatten(-1, (2, n_freqs))  # (B, frames, 2, n_freqs)
        power = z.square().sum(-2).clamp(min=MAGNITUDE_FLOOR)
        spec = power.sqrt().transpose(-1, -2)
    return spec.reshape(shape[:-1] + spec.shape[-2:])


def apply_filterbank(spec: torch.Tensor, fb: torch.Tensor, offset: float = 0.0) -> torch.Tensor:
    """``fb^T @ S + offset``: ``(..., n_fft // 2 + 1, frames)`` and ``(n_fft // 2 + 1, n_mels)`` ->
    ``(..., n_mels, frames)``.

    On the CPU, with a fixed ``fb`` (no gradient), only the bins where a block of ``FILTER_BLOCK``
    consecutive filters is nonzero are multiplied (:class:`_BandedProduct`, which adds ``offset`` in the
    products themselves: no extra pass); elsewhere (a GPU, a learned filterbank) one dense product. A
    spectrogram whose frequency axis is the fastest-moving (as :func:`power_spectrogram` returns it)
    goes in without a copy.
    """
    fb = fb.to(spec.dtype)
    if spec.device.type != "cpu" or fb.requires_grad:
        mel = torch.matmul(spec.transpose(-1, -2), fb).transpose(-1, -2)
        return mel + offset if offset else mel
    flat = spec.transpose(-1, -2).reshape(-1, spec.shape[-2])  # (batch * frames, freq)
    mel = _BandedProduct.apply(flat, fb, _filter_blocks(fb), offset)
    return mel.reshape(spec.shape[:-2] + (spec.shape[-1], fb.shape[1])).transpose(-1, -2)


# Filters per block of the banded filterbank product on the CPU. Mel filters are narrow bands, so most
# of a dense product multiplies zeros; but each block is one matrix product, and small ones are slow.
# 16 was the fastest block at 64 and 128 mels (docs/benchmarks.md, "Banded filterbank product").
FILTER_BLOCK = 16


# fb -> (fb._version, its blocks): a fixed filterbank's blocks are found once, not at every step (ten small
# operations and a host read-back); an in-place change of fb (a new version) finds them again.
_FILTER_BLOCKS_CACHE = WeakTensorKeyDictionary()


def _filter_blocks(fb: torch.Tensor) -> tuple[tuple[int, int, int, int], ...]:
    """``(first bin, end bin, first filter, end filter)`` per block of ``FILTER_BLOCK`` filters of a CPU
    ``fb`` ``(freq, n_filters)``: the bins where any filter of the block is nonzero (none: an empty range)."""
    cached = _FILTER_BLOCKS_CACHE.get(fb)
    if cached is not None and cached[0] == fb._version:
        return cached[1]
    n_bins, n_filters = fb.shape
    nonzero = fb != 0
    bins = torch.arange(n_bins)[:, None]
    first = torch.where(nonzero, bins, n_bins).amin(0).tolist()
    end = torch.where(nonzero, bins + 1, 0).amax(0).tolist()
    blocks = []
    for j in range(0, n_filters, FILTER_BLOCK):
        lo, hi = min(first[j:j + FILTER_BLOCK]), max(end[j:j + FILTER_BLOCK])
        blocks.append((lo, max(lo, hi), j, min(j + FILTER_BLOCK, n_filters)))
    _FILTER_BLOCKS_CACHE[fb] = (fb._version, tuple(blocks))
    return tuple(blocks)


class _BandedProduct(torch.autograd.Function):
    """``S @ fb + offset`` ``(N, freq) @ (freq, n_filters)`` block by block of filters over their nonzero
    bins (``blocks`` from :func:`_filter_blocks`); the gradient reaches ``S`` only (``fb`` is fixed)."""

    @staticmethod
    def forward(ctx, s, fb, blocks, offset):
        out = s.new_empty(s.shape[0], fb.shape[1])
        bias = s.new_full((), offset)
        for lo, hi, j0, j1 in blocks:
            torch.addmm(bias, s[:, lo:hi], fb[lo:hi, j0:j1], out=out[:, j0:j1])
        ctx.save_for_backward(fb)
        ctx.blocks = blocks
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (fb,) = ctx.saved_tensors
        grad_s = grad.new_zeros(grad.shape[0], fb.shape[0])
        for lo, hi, j0, j1 in ctx.blocks:  # blocks share their edge bins: accumulate
            grad_s[:, lo:hi].addmm_(grad[:, j0:j1], fb[lo:hi, j0:j1].T)
        return grad_s, None, None, None


def log_compress(x: torch.Tensor) -> torch.Tensor:
    """``log10(1 + 10 x)`` elementwise (``x >= 0``; 0 maps to 0)."""
    return torch.log1p(10 * x) / math.log(10)
