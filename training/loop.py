"""Seeding, optimizer, schedule and one-epoch train/evaluate helpers (usable without Ray).

Both work on clips cut into segments of ``length`` samples (see :mod:`training.segments`);
with one segment per clip a segment is the whole example.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from corpora.splits import Rows
from models.classifiers import Classifier
from training.segments import aggregate, eval_plan, read_segments, train_plan


def allow_deterministic_cublas() -> None:
    """Set ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless it is set: a cuBLAS workspace under which torch allows
    deterministic matrix products. torch reads the variable once per process, at its first cuBLAS call, so
    it must be set before any CUDA work, whatever the process runs first (a ``deterministic=False`` trial
    in a reused Tune actor, an earlier test)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (every CUDA device too). ``deterministic``: deterministic
    kernels (bit-exact reruns and resumes, cuDNN autotuning off); an operation that has no
    deterministic kernel warns, naming itself, and runs: on CUDA that includes ResNet18's
    ``AdaptiveAvgPool2d`` backward (torch's list in ``torch.use_deterministic_algorithms``), which would
    otherwise stop every GPU trial of the music grids (such a run resumes, not bit-exactly; the warning
    says so). ``False`` lets cuDNN pick the fastest kernels, which may differ from run to run on a GPU."""
    allow_deterministic_cublas()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


LOSSES = ("ce", "bce")
OPTIMIZERS = ("sgd", "adam", "adamw")  # config["optimizer_name"]: make_optimizer


def classification_loss(logits: torch.Tensor, y: torch.Tensor, kind: str = "ce",
                        reduction: str = "mean") -> torch.Tensor:
    """Loss of ``(batch, n_classes)`` logits against ``(batch,)`` integer labels.

    ``kind="ce"``: softmax cross-entropy. ``"bce"``: sigmoid + binary cross-entropy against one-hot
    labels, averaged over the classes of each example (what the DMEL code trains PANNs CNN6 with:
    ``binary_cross_entropy(sigmoid(logits), one_hot)``, computed here from the logits for stability).
    ``reduction``: ``"mean"`` or ``"sum"`` over the batch, or ``"none"``: ``(batch,)`` per-example losses.
    """
    if kind == "ce":
        return F.cross_entropy(logits, y, reduction=reduction)
    if kind == "bce":
        target = F.one_hot(y, logits.shape[-1]).to(logits.dtype)
        per_example = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=-1)
        if reduction == "none":
            return per_example
        return per_example.sum() if reduction == "sum" else per_example.mean()
    raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")


def make_optimizer(model: Classifier, config: dict) -> torch.optim.Optimizer:
    """``optimizer_name`` over the model's parameter groups (:meth:`Classifier.learning_rate_groups`):
    everything at ``lr_model`` except what the front-end trains at a rate of its own (DMEL's lambda at
    ``lr_tf``; any learnable front-end at ``lr_frontend`` when that is set)."""
    groups = model.learning_rate_groups(config)
    name = config["optimizer_name"]
    decay = config["weight_decay"]
    if name == "sgd":
        return torch.optim.SGD(groups, momentum=config["momentum"], weight_decay=decay)
    if name == "adam":
        return torch.optim.Adam(groups, weight_decay=decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, weight_decay=decay)
    raise ValueError(f"unknown optimizer_name {name!r}; choose one of {OPTIMIZERS}")


def make_scheduler(opt: torch.optim.Optimizer, config: dict) -> torch.optim.lr_scheduler.ExponentialLR:
    """Learning rates times ``lr_gamma`` after every epoch (``lr_gamma=1``: constant)."""
    return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=config["lr_gamma"])


def train_epoch(model: Classifier, opt: torch.optim.Optimizer, x: torch.Tensor | Rows, y: torch.Tensor,
                batch_size: int, generator: torch.Generator, device: torch.device, length: int | None = None,
                mode: str = "random_crop", augment=None, loss_kind: str = "ce", sap=None,
                hop: int | None = None) -> float:
    """One pass over the shuffled training segments; returns the mean training loss.

    ``x``: ``(n_clips, n_points)`` clips; ``length``: segment length in samples (default the clip);
    ``mode``: ``random_crop`` or ``all`` (see :func:`training.segments.train_plan`; ``hop``: samples between
    segment starts for ``all``, default ``length``);
    ``augment``: optional callable on ``(batch, length)`` waveforms; ``loss_kind``: see
    :func:`classification_loss`; ``sap``: a :class:`training.sapaugment.SapPolicy` (per-example strengths
    from each batch's un-augmented losses, driving ``augment``, CutMix and SpecAugment), or ``None``. With a
    policy or the model's CutMix the step's loss mixes CutMix's labels (:func:`training.sapaugment.mixed_loss`).

    The step never waits for the device: the loss is summed on the device and read once at the
    end. (A front-end's ``after_step`` may read back: a trainable ``optimized``-mode DMEL window reads lambda
    once per step to size its FFT.)
    """
    model.train()
    n_points = x.shape[-1]
    length = length or n_points
    clips, offsets = train_plan(len(y), n_points, length, mode, generator, hop)
    src_clips, src_offsets = clips.to(_home(x)), offsets.to(_home(x))  # where the waveforms live
    clips_dev, y = clips.to(device), y.to(device)  # copied once per epoch, sliced on the device
    total = torch.zeros((), dtype=torch.float64, device=device)
    for start in range(0, len(clips), batch_size):
        batch = slice(start, start + batch_size)
        xb = read_segments(x, src_clips[batch], src_offsets[batch], length, device)
        yb = y[clips_dev[batch]]
        if sap is None and getattr(model, "cutmix", None) is None:
            if augment is not None:
                xb = augment(xb)
            logits, _ = model(xb)
            loss = classification_loss(logits, yb, loss_kind)
        else:  # SapAugment and/or CutMix (training/sapaugment.py; imported here: it imports this module)
            from training.sapaugment import mixed_loss, pass_strength

            strength = sap.strengths(model, xb, yb, loss_kind) if sap is not None else None
            if augment is not None:
                xb = pass_strength(augment, xb, strength)
            logits, mix = model.train_forward(xb, strength)
            loss = mixed_loss(logits, yb, mix, loss_kind)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.after_step()
        total += loss.detach().double() * len(yb)
    return float(total) / len(clips)


def _home(x: torch.Tensor | Rows) -> torch.device:
    """Where the waveforms ``x`` live: a tensor's device, the host for the rows of a cache."""
    return x.device if isinstance(x, torch.Tensor) else torch.device("cpu")


@dataclass
class Evaluation:
    """Results on one split. Clip-level numbers aggregate the segments of each clip."""
    loss: float                   # mean loss over segments (cross-entropy, or BCE with loss_kind="bce")
    accuracy: float               # clips, argmax of the mean segment logits
    accuracy_vote: float          # clips, majority vote of the segments
    accuracy_segment: float       # segments on their own
    predictions: np.ndarray       # (n_clips,) mean-logit class per clip
    votes: np.ndarray             # (n_clips,) majority-vote class per clip


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor | Rows, y: torch.Tensor, batch_size: int,
             device: torch.device, length: int | None = None, loss_kind: str = "ce",
             hop: int | None = None) -> Evaluation:
    """Every segment of every clip (``length`` samples every ``hop``, default ``length``) in eval mode
    (dropout and masks off), aggregated per clip.
    Losses (``loss_kind``, as in training) and logits stay on the device until the end (one
    transfer per call)."""
    model.eval()
    length = length or x.shape[-1]
    clips, offsets = eval_plan(len(y), x.shape[-1], length, hop)
    src_clips, src_offsets = clips.to(_home(x)), offsets.to(_home(x))
    clips_dev, y_dev = clips.to(device), y.to(device)
    total, parts = torch.zeros((), dtype=torch.float64, device=device), []
    for start in range(0, len(clips), batch_size):
        batch = slice(start, start + batch_size)
        logits, _ = model(read_segments(x, src_clips[batch], src_offsets[batch], length, device))
        total += classification_loss(logits, y_dev[clips_dev[batch]], loss_kind, reduction="sum")
        parts.append(logits.float())
    logits = torch.cat(parts).cpu()
    total = float(total)
    mean_logits, votes = aggregate(logits, clips, len(y))
    pred = mean_logits.argmax(dim=1)
    return Evaluation(loss=total / len(clips), accuracy=float((pred == y).double().mean()),
                      accuracy_vote=float((votes == y).double().mean()),
                      accuracy_segment=float((logits.argmax(1) == y[clips]).double().mean()),
                      predictions=pred.numpy(), votes=votes.numpy())
