"""Classifier heads and the registry of named models (front-end + head).

A model maps ``(batch, time)`` waveforms to ``(logits, spectrogram)``: logits
``(batch, n_classes)``, spectrogram ``(batch, freq, frames)`` from the front-end (or
``(batch, channels, freq, frames)`` for a stack of Ada-STFT front-ends).
Heads take their input size from the front-end's output shape, never hard-coded.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from models.augment import SpecAugment
from models.frontends import DMEL, AdaSTFT, AdaSTFTStack, FixedMel, GaussianSpectrogram
from models.functional import ms_to_lambd
from models.leaf import Leaf
from models.pcen import PCENCompressed
from models.sincnet import SincNet
from models.trainable_mel import TrainableMel
from models.varying_stft import VaryingSTFTMel


class LinearHead(nn.Sequential):
    """Dropout (train only) then one linear layer on the flattened ``(freq, frames)`` image."""

    def __init__(self, in_shape: tuple[int, int], n_classes: int, dropout: float = 0.0):
        super().__init__(nn.Flatten(), nn.Dropout(dropout), nn.Linear(math.prod(in_shape), n_classes))


class MLPHead(nn.Sequential):
    """Flatten -> linear(hidden) -> ReLU -> dropout -> linear(n_classes)."""

    def __init__(self, in_shape: tuple[int, int], n_classes: int, hidden: int = 32, dropout: float = 0.0):
        super().__init__(nn.Flatten(), nn.Linear(math.prod(in_shape), hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, n_classes))


class ConvHead(nn.Sequential):
    """5x5 'same' conv with ``channels`` maps -> ReLU -> FC ``hidden`` -> ReLU -> FC classes."""

    def __init__(self, in_shape: tuple[int, int], n_classes: int, channels: int = 32, hidden: int = 32):
        super().__init__(nn.Unflatten(1, (1, in_shape[0])), nn.Conv2d(1, channels, 5, padding="same"),
                         nn.ReLU(), nn.Flatten(), nn.Linear(channels * math.prod(in_shape), hidden), nn.ReLU(),
                         nn.Linear(hidden, n_classes))


def _image(spec: torch.Tensor) -> torch.Tensor:
    """``(batch, freq, frames)`` -> ``(batch, 1, freq, frames)``; 4-D input is returned as it is."""
    return spec if spec.dim() == 4 else spec.unsqueeze(1)


class ResNet18Head(nn.Module):
    """torchvision's ResNet18, trained from scratch, on a 1- or n-channel spectrogram image:
    the first convolution takes ``channels`` inputs and dropout precedes the output layer
    (the Ada-STFT system's variant)."""

    def __init__(self, in_shape: tuple[int, ...], n_classes: int, dropout: float = 0.2):
        super().__init__()
        channels = in_shape[0] if len(in_shape) == 3 else 1
        from torchvision.models import resnet18  # here, not at the top: torchvision imports torch._dynamo (1 s per process)

        self.net = resnet18(num_classes=n_classes)
        self.net.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.net.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.net.fc.in_features, n_classes))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.net(_image(spec))


class FMACNNHead(nn.Module):
    """The FMA system's CNN: four blocks [3x3 conv, ReLU, 2x2 max-pool, dropout] with 16, 32, 64 and
    128 channels, then a ``hidden``-unit ReLU layer and the output layer. Pooling rounds up
    (``ceil_mode``) so short segments still fit; the first linear layer's size comes from
    ``in_shape`` ``(freq, frames)`` or ``(channels, freq, frames)``."""

    def __init__(self, in_shape: tuple[int, ...], n_classes: int, hidden: int = 128, dropout: float = 0.2):
        super().__init__()
        layers, channels = [], in_shape[0] if len(in_shape) == 3 else 1
        for width in (16, 32, 64, 128):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
                       nn.Dropout(dropout)]
            channels = width
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            n_flat = self.features(_image(torch.zeros(1, *in_shape))).numel()
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(n_flat, hidden), nn.ReLU(),
                                        nn.Linear(hidden, n_classes))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(_image(spec)))


class ConvBlock5x5(nn.Sequential):
    """PANNs' ``ConvBlock5x5``: 5x5 'same' convolution without bias, batch norm, ReLU, 2x2 average pooling."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.Conv2d(in_channels, out_channels, 5, padding=2, bias=False), nn.BatchNorm2d(out_channels),
                         nn.ReLU(), nn.AvgPool2d(2))


class CNN6Head(nn.Module):
    """PANNs CNN6 (Kong et al., "PANNs", IEEE/ACM TASLP 2020), trained from scratch, as the DMEL code uses
    it for ESC-50 (``panns.py``, ``Cnn6``).

    Batch norm over the mel bins of the input; four :class:`ConvBlock5x5` with 64, 128, 256 and 512
    channels, each followed by dropout 0.2; the mean over frequency, then the max plus the mean over
    time; dropout 0.5; a 512-unit ReLU layer; the output layer (logits: the DMEL code's sigmoid is the
    ``bce`` loss's). As in that code, the output layer reads the 512 units without the second dropout
    (PANNs computes a dropped-out embedding there but does not feed it on), and convolution and linear
    weights start Xavier-uniform with zero biases.

    ``in_shape``: ``(freq, frames)`` (or ``(1, freq, frames)``); the four 2x2 poolings need at least
    16 bins and 16 frames. Input ``(batch, freq, frames)``, output ``(batch, n_classes)``.
    """

    def __init__(self, in_shape: tuple[int, ...], n_classes: int, widths: tuple[int, ...] = (64, 128, 256, 512),
                 hidden: int = 512):
        super().__init__()
        if len(in_shape) == 3 and in_shape[0] != 1:
            raise ValueError(f"CNN6 takes one spectrogram channel, got shape {in_shape}")
        n_freq, n_frames = in_shape[-2:]
        if min(n_freq, n_frames) < 2 ** len(widths):
            raise ValueError(f"CNN6 needs at least {2 ** len(widths)} bins and frames for {len(widths)} 2x2 poolings, "
                             f"got {n_freq} x {n_frames}")
        self.bn0 = nn.BatchNorm2d(n_freq)
        blocks, channels = [], 1
        for width in widths:
            blocks += [ConvBlock5x5(channels, width), nn.Dropout(0.2)]
            channels = width
        self.blocks = nn.Sequential(*blocks)
        self.fc1 = nn.Linear(channels, hidden)
        self.out = nn.Linear(hidden, n_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = _image(spec)                                   # (batch, 1, freq, frames)
        x = self.bn0(x.transpose(1, 2)).transpose(1, 2)    # batch norm per mel bin: (batch, freq, 1, frames)
        x = self.blocks(x)                                 # (batch, 512, freq / 16, frames / 16)
        x = x.mean(dim=2)                                  # over frequency: (batch, 512, frames / 16)
        x = x.amax(dim=2) + x.mean(dim=2)                  # over time: (batch, 512)
        x = torch.relu(self.fc1(nn.functional.dropout(x, 0.5, self.training)))
        return self.out(x)


def standardize(spec: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Each example to zero mean and unit standard deviation over all its bins and frames."""
    dims = tuple(range(1, spec.dim()))
    mean = spec.mean(dim=dims, keepdim=True)
    std = spec.std(dim=dims, keepdim=True)
    return (spec - mean) / (std + eps)


class Classifier(nn.Module):
    """Front-end, optional per-example standardisation and SpecAugment (training only), then a head.

    ``forward`` returns ``(logits, spectrogram)``, the spectrogram as the head sees it (before masks).
    ``amp=True`` runs the head under bfloat16 autocast on the input's device; the front-end (window
    gradient, FFT, log) always runs in float32, and the logits are returned as float32.
    """

    def __init__(self, frontend: nn.Module, head: nn.Module, standardize: bool = False,
                 spec_augment: SpecAugment | None = None, amp: bool = False):
        super().__init__()
        self.frontend, self.head, self.standardize = frontend, head, standardize
        self.spec_augment, self.amp = spec_augment, amp

    def features(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):  # the front-end stays float32
            spec = self.frontend(x.float())
        return standardize(spec) if self.standardize else spec

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spec = self.features(x)
        masked = self.spec_augment(spec) if self.spec_augment is not None else spec
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = self.head(masked)
        return logits.float(), spec

    def frontend_drift(self) -> dict[str, float]:
        """How far the front-end's learnable parameters moved from their initialisation, one
        float per name: Ada-STFT's ``window_mse`` and ``kernel_change`` (NaN for the others), plus
        whatever the front-end's own ``drift()`` returns (host floats; read once per epoch)."""
        drift = {"window_mse": math.nan, "kernel_change": math.nan}
        if hasattr(self.frontend, "drift"):
            drift.update(self.frontend.drift())
        return drift

    def gaussian_spectrogram(self) -> GaussianSpectrogram | None:
        """The learnable-window layer inside the front-end, if there is one."""
        fe = self.frontend.frontend if isinstance(self.frontend, PCENCompressed) else self.frontend
        return fe.spectrogram if isinstance(fe, DMEL) else fe if isinstance(fe, GaussianSpectrogram) else None


# name -> (feature, head class, head kwargs). feature "spec" = DSPEC power spectrogram, "mel" = log-mel.
MODELS = {
    "linear_net": ("spec", LinearHead, {}),
    "mlp_net": ("spec", MLPHead, {"hidden": 128}),
    "conv_net": ("spec", ConvHead, {}),
    "mel_linear_net": ("mel", LinearHead, {"dropout": 0.2}),
    "mel_mlp_net": ("mel", MLPHead, {"hidden": 32, "dropout": 0.2}),
    "mel_conv_net": ("mel", ConvHead, {}),
    "resnet18": ("mel", ResNet18Head, {"dropout": 0.2}),
    "fma_cnn": ("mel", FMACNNHead, {}),
    "cnn6": ("mel", CNN6Head, {}),
}
def _torchaudio_mel(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    if feature != "mel":
        raise ValueError(f"frontend='torchaudio_mel' needs a mel model, not {config['model_name']!r}")
    return FixedMel(sample_rate, win_ms=config["fixed_win_ms"], hop_length=config["hop_length"],
                    n_mels=config["n_mels"], top_db=config["top_db"], log=config["compression"] == "log")


def _adastft(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    kwargs = dict(sample_rate=sample_rate, n_fft=config["n_fft"], hop_length=config["hop_length"],
                  learn_window=config["learn_window"], learn_kernels=config["learn_kernels"],
                  n_mels=config["n_mels"] if feature == "mel" else None, log=config["compression"] == "log")
    windows = config["stft_window"].split("+")
    if len(windows) > 1:
        return AdaSTFTStack(windows=tuple(windows), **kwargs)
    return AdaSTFT(window=windows[0], **kwargs)


def _gaussian(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    """DSPEC (``spec`` models) or DMEL (``mel`` models): ``init_lambd`` in samples or
    ``init_window_ms``, the floor ``min_lambd`` in samples and/or ``min_window_ms`` (the higher
    wins), the ceiling ``max_window_ms``, ``lambd_param``, ..."""
    init_lambd = config["init_lambd"]
    if config["init_window_ms"] is not None:
        if not sample_rate:
            raise ValueError("init_window_ms needs audio with a sample rate; give init_lambd (samples) instead")
        init_lambd = ms_to_lambd(config["init_window_ms"], sample_rate)
    max_lambd = None
    if config["max_window_ms"] is not None:
        if not sample_rate:
            raise ValueError("max_window_ms needs audio with a sample rate")
        max_lambd = ms_to_lambd(config["max_window_ms"], sample_rate)
    min_lambd = config["min_lambd"]
    if config["min_window_ms"] is not None:
        if not sample_rate:
            raise ValueError("min_window_ms needs audio with a sample rate; give min_lambd (samples) instead")
        min_lambd = max(min_lambd, ms_to_lambd(config["min_window_ms"], sample_rate))
    spec_kwargs = dict(init_lambd=init_lambd, n_points=n_points, hop_length=config["hop_length"],
                       window_mode=config["window_mode"], normalize_window=config["normalize_window"],
                       trainable=config["trainable"], min_lambd=min_lambd, max_lambd=max_lambd,
                       lambd_param=config["lambd_param"])
    if feature == "mel":
        return DMEL(sample_rate=sample_rate, n_mels=config["n_mels"], log=config["compression"] == "log", **spec_kwargs)
    return GaussianSpectrogram(**spec_kwargs)


def _mel_only(name: str, config: dict, feature: str, sample_rate: int | None) -> None:
    """Raise unless ``feature`` is ``"mel"`` and there is a sample rate (the learnable filterbanks below
    give ``(batch, n_mels, frames)`` in Hz-defined bands)."""
    if feature != "mel":
        raise ValueError(f"frontend={name!r} gives (batch, n_mels, frames): it needs a mel model, "
                         f"not {config['model_name']!r}")
    if not sample_rate:
        raise ValueError(f"frontend={name!r} needs audio with a sample rate")


def _sincnet(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    """SincNet: ``n_mels`` sinc band-pass filters of ``sinc_window_ms`` (odd taps), energy every ``hop_length``."""
    _mel_only("sincnet", config, feature, sample_rate)
    kernel_size = int(round(config["sinc_window_ms"] * sample_rate / 1000)) // 2 * 2 + 1
    return SincNet(sample_rate, n_filters=config["n_mels"], kernel_size=kernel_size,
                   hop_length=config["hop_length"], log=config["compression"] == "log")


def _trainable_mel(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    """FixedMel's Hann STFT (``fixed_win_ms``) with a learnable mel filterbank."""
    _mel_only("trainable_mel", config, feature, sample_rate)
    return TrainableMel(sample_rate, win_ms=config["fixed_win_ms"], hop_length=config["hop_length"],
                        n_mels=config["n_mels"], log=config["compression"] == "log")


def _dstft(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    """Gaussian-window STFT whose width varies per ``dstft_variation``: initial width ``init_window_ms``
    (6 lambda, ms) or ``init_lambd`` (samples), floor ``min_lambd`` (samples), ceiling
    ``dstft_max_window_ms`` (6 lambda, ms; ``None``: twice the initial width)."""
    _mel_only("dstft", config, feature, sample_rate)
    init_lambd = config["init_lambd"]
    if config["init_window_ms"] is not None:
        init_lambd = ms_to_lambd(config["init_window_ms"], sample_rate)
    max_ms = config["dstft_max_window_ms"]
    return VaryingSTFTMel(sample_rate, n_points, init_lambd, hop_length=config["hop_length"],
                          n_mels=config["n_mels"], variation=config["dstft_variation"], min_lambd=config["min_lambd"],
                          max_lambd=None if max_ms is None else ms_to_lambd(max_ms, sample_rate),
                          log=config["compression"] == "log")


def _leaf(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    """LEAF: ``n_mels`` Gabor filters of ``leaf_window_ms`` at the full rate, pooling every ``hop_length``, then
    ``leaf_compression`` (sPCEN by default)."""
    _mel_only("leaf", config, feature, sample_rate)
    return Leaf(sample_rate, n_filters=config["n_mels"], window_ms=config["leaf_window_ms"],
                hop_length=config["hop_length"], compression=config["leaf_compression"])


def _efficientleaf(config: dict, feature: str, n_points: int, sample_rate: int | None) -> nn.Module:
    """EfficientLEAF: LEAF's filters in ``efficientleaf_groups`` groups, each a strided convolution
    (``efficientleaf_stride_factor``), then ``leaf_compression`` (sPCEN by default)."""
    _mel_only("efficientleaf", config, feature, sample_rate)
    return Leaf(sample_rate, n_filters=config["n_mels"], window_ms=config["leaf_window_ms"],
                hop_length=config["hop_length"], n_groups=config["efficientleaf_groups"],
                stride_factor=config["efficientleaf_stride_factor"], compression=config["leaf_compression"])


# The front-end registry: config["frontend"] -> builder(config, feature, n_points, sample_rate),
# where feature is the model's "spec" or "mel" (see MODELS). A new front-end is one builder here.
FRONTEND_BUILDERS = {
    "gaussian": _gaussian,
    "torchaudio_mel": _torchaudio_mel,
    "adastft": _adastft,
    "sincnet": _sincnet,
    "trainable_mel": _trainable_mel,
    "dstft": _dstft,
    "leaf": _leaf,
    "efficientleaf": _efficientleaf,
}
FRONTENDS = tuple(FRONTEND_BUILDERS)
COMPRESSIONS = ("log", "pcen")  # config["compression"]: the front-end's own log, or PCEN on its energies
OWN_COMPRESSION = ("leaf", "efficientleaf")  # end in sPCEN: compression="pcen" is refused


def build_frontend(config: dict, n_points: int, sample_rate: int | None) -> nn.Module:
    """The front-end ``config["frontend"]`` names, for ``model_name``'s feature, built for signals
    of ``n_points`` samples at ``sample_rate`` Hz (``None`` for the synthetic data).
    ``compression="pcen"``: built without its log and wrapped in :class:`models.pcen.PCENCompressed`."""
    if config["frontend"] not in FRONTEND_BUILDERS:
        raise ValueError(f"unknown frontend {config['frontend']!r}; choose one of {FRONTENDS}")
    if config["compression"] not in COMPRESSIONS:
        raise ValueError(f"unknown compression {config['compression']!r}; choose one of {COMPRESSIONS}")
    feature = MODELS[config["model_name"]][0]
    frontend = FRONTEND_BUILDERS[config["frontend"]](config, feature, n_points, sample_rate)
    if config["compression"] == "log":
        return frontend
    if config["frontend"] in OWN_COMPRESSION:
        raise ValueError(f"frontend={config['frontend']!r} ends in its own sPCEN: use compression='log' "
                         "(the default; it adds nothing to this front-end)")
    with torch.no_grad():  # PCEN has one set of parameters per band of the front-end's output
        n_bands = frontend(torch.zeros(1, n_points)).shape[-2]
    return PCENCompressed(frontend, n_bands)


def build_model(config: dict, n_points: int, n_classes: int, sample_rate: int | None = None) -> Classifier:
    """Model named by ``config["model_name"]`` for signals of ``n_points`` samples."""
    if config["model_name"] not in MODELS:
        raise ValueError(f"unknown model_name {config['model_name']!r}; choose one of {sorted(MODELS)}")
    frontend = build_frontend(config, n_points, sample_rate)
    with torch.no_grad():
        in_shape = tuple(frontend(torch.zeros(1, n_points)).shape[1:])
    _, head_cls, head_kwargs = MODELS[config["model_name"]]
    masks = config["specaugment_freq"], config["specaugment_time"]
    return Classifier(frontend, head_cls(in_shape, n_classes, **head_kwargs), standardize=config["standardize"],
                      spec_augment=SpecAugment(*masks) if any(masks) else None, amp=config["amp"])


