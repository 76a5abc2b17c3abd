"""Classifier heads and the registry of named models (front-end + head).

A model maps ``(batch, time)`` waveforms to ``(logits, spectrogram)``: logits
``(batch, n_classes)``, spectrogram ``(batch, freq, frames)`` from the front-end.
Heads take their input size from the front-end's output shape, never hard-coded.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from models.frontends import DMEL, FixedMel, GaussianSpectrogram


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


class Classifier(nn.Module):
    """Front-end followed by a head; ``forward`` returns ``(logits, spectrogram)``."""

    def __init__(self, frontend: nn.Module, head: nn.Module):
        super().__init__()
        self.frontend, self.head = frontend, head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        spec = self.frontend(x)
        return self.head(spec), spec

    def gaussian_spectrogram(self) -> GaussianSpectrogram | None:
        """The learnable-window layer inside the front-end, if there is one."""
        fe = self.frontend
        return fe.spectrogram if isinstance(fe, DMEL) else fe if isinstance(fe, GaussianSpectrogram) else None


# name -> (feature, head class, head kwargs). feature "spec" = DSPEC power spectrogram, "mel" = log-mel.
MODELS = {
    "linear_net": ("spec", LinearHead, {}),
    "mlp_net": ("spec", MLPHead, {"hidden": 128}),
    "conv_net": ("spec", ConvHead, {}),
    "mel_linear_net": ("mel", LinearHead, {"dropout": 0.2}),
    "mel_mlp_net": ("mel", MLPHead, {"hidden": 32, "dropout": 0.2}),
    "mel_conv_net": ("mel", ConvHead, {}),
}
FRONTENDS = ("gaussian", "torchaudio_mel")


def build_frontend(config: dict, n_points: int, sample_rate: int | None) -> nn.Module:
    """The front-end a config asks for (``frontend``, ``model_name``, ``init_lambd`` in samples, ...)."""
    feature = MODELS[config["model_name"]][0]
    if config["frontend"] == "torchaudio_mel":
        if feature != "mel":
            raise ValueError(f"frontend='torchaudio_mel' needs a mel model, not {config['model_name']!r}")
        return FixedMel(sample_rate, win_ms=config["fixed_win_ms"], hop_length=config["hop_length"],
                        n_mels=config["n_mels"])
    spec_kwargs = dict(init_lambd=config["init_lambd"], n_points=n_points, hop_length=config["hop_length"],
                       window_mode=config["window_mode"], normalize_window=config["normalize_window"],
                       trainable=config["trainable"], min_lambd=config["min_lambd"])
    if feature == "mel":
        return DMEL(sample_rate=sample_rate, n_mels=config["n_mels"], **spec_kwargs)
    return GaussianSpectrogram(**spec_kwargs)


def build_model(config: dict, n_points: int, n_classes: int, sample_rate: int | None = None) -> Classifier:
    """Model named by ``config["model_name"]`` for signals of ``n_points`` samples."""
    if config["model_name"] not in MODELS:
        raise ValueError(f"unknown model_name {config['model_name']!r}; choose one of {sorted(MODELS)}")
    if config["frontend"] not in FRONTENDS:
        raise ValueError(f"unknown frontend {config['frontend']!r}; choose one of {FRONTENDS}")
    frontend = build_frontend(config, n_points, sample_rate)
    with torch.no_grad():
        in_shape = tuple(frontend(torch.zeros(1, n_points)).shape[1:])
    _, head_cls, head_kwargs = MODELS[config["model_name"]]
    return Classifier(frontend, head_cls(in_shape, n_classes, **head_kwargs))


