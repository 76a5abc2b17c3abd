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
from models.batch_augment import CutMix, Mix
from models import interface
from models.frontends import DMEL, GaussianSpectrogram
from models.imagenet import ImageNetHead
from models.pcen import PCENCompressed
from models.registry import get_frontend


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


def output_layer(head: nn.Module) -> nn.Module:
    """The head's output layer, the one that trains while ``freeze_epochs`` holds the rest: its ``out``
    (CNN6) when it has one, else its last ``nn.Linear`` (every other head ends in one)."""
    if isinstance(getattr(head, "out", None), nn.Module):
        return head.out
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(head).__name__} has no output layer (no 'out', no nn.Linear) for freeze_epochs")
    return linears[-1]


def head_layers(head: nn.Module) -> list[nn.Module]:
    """The head's layers in order, as ``finetune_layers`` counts them: every module with parameters of its
    own (a convolution, a batch norm, a linear layer...), the output layer (:func:`output_layer`) excluded."""
    out = output_layer(head)
    return [m for m in head.modules() if m is not out and next(m.parameters(recurse=False), None) is not None]


def frozen_epochs(config: dict) -> int:
    """Epochs at the start in which only the head's output layer trains: ``freeze_epochs``, or ``pre_epochs``
    (DeepSpectrumLite's name for it; the larger of the two)."""
    return max(config["freeze_epochs"], config["pre_epochs"])


def standardize(spec: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Each example to zero mean and unit standard deviation over all its bins and frames."""
    dims = tuple(range(1, spec.dim()))
    mean = spec.mean(dim=dims, keepdim=True)
    std = spec.std(dim=dims, keepdim=True)
    return (spec - mean) / (std + eps)


class Classifier(nn.Module):
    """Front-end, optional per-example standardisation and SpecAugment (training only), then a head.

    ``forward`` returns ``(logits, spectrogram)``, the spectrogram as the head sees it (before masks).
    ``cutmix``: a :class:`models.batch_augment.CutMix`, used by :meth:`train_forward` only (training).
    ``amp=True`` runs the head under bfloat16 autocast on the input's device; the front-end (window
    gradient, FFT, log) always runs in float32, and the logits are returned as float32.
    """

    def __init__(self, frontend: nn.Module, head: nn.Module, standardize: bool = False,
                 spec_augment: SpecAugment | None = None, amp: bool = False, cutmix: CutMix | None = None):
        super().__init__()
        self.frontend, self.head, self.standardize = frontend, head, standardize
        self.spec_augment, self.amp, self.cutmix = spec_augment, amp, cutmix

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

    def train_forward(self, x: torch.Tensor, strength: torch.Tensor | None = None) -> tuple[torch.Tensor, Mix | None]:
        """A training step's forward with the batch augmentations: CutMix (when the model has one) then
        SpecAugment's masks, both sized by the per-example SapAugment ``strength`` when given. Returns
        ``(logits, mix)``, ``mix`` what CutMix did (``None`` without CutMix or in eval mode), for the loss
        (:func:`training.sapaugment.mixed_loss`)."""
        spec, mix = self.features(x), None
        if self.training and self.cutmix is not None:
            spec, mix = self.cutmix(spec, strength)
        if self.spec_augment is not None:
            spec = self.spec_augment(spec, strength)
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = self.head(spec)
        return logits.float(), mix

    def frontend_drift(self) -> dict[str, float]:
        """How far the front-end's learnable parameters moved from their initialisation, one host float per
        name (its ``drift()``; see :mod:`models.interface`; read once per epoch)."""
        return interface.drift(self.frontend)

    def frontend_metrics(self, sample_rate: int | None) -> dict[str, float]:
        """The front-end's per-epoch metrics (DMEL: ``lambd_est``, ``lambd_ms``), host floats."""
        return interface.epoch_metrics(self.frontend, sample_rate)

    def learning_rate_groups(self, config: dict) -> list[dict]:
        """Optimiser parameter groups: the front-end's own (:func:`models.interface.learning_rate_groups`),
        then every other learnable parameter at ``lr_model``."""
        own = interface.learning_rate_groups(self.frontend, config)
        taken = {id(p) for params, _ in own for p in params}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in taken]
        return [{"params": rest, "lr": config["lr_model"]}] + [{"params": params, "lr": lr} for params, lr in own]

    def set_frontend_training(self, config: dict, epoch: int) -> bool:
        """Freeze the front-end's learnable parameters for the first ``tf_warmup_epochs`` epochs (or
        :func:`frozen_epochs`, the longer) and release them afterwards; returns whether the front-end trains in
        ``epoch`` (0-based). "Learnable" is what was learnable when the model was built (a fixed DMEL window
        never trains). A frozen parameter gets no gradient, so the optimizer leaves it (and its Adam moments)
        untouched."""
        if not hasattr(self, "_frontend_learnable"):
            self._frontend_learnable = [p for p in self.frontend.parameters() if p.requires_grad]
        train = epoch >= max(config["tf_warmup_epochs"], frozen_epochs(config))
        for p in self._frontend_learnable:
            p.requires_grad_(train)
        return train and bool(self._frontend_learnable)

    def set_head_training(self, config: dict, epoch: int) -> bool:
        """Which head layers (:func:`head_layers`) train in ``epoch`` (0-based; derived from it alone, so a
        resumed trial freezes as the first run did): for the first :func:`frozen_epochs` none but the output
        layer (:func:`output_layer`; the front-end waits as long, :meth:`set_frontend_training`); afterwards
        the last ``finetune_layers`` share of them (1: all), the first ones staying frozen (DeepSpectrumLite's
        ``finetune_layer`` is the share kept frozen: ``finetune_layers = 1 - finetune_layer``). Returns whether
        all but the output layer are frozen. The optimizer keeps every parameter; a frozen one gets no
        gradient. The batch norms of frozen layers stay in eval mode in training too (their pretrained
        running statistics are used and kept, as in fine-tuning practice); dropout still drops."""
        if not hasattr(self, "_head_layers"):
            self._head_layers = [m for m in head_layers(self.head)
                                 if any(p.requires_grad for p in m.parameters(recurse=False))]
        layers = self._head_layers
        warm = epoch < frozen_epochs(config)
        if warm:
            self._frozen_layers = layers
        else:
            self._frozen_layers = layers[:math.floor(len(layers) * (1 - config["finetune_layers"]) + 1e-9)]
        frozen = {id(m) for m in self._frozen_layers}
        for m in layers:
            for p in m.parameters(recurse=False):
                p.requires_grad_(id(m) not in frozen)
        return warm or (bool(layers) and len(self._frozen_layers) == len(layers))

    def train(self, mode: bool = True) -> "Classifier":
        """``nn.Module.train``, except that the batch norms of frozen head layers stay in eval mode
        (:meth:`set_head_training`)."""
        super().train(mode)
        if mode:
            for module in getattr(self, "_frozen_layers", ()):
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def after_step(self) -> None:
        """The front-end's step after the optimiser's (DMEL: lambda back into its range)."""
        interface.after_step(self.frontend)

    def gaussian_spectrogram(self) -> GaussianSpectrogram | None:
        """The learnable-window layer inside the front-end, if there is one."""
        fe = self.frontend.frontend if isinstance(self.frontend, PCENCompressed) else self.frontend
        return fe.spectrogram if isinstance(fe, DMEL) else fe if isinstance(fe, GaussianSpectrogram) else None


# name -> (feature, head class, head kwargs): the feature the head is meant for ("spec": a power spectrogram
# over FFT bins, DSPEC; "mel": energies in bands, DMEL), which a front-end gives when it can
# (frontend_feature); the head takes its input size from whatever the front-end gives.
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
    "imagenet": ("mel", ImageNetHead, {}),  # a torchvision CNN on spectrogram images (models/imagenet.py; config keys cnn, weights_path, image_*)
}
COMPRESSIONS = ("log", "pcen")  # config["compression"]: the front-end's own log, or PCEN on its energies


def frontend_feature(config: dict) -> str:
    """What the front-end gives the head: ``config["feature"]`` when set, else the head's own feature
    (``MODELS``) when the front-end can give it, else the front-end's preferred one. So a head takes any
    front-end: ``linear_net`` reads a mel front-end's bands, the shape comes from the front-end."""
    record = get_frontend(config["frontend"])
    wanted = config["feature"] or MODELS[config["model_name"]][0]
    if wanted in record.features:
        return wanted
    if config["feature"] is not None:
        raise ValueError(f"feature={config['feature']!r}: frontend={record.name!r} gives {' or '.join(record.features)}")
    return record.features[0]


def build_frontend(config: dict, n_points: int, sample_rate: int | None) -> nn.Module:
    """The front-end ``config["frontend"]`` names (its registered builder), built for signals of
    ``n_points`` samples at ``sample_rate`` Hz (``None`` for the synthetic data), giving
    :func:`frontend_feature`. ``compression="pcen"``: built without its log and wrapped in
    :class:`models.pcen.PCENCompressed`."""
    record = get_frontend(config["frontend"])
    if config["compression"] not in COMPRESSIONS:
        raise ValueError(f"unknown compression {config['compression']!r}; choose one of {COMPRESSIONS}")
    if record.needs_sample_rate and not sample_rate:
        raise ValueError(f"frontend={record.name!r} needs audio with a sample rate (its filters are in Hz or ms)")
    frontend = record.build(config, frontend_feature(config), n_points, sample_rate)
    if config["compression"] == "log":
        return frontend
    if record.own_compression:
        raise ValueError(f"frontend={record.name!r} ends in its own compression: use compression='log' "
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
    head = (head_cls.from_config(in_shape, n_classes, config) if hasattr(head_cls, "from_config")
            else head_cls(in_shape, n_classes, **head_kwargs))
    masks = config["specaugment_freq"], config["specaugment_time"]
    cutmix = CutMix(config["cutmix_p"], config["cutmix_min"], config["cutmix_max"]) if config.get("cutmix") else None
    return Classifier(frontend, head, standardize=config["standardize"],
                      spec_augment=SpecAugment(*masks) if any(masks) else None, amp=config["amp"], cutmix=cutmix)


