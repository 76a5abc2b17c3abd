"""Seeding, optimizer and one-epoch train/evaluate helpers (usable without Ray)."""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.classifiers import Classifier


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; ask torch for deterministic kernels."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def make_optimizer(model: Classifier, config: dict) -> torch.optim.Optimizer:
    """Two parameter groups: the window width at ``lr_tf``, everything else at ``lr_model``."""
    layer = model.gaussian_spectrogram()
    tf_params = [p for p in ([layer.lambd] if layer is not None else []) if p.requires_grad]
    tf_ids = {id(p) for p in tf_params}
    model_params = [p for p in model.parameters() if p.requires_grad and id(p) not in tf_ids]
    groups = [{"params": model_params, "lr": config["lr_model"]}]
    if tf_params:
        groups.append({"params": tf_params, "lr": config["lr_tf"]})
    name = config["optimizer_name"]
    if name == "sgd":
        return torch.optim.SGD(groups)
    if name == "adam":
        return torch.optim.Adam(groups)
    raise ValueError(f"unknown optimizer_name {name!r}; choose 'sgd' or 'adam'")


def train_epoch(model: Classifier, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                batch_size: int, generator: torch.Generator, device: torch.device) -> float:
    """One pass over shuffled ``(x, y)``; returns the mean training loss."""
    model.train()
    layer = model.gaussian_spectrogram()
    order = torch.randperm(len(y), generator=generator)
    total = 0.0
    for idx in order.split(batch_size):
        xb, yb = x[idx].to(device), y[idx].to(device)
        logits, _ = model(xb)
        loss = F.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if layer is not None:
            layer.project_()
        total += float(loss.detach()) * len(idx)
    return total / len(y)


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    predictions: np.ndarray  # (n,) predicted class per example


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
             device: torch.device) -> Evaluation:
    """Mean cross-entropy, accuracy and predictions in eval mode (dropout off)."""
    model.eval()
    total, preds = 0.0, []
    for start in range(0, len(y), batch_size):
        xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
        logits, _ = model(xb)
        total += float(F.cross_entropy(logits, yb, reduction="sum"))
        preds.append(logits.argmax(dim=1).cpu())
    pred = torch.cat(preds).numpy()
    return Evaluation(total / len(y), float((pred == y.numpy()).mean()), pred)
