"""Front-end layers: thin ``nn.Module``s over :mod:`models.functional`.

* :class:`GaussianSpectrogram` (DSPEC): power spectrogram with a Gaussian window whose
  width ``lambd`` (samples) is a parameter; ``trainable=False`` is the fixed-resolution
  baseline (same module, same code path).
* :class:`DMEL`: :class:`GaussianSpectrogram` composed with a cached mel filterbank and log
  (``log=False``: the mel power, for a compression such as :class:`models.pcen.PCEN` after it).
* :class:`FixedMel`: torchaudio's standard Hann-window ``MelSpectrogram`` plus the same log (or none).
* :class:`AdaSTFT`: magnitude STFT whose window and DFT kernels are parameters, each learned
  or frozen by its own flag, then an optional mel projection and ``log10(1 + 10 x)``.
* :class:`AdaSTFTStack`: several :class:`AdaSTFT` with different windows, stacked as channels.

All take ``(batch, time)`` waveforms.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
import torchaudio
from torch import nn

from models import functional as F
from models.registry import register_frontend

# Working-set bound for one STFT call, in frame samples (frames x n_fft), per device type. On the CPU
# large calls are memory-bound, so a chunk's windowed frames (2**17 float32 = 512 KiB) stay about the size
# of a core's L2 cache; on a GPU each call is a kernel launch and one call's temporaries (~16 bytes per
# frame sample) fit easily, so calls are 256x larger. Measurements: docs/benchmarks.md, "STFT chunk size".
CHUNK_ELEMENTS = {"cpu": 2**17, "cuda": 2**25}
LAMBD_PARAMS = ("abs", "log")  # how the trained parameter gives lambda (GaussianSpectrogram)


def checked_filterbank(owner: str, n_fft: int, n_mels: int, sample_rate: int, f_min: float = 0.0,
                       f_max: float | None = None) -> torch.Tensor:
    """:func:`models.functional.mel_filterbank` ``(n_fft // 2 + 1, n_mels)``, with a warning naming
    how many filters are empty (fewer FFT bins than the mel bands need) and ``owner``."""
    fb, n_empty = F.mel_filterbank(n_fft, n_mels, sample_rate, f_min, f_max)
    if n_empty:
        warnings.warn(f"{owner}: {n_empty} of {n_mels} mel filters are empty at n_fft={n_fft} "
                      f"({n_fft // 2 + 1} FFT bins at {sample_rate} Hz); their rows are constant. "
                      "Use fewer mels or a longer window.", stacklevel=3)
    return fb


def auto_chunk(n_points: int, hop_length: int, n_fft: int, device: torch.device | str = "cpu") -> int:
    """Signals per STFT call so one call holds about ``CHUNK_ELEMENTS[device type]`` frame samples
    (at least 1; devices other than CUDA use the CPU bound)."""
    bound = CHUNK_ELEMENTS.get(torch.device(device).type, CHUNK_ELEMENTS["cpu"])
    return max(1, bound // ((n_points // hop_length + 1) * n_fft))


class GaussianSpectrogram(nn.Module):
    """Differentiable Gaussian-window power spectrogram (DSPEC).

    Args:
        init_lambd: initial window standard deviation in samples.
        n_points: signal length in samples (fixes the ``full`` window and the lambda ceiling).
        hop_length: hop in samples.
        window_mode: ``"full"`` (L = n_points, n_fft = 2L) or ``"optimized"``
            (L = n_fft = next power of two of 6 lambda, from the detached lambda each forward).
        normalize_window: divide the window by its root energy (unit energy); ``False`` (default): peak 1,
            as every grid of the DMEL paper.
        trainable: learn ``lambd``; ``False`` freezes it (the baseline).
        remove_mean: subtract each example's mean before the transform (as the paper).
        min_lambd: floor for lambda in samples.
        lambd_param: how the trained parameter gives lambda. ``"abs"`` (the paper's): the parameter
            ``lambd`` is lambda in samples and enters through its absolute value (a step moves it by
            samples; it can reach the floor). ``"log"``: the parameter ``log_lambd`` is
            ``theta = log(lambda / 1 sample)`` and lambda = ``exp(theta)``: never zero, and a step
            changes lambda by a ratio. Both give the same output at the same lambda.
        max_lambd: ceiling for lambda in samples (``None``: ``n_points``; a smaller ceiling bounds
            n_fft in ``optimized`` mode, so a growing window cannot run a shared GPU out of memory).
        chunk_size: examples per STFT call; ``None`` picks ``CHUNK_ELEMENTS[device] // (frames * n_fft)``
            (at least 1), so short windows run as one batch and long ones in small chunks.

    Input ``(batch, n_points)``; output ``(batch, n_fft // 2 + 1, n_points // hop_length + 1)``.

    The window geometry (n_fft) comes from a host copy of lambda that :meth:`project_` and
    ``load_state_dict`` refresh, so a forward pass never waits for the device; call
    :meth:`project_` after changing a trainable ``lambd`` in place (:meth:`refresh_geometry` for a
    frozen one).
    """

    def __init__(self, init_lambd: float, n_points: int, hop_length: int = 1, window_mode: str = "full",
                 normalize_window: bool = False, trainable: bool = True, remove_mean: bool = True,
                 min_lambd: float = 0.5, max_lambd: float | None = None, chunk_size: int | None = None,
                 lambd_param: str = "abs"):
        super().__init__()
        if window_mode not in F.WINDOW_MODES:
            raise ValueError(f"unknown window_mode {window_mode!r}; choose one of {F.WINDOW_MODES}")
        if lambd_param not in LAMBD_PARAMS:
            raise ValueError(f"unknown lambd_param {lambd_param!r}; choose one of {LAMBD_PARAMS}")
        max_lambd = float(n_points) if max_lambd is None else min(float(max_lambd), float(n_points))
        if not min_lambd <= abs(init_lambd) <= max_lambd:
            raise ValueError(f"init_lambd={init_lambd} samples is outside [{min_lambd}, {max_lambd:g}] "
                             "(the floor and the ceiling: the signal length or max_window_ms)")
        self.n_points, self.hop_length, self.window_mode = n_points, hop_length, window_mode
        self.normalize_window, self.remove_mean = normalize_window, remove_mean
        self.min_lambd, self.max_lambd, self.chunk_size = min_lambd, max_lambd, chunk_size
        self.lambd_param = lambd_param
        if lambd_param == "abs":
            self.lambd = nn.Parameter(torch.tensor(float(init_lambd)), requires_grad=trainable)
        else:
            self.log_lambd = nn.Parameter(torch.tensor(math.log(abs(init_lambd))), requires_grad=trainable)
        self._lambd_host = float(self.effective_lambd().detach())  # samples; read by geometry()
        self.init_lambd = self._lambd_host  # samples, for drift()
        self.register_load_state_dict_post_hook(lambda module, _keys: module.refresh_geometry())
        # the CPU STFT's scratch tensors, reused across calls (F.power_spectrogram's ``workspace``); a GPU's
        # caching allocator already reuses memory, so CUDA calls get none (no memory held between calls)
        self._workspace: dict = {}

    @property
    def window_parameter(self) -> nn.Parameter:
        """The trained parameter: ``lambd`` (samples) or ``log_lambd`` (log samples), per ``lambd_param``."""
        return self.lambd if self.lambd_param == "abs" else self.log_lambd

    def effective_lambd(self) -> torch.Tensor:
        """Lambda in samples (``|lambd|`` or ``exp(log_lambd)``) kept inside ``[min_lambd, max_lambd]``.

        The bounds hold the value but pass the gradient through (straight-through clamp), so a window
        on its floor or ceiling leaves it again when the loss says so. (``torch.clamp``'s gradient is
        zero at a bound and :meth:`project_` puts lambda exactly on it, so with a plain clamp a window
        that reached the floor could never leave it; docs/benchmarks.md, "DMEL from a 10 ms window".)
        """
        raw = self.lambd.abs() if self.lambd_param == "abs" else self.log_lambd.exp()
        return raw + (raw.clamp(self.min_lambd, self.max_lambd) - raw).detach()

    @torch.no_grad()
    def project_(self) -> None:
        """Put the raw parameter back inside the allowed range (call after an optimizer step) and
        refresh the host copy of lambda that the geometry uses. Only a trainable ``optimized`` window
        depends on lambda's changing value, so only it reads lambda back from the device (one sync per
        step). A frozen window (``trainable=False``, or a ``tf_warmup_epochs`` epoch) does nothing: no
        step moved it, and a step must not wait for the device (use :meth:`refresh_geometry` after
        changing a frozen ``lambd`` in place)."""
        if not self.window_parameter.requires_grad:
            return
        if self.lambd_param == "abs":
            self.lambd.copy_(self.effective_lambd())
        else:  # clamped in the log domain: exp-then-log would nudge theta by rounding at every step
            self.log_lambd.clamp_(math.log(self.min_lambd), math.log(self.max_lambd))
        if self.window_mode == "optimized":
            self.refresh_geometry()

    @torch.no_grad()
    def drift(self) -> dict[str, float]:
        """``lambd_change``: ``|lambda - lambda_0| / lambda_0`` (a host float; nothing for a fixed window)."""
        if not self.window_parameter.requires_grad:
            return {}
        return {"lambd_change": abs(float(self.effective_lambd()) - self.init_lambd) / self.init_lambd}

    def learning_rate_groups(self, config: dict) -> list[tuple[list[nn.Parameter], float]]:
        """The window's parameter at ``lr_tf`` (nothing for a fixed window): see :mod:`models.interface`."""
        return [([self.window_parameter], config["lr_tf"])] if self.window_parameter.requires_grad else []

    def after_step(self) -> None:
        """:meth:`project_` after every optimiser step."""
        self.project_()

    @torch.no_grad()
    def epoch_metrics(self, sample_rate: int | None) -> dict[str, float]:
        """``lambd_est``: lambda in samples; ``lambd_ms``: the window 6 lambda in ms (with a sample rate)."""
        lambd = float(self.effective_lambd())
        return {"lambd_est": lambd, **({"lambd_ms": F.lambd_to_ms(lambd, sample_rate)} if sample_rate else {})}

    @torch.no_grad()
    def refresh_geometry(self) -> None:
        """Read lambda (samples) back into the host copy that :meth:`geometry` uses."""
        self._lambd_host = float(self.effective_lambd())

    def geometry(self) -> tuple[int, int]:
        """Current ``(win_length, n_fft)``, from the host copy of lambda (no device sync)."""
        return F.window_geometry(self._lambd_host, self.n_points, self.window_mode)

    @torch.no_grad()
    def export_learned(self) -> dict:
        """The window the forward pass uses (:func:`models.functional.gaussian_window` of the effective
        lambda at the current geometry): ``window`` ``(win_length,)`` and the scalars ``lambda_samples``,
        ``win_length``, ``n_fft``, ``hop_length`` (samples), ``normalize_window`` and ``trainable``."""
        lambd = self.effective_lambd()
        win_length, n_fft = self.geometry()
        window = F.gaussian_window(lambd, win_length, self.normalize_window)
        return {"window": window.cpu().numpy(), "lambda_samples": float(lambd), "win_length": win_length,
                "n_fft": n_fft, "hop_length": self.hop_length, "normalize_window": self.normalize_window,
                "trainable": bool(self.window_parameter.requires_grad)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lambd = self.effective_lambd().to(x.dtype)
        win_length, n_fft = self.geometry()
        window = F.gaussian_window(lambd, win_length, self.normalize_window)
        chunk = self.chunk_size or auto_chunk(x.shape[-1], self.hop_length, n_fft, x.device)
        workspace = self._workspace if x.device.type == "cpu" else None
        return F.power_spectrogram(x, window, n_fft, self.hop_length, chunk, workspace=workspace,
                                   remove_mean=self.remove_mean)


class DMEL(nn.Module):
    """Differentiable log-mel spectrogram: :class:`GaussianSpectrogram` -> mel -> ``log(. + 1e-10)``.

    Args:
        sample_rate: Hz.
        n_mels: mel bands.
        f_min, f_max: filterbank range in Hz (``f_max`` defaults to ``sample_rate / 2``).
        log: apply the log last; ``False`` returns the mel power spectrogram.
        **spec_kwargs: passed to :class:`GaussianSpectrogram` (``init_lambd`` in samples, ...).

    The filterbank is built once per n_fft and cached. A warning names the number of empty
    filters the first time an n_fft gives fewer FFT bins than the mel bands need.
    Input ``(batch, n_points)``; output ``(batch, n_mels, n_points // hop_length + 1)``.
    """

    def __init__(self, sample_rate: int, n_mels: int = 64, f_min: float = 0.0, f_max: float | None = None,
                 log: bool = True, **spec_kwargs):
        super().__init__()
        self.spectrogram = GaussianSpectrogram(**spec_kwargs)
        self.sample_rate, self.n_mels, self.f_min, self.f_max = sample_rate, n_mels, f_min, f_max
        self.log = log
        self._fbanks: dict[tuple, torch.Tensor] = {}

    @property
    def lambd(self) -> nn.Parameter:
        """The window's trained parameter (lambda in samples, or log lambda with ``lambd_param="log"``)."""
        return self.spectrogram.window_parameter

    def drift(self) -> dict[str, float]:
        """The window's :meth:`GaussianSpectrogram.drift`."""
        return self.spectrogram.drift()

    def learning_rate_groups(self, config: dict) -> list[tuple[list[nn.Parameter], float]]:
        return self.spectrogram.learning_rate_groups(config)

    def after_step(self) -> None:
        self.spectrogram.after_step()

    def epoch_metrics(self, sample_rate: int | None) -> dict[str, float]:
        return self.spectrogram.epoch_metrics(sample_rate)

    @torch.no_grad()
    def export_learned(self) -> dict:
        """:meth:`GaussianSpectrogram.export_learned` plus ``lambda_ms`` (lambda in ms), ``window_ms``
        (6 lambda in ms, the trial's ``lambd_ms``), ``sample_rate`` (Hz), ``n_mels`` and the mel
        ``filterbank`` ``(n_fft // 2 + 1, n_mels)`` at the window's n_fft."""
        out = self.spectrogram.export_learned()
        lambd = out["lambda_samples"]
        fb = self.filterbank(out["n_fft"], torch.device("cpu"), torch.float32)
        return {**out, "lambda_ms": 1000.0 * lambd / self.sample_rate,
                "window_ms": F.lambd_to_ms(lambd, self.sample_rate), "sample_rate": self.sample_rate,
                "n_mels": self.n_mels, "filterbank": fb.numpy()}

    def filterbank(self, n_fft: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        key = (n_fft, device, dtype)
        if key not in self._fbanks:
            fb = checked_filterbank("DMEL", n_fft, self.n_mels, self.sample_rate, self.f_min, self.f_max)
            self._fbanks[key] = fb.to(device=device, dtype=dtype)
        return self._fbanks[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.spectrogram(x)
        _, n_fft = self.spectrogram.geometry()
        fb = self.filterbank(n_fft, spec.device, spec.dtype)
        return F.log_mel(spec, fb) if self.log else F.apply_filterbank(spec, fb)


class FixedMel(nn.Module):
    """Standard fixed front-end: torchaudio Hann ``MelSpectrogram`` (HTK, power 2) + ``log(. + 1e-10)``,
    or decibels ``10 log10(max(., 1e-10))`` floored ``top_db`` below each example's maximum (the
    FMA system's ``power_to_db(..., top_db=80)``).

    Args:
        sample_rate: Hz.
        win_ms: Hann window length in milliseconds (n_fft is the next power of two).
        hop_length: hop in samples.
        n_mels: mel bands.
        remove_mean: subtract each example's mean first (as DMEL does).
        top_db: ``None`` for the natural log, else the dB range kept below each example's peak.
        log: ``False`` skips the log (and needs ``top_db=None``): the mel power spectrogram.

    Input ``(batch, time)``; output ``(batch, n_mels, time // hop_length + 1)``.
    """

    def __init__(self, sample_rate: int, win_ms: float = 25.0, hop_length: int = 80, n_mels: int = 64,
                 remove_mean: bool = True, top_db: float | None = None, log: bool = True):
        super().__init__()
        if not log and top_db is not None:
            raise ValueError(f"top_db={top_db} is a dB floor: it needs log=True (compression='log')")
        win_length = int(round(win_ms * sample_rate / 1000))
        self.remove_mean, self.top_db, self.log = remove_mean, top_db, log
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=F.next_power_of_2(win_length), win_length=win_length,
            hop_length=hop_length, n_mels=n_mels, power=2.0, center=True, pad_mode="constant",
            norm=None, mel_scale="htk")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.remove_mean:
            x = x - x.mean(dim=-1, keepdim=True)
        if not self.log:
            return self.mel(x)
        if self.top_db is None:
            return torch.log(self.mel(x) + F.LOG_EPS)
        # a (batch, 1, mel, frames) input makes torchaudio floor each example at its own peak
        return torchaudio.functional.amplitude_to_DB(self.mel(x).unsqueeze(1), multiplier=10.0, amin=F.LOG_EPS,
                                                     db_multiplier=0.0, top_db=self.top_db).squeeze(1)


class AdaSTFT(nn.Module):
    """Ada-STFT: ``|STFT|`` with a learnable window and optionally learnable DFT kernels.

    Args:
        sample_rate: Hz (for the mel filterbank).
        n_fft: frame and window length in samples.
        hop_length: hop in samples.
        window: scipy window name for the initial window (:func:`models.functional.stft_window`).
        learn_window: the window ``(n_fft,)`` is a trained parameter (else frozen).
        learn_kernels: the kernels ``(2, n_fft // 2 + 1, n_fft)`` are a parameter initialised at
            the DFT and computed by unfold + matmul. ``False`` registers no kernel tensor and uses
            ``torch.stft`` (FFT), so a state dict with kernels does not load into it.
        n_mels: HTK mel bands (unnormalised, 0 Hz to ``sample_rate / 2``) applied to the
            magnitude; ``None`` keeps the linear-frequency bins.
        log: apply ``log10(1 + 10 x)`` last.
        pad_mode: ``"reflect"`` (torchaudio's default) or ``"constant"``; ``n_fft // 2`` samples each side.

    Input ``(batch, time)``; output ``(batch, freq, time // hop_length + 1)`` with
    ``freq = n_mels`` or ``n_fft // 2 + 1`` when ``n_mels`` is ``None``.
    """

    def __init__(self, sample_rate: int, n_fft: int = 1024, hop_length: int = 512, window: str = "hann",
                 learn_window: bool = True, learn_kernels: bool = False, n_mels: int | None = 128,
                 log: bool = True, pad_mode: str = "reflect"):
        super().__init__()
        if pad_mode not in F.PAD_MODES:
            raise ValueError(f"unknown pad_mode {pad_mode!r}; choose one of {F.PAD_MODES}")
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.window_name, self.log, self.pad_mode = window, log, pad_mode
        self.window = nn.Parameter(F.stft_window(window, n_fft), requires_grad=learn_window)
        self.kernels = nn.Parameter(F.dft_kernels(n_fft)) if learn_kernels else None
        fb = checked_filterbank("AdaSTFT", n_fft, n_mels, sample_rate) if n_mels is not None else None
        self.register_buffer("fb", fb, persistent=False)

    def initial_window(self) -> torch.Tensor:
        """The window at initialisation, ``(n_fft,)``, on the current window's device and dtype."""
        return F.stft_window(self.window_name, self.n_fft).to(self.window)

    def drift(self) -> dict[str, float]:
        """``window_mse`` and ``kernel_change`` (see :meth:`window_change`, :meth:`kernel_change`)."""
        return {"window_mse": self.window_change(), "kernel_change": self.kernel_change()}

    def window_change(self) -> float:
        """Mean squared difference between the current and the initial window."""
        return float((self.window.detach() - self.initial_window()).square().mean())

    def kernel_change(self) -> float:
        """Relative Frobenius distance ``||K - K0|| / ||K0||`` to the DFT kernels (0 when frozen)."""
        if self.kernels is None:
            return 0.0
        k0 = F.dft_kernels(self.n_fft).to(self.kernels)
        return float(torch.linalg.norm(self.kernels.detach() - k0) / torch.linalg.norm(k0))

    @torch.no_grad()
    def export_learned(self) -> dict:
        """``window`` ``(n_fft,)`` as learned, ``initial_window`` (the scipy window it started from), the
        DFT ``kernels`` ``(2, n_fft // 2 + 1, n_fft)`` when learned, the mel ``filterbank`` when there is one;
        scalars ``n_fft``, ``hop_length`` (samples), ``sample_rate`` (Hz)."""
        out = {"window": self.window.detach().cpu().numpy(), "initial_window": self.initial_window().cpu().numpy(),
               "n_fft": self.n_fft, "hop_length": self.hop_length, "sample_rate": self.sample_rate}
        if self.kernels is not None:
            out["kernels"] = self.kernels.detach().cpu().numpy()
        if self.fb is not None:
            out["filterbank"] = self.fb.cpu().numpy()
            out["n_mels"] = int(self.fb.shape[1])
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = F.stft_magnitude(x, self.window, self.hop_length, self.kernels, self.pad_mode,
                                auto_chunk(x.shape[-1], self.hop_length, self.n_fft, x.device))
        if self.fb is not None:
            spec = F.apply_filterbank(spec, self.fb)
        return F.log_compress(spec) if self.log else spec


class AdaSTFTStack(nn.Module):
    """The "several windows" Ada-STFT: one :class:`AdaSTFT` per window, outputs stacked as channels.

    Args:
        sample_rate: Hz.
        windows: scipy window names, one member each.
        **kwargs: shared :class:`AdaSTFT` arguments (``n_fft``, ``hop_length`` in samples, ...).

    Input ``(batch, time)``; output ``(batch, len(windows), freq, time // hop_length + 1)``.
    """

    def __init__(self, sample_rate: int, windows: Sequence[str] = ("hann", "hamming", "blackman"), **kwargs):
        super().__init__()
        if not windows:
            raise ValueError("AdaSTFTStack needs at least one window name")
        self.members = nn.ModuleList(AdaSTFT(sample_rate, window=name, **kwargs) for name in windows)

    drift = AdaSTFT.drift

    def window_change(self) -> float:
        """Mean over members of :meth:`AdaSTFT.window_change`."""
        return sum(m.window_change() for m in self.members) / len(self.members)

    def kernel_change(self) -> float:
        """Mean over members of :meth:`AdaSTFT.kernel_change`."""
        return sum(m.kernel_change() for m in self.members) / len(self.members)

    def export_learned(self) -> dict:
        """Each member's :meth:`AdaSTFT.export_learned` arrays stacked, one row per window (``window``
        ``(n_windows, n_fft)``, ...), with the shared scalars."""
        import numpy as np  # here: this module's math is torch; only the export speaks numpy

        parts = [m.export_learned() for m in self.members]
        return {k: np.stack([p[k] for p in parts]) if isinstance(v, np.ndarray) else v for k, v in parts[0].items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members], dim=1)


def _gaussian_lambdas(config: dict, sample_rate: int | None) -> tuple[float, float, float | None]:
    """``(initial, floor, ceiling)`` lambda in samples from the DMEL window keys (the ceiling ``None``: the
    signal length); the ms keys need a sample rate."""
    def samples(key: str) -> float | None:
        if config[key] is None:
            return None
        if not sample_rate:
            raise ValueError(f"{key} needs audio with a sample rate; {NO_RATE_FIXES[key]}")
        return F.ms_to_lambd(config[key], sample_rate)

    init = samples("init_window_ms") or config["init_lambd"]
    floor = max(config["min_lambd"], samples("min_window_ms") or 0.0)
    return init, floor, samples("max_window_ms")


# the DMEL window keys in ms, on data without a sample rate -> what to give instead
NO_RATE_FIXES = {"init_window_ms": "give init_lambd (samples; lambda = window / 6) instead",
                 "min_window_ms": "give min_lambd (samples) instead",
                 "max_window_ms": "leave it None (the ceiling is the signal length)"}


def gaussian_window_ms(config, sample_rate: float) -> float:
    """The initial window 6 lambda in ms: ``init_window_ms``, else ``6 init_lambd`` samples at ``sample_rate``."""
    ms = config["init_window_ms"]
    return ms if ms is not None else 6000.0 * config["init_lambd"] / sample_rate


def _gaussian_problems(config: dict, sample_rate: int | None, n_points: int) -> list[str]:
    """The ms keys need a sample rate; the initial window lies between the higher of the two floors and
    the lower of the two ceilings (the model's input, ``max_window_ms``)."""
    if not sample_rate:
        in_ms = [f"{key}={config[key]!r}: {config['dataset_name']} has no sample rate; {fix}"
                 for key, fix in NO_RATE_FIXES.items() if config[key] is not None]
        if in_ms:
            return in_ms
    init, floor, ceiling = _gaussian_lambdas(config, sample_rate)
    ceiling = n_points if ceiling is None else min(n_points, ceiling)
    return initial_width_problems(config, sample_rate, init, floor, ceiling,
                                  f"min_lambd/min_window_ms to the model's input of {n_points} samples/max_window_ms")


def initial_width_problems(config: dict, sample_rate: int | None, init: float, floor: float, ceiling: float,
                           limits: str) -> list[str]:
    """``[]`` when the initial width ``init`` (samples) lies in ``[floor, ceiling]``, else one line naming the
    key that set it (``init_lambd`` in samples, or ``init_window_ms`` in ms at ``sample_rate``) and the
    bounds; ``limits`` names the keys behind the bounds."""
    if floor <= init <= ceiling:
        return []
    if config["init_window_ms"] is None:
        return [f"init_lambd={config['init_lambd']!r}: outside [{floor:g}, {ceiling:g}] samples ({limits}); "
                "choose a lambda inside"]
    return [f"init_window_ms={config['init_window_ms']!r}: outside [{F.lambd_to_ms(floor, sample_rate):g}, "
            f"{F.lambd_to_ms(ceiling, sample_rate):g}] ms at {sample_rate} Hz ({limits}); choose a window inside"]


@register_frontend(
    "gaussian", label=lambda c: "DMEL trainable" if c["trainable"] else "DMEL fixed",
    description="DMEL (mel models) / DSPEC (spec models): Gaussian window of learnable width lambda "
                "(trainable=False: the fixed baseline)",
    features=("mel", "spec"), initial_window=gaussian_window_ms, needs_sample_rate=False,
    problems=_gaussian_problems, drift=("lambd_change",),
    defaults={
        "trainable": True,            # learn lambda; False = fixed-resolution baseline
        "init_lambd": 6.38,           # initial window std, samples
        "init_window_ms": None,       # initial window length 6 lambda in ms (overrides init_lambd; needs audio)
        "min_lambd": 0.5,             # floor for lambda, samples (the ceiling is the signal length)
        "min_window_ms": None,        # floor for the DMEL window 6 lambda, ms (None: min_lambd only; the higher floor wins)
        "max_window_ms": None,        # ceiling on the DMEL window 6 lambda, ms (None: the clip length)
        "lambd_param": "abs",         # abs: lambda = |parameter| in samples (the paper's) | log: lambda = exp(parameter), never 0; lr_tf is then per log unit (Adam ~ a factor exp(lr_tf) per step: use ~0.075, not 1)
        "window_mode": "full",        # full | optimized
        "normalize_window": False,    # False: Gaussian window of peak 1, as every grid of the DMEL paper (normalize_window: False); True: unit energy
    })
def build_gaussian(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    """DSPEC (``feature="spec"``) or DMEL (``"mel"``): ``init_lambd`` in samples or ``init_window_ms``,
    the floor ``min_lambd`` in samples and/or ``min_window_ms`` (the higher wins), the ceiling
    ``max_window_ms``, ``lambd_param``, ..."""
    init_lambd, min_lambd, max_lambd = _gaussian_lambdas(config, sample_rate)
    spec_kwargs = dict(init_lambd=init_lambd, n_points=n_points, hop_length=config["hop_length"],
                       window_mode=config["window_mode"], normalize_window=config["normalize_window"],
                       trainable=config["trainable"], min_lambd=min_lambd, max_lambd=max_lambd,
                       lambd_param=config["lambd_param"])
    if feature == "mel":
        if not sample_rate:
            raise ValueError("frontend='gaussian' with a mel model needs audio with a sample rate (DMEL's mel bands "
                             "are in Hz); use a spec model (linear_net, mlp_net, conv_net) on the synthetic data")
        return DMEL(sample_rate=sample_rate, n_mels=config["n_mels"], log=config["compression"] == "log", **spec_kwargs)
    return GaussianSpectrogram(**spec_kwargs)


@register_frontend(
    "torchaudio_mel", label=lambda c: "fixed mel (dB)" if c["top_db"] is not None else "fixed mel",
    description="torchaudio's fixed log-mel (Hann window of fixed_win_ms)", window_key="fixed_win_ms",
    defaults={
        "fixed_win_ms": 25.0,         # torchaudio_mel and trainable_mel Hann window, ms
        "top_db": None,               # torchaudio_mel: None = log(. + 1e-10); a number = dB floored top_db below the max
    })
def build_torchaudio_mel(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    """:class:`FixedMel`: Hann window of ``fixed_win_ms``, ``n_mels`` bands every ``hop_length`` samples."""
    return FixedMel(sample_rate, win_ms=config["fixed_win_ms"], hop_length=config["hop_length"],
                    n_mels=config["n_mels"], top_db=config["top_db"], log=config["compression"] == "log")


def _adastft_label(config) -> str:
    learned = "window+kernels" if config["learn_kernels"] else "window" if config["learn_window"] else "fixed"
    window = config["stft_window"]
    return f"Ada-STFT {learned}" + ("" if window == "hann" else f" ({window})")


def _adastft_problems(config: dict, sample_rate: int | None, n_points: int) -> list[str]:
    """``stft_window``: parameter-free scipy window names joined by ``+``."""
    if not isinstance(config["stft_window"], str):
        return [f"stft_window={config['stft_window']!r}: must be a window name such as 'hann' or 'hann+hamming'"]
    out = []
    for name in config["stft_window"].split("+"):
        try:
            F.stft_window(name, 8)
        except ValueError as err:
            out.append(f"stft_window={config['stft_window']!r}: {err}")
    return out


@register_frontend(
    "adastft", label=_adastft_label, features=("mel", "spec"),
    description="Ada-STFT: STFT with a learnable window (and optionally learnable DFT kernels)",
    initial_window=lambda c, rate: 1000.0 * c["n_fft"] / rate, problems=_adastft_problems,
    drift=("window_mse", "kernel_change"),
    defaults={
        "n_fft": 1024,                # adastft: DFT size = window length, samples
        "stft_window": "hann",        # adastft: scipy.signal window name; "hann+hamming+blackman" = one channel each
        "learn_window": True,         # adastft: learn the window coefficients
        "learn_kernels": False,       # adastft: learn the complex DFT kernels
    })
def build_adastft(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    """:class:`AdaSTFT`, or :class:`AdaSTFTStack` for ``stft_window`` names joined by ``+``; mel bands for
    ``feature="mel"``, the magnitude spectrogram for ``"spec"``."""
    kwargs = dict(sample_rate=sample_rate, n_fft=config["n_fft"], hop_length=config["hop_length"],
                  learn_window=config["learn_window"], learn_kernels=config["learn_kernels"],
                  n_mels=config["n_mels"] if feature == "mel" else None, log=config["compression"] == "log")
    windows = config["stft_window"].split("+")
    if len(windows) > 1:
        return AdaSTFTStack(windows=tuple(windows), **kwargs)
    return AdaSTFT(window=windows[0], **kwargs)
