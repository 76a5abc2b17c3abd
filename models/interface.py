"""The front-end interface: what the training loop and the trial ask of any front-end.

A front-end is an ``nn.Module`` mapping ``(batch, time)`` waveforms to ``(batch, freq, frames)`` (or
``(batch, channels, freq, frames)``). Beyond ``forward`` it MAY implement these methods; the functions
below supply the default where it does not, so the loop never asks which front-end it holds:

* ``learning_rate_groups(config) -> list[(parameters, learning rate)]``: parameters with their own
  learning rate. Default: every learnable parameter at ``lr_frontend`` when that key is set, else none
  (they train at ``lr_model`` with the head). DMEL's window answers ``[(lambda, lr_tf)]``.
* ``after_step()``: called after every optimiser step (DMEL: project lambda into its range).
* ``epoch_metrics(sample_rate) -> dict[str, float]``: host floats reported every epoch and, at the
  best epoch, as ``best_<name>`` (DMEL: ``lambd_est``, and ``lambd_ms`` when there is a sample rate).
* ``drift() -> dict[str, float]``: how far the learnable parameters moved from their initialisation,
  reported as ``frontend_<name>`` (read once per epoch).

The warm-up (``tf_warmup_epochs``) needs no method: the parameters that were learnable when the model
was built are frozen for those epochs (:meth:`models.classifiers.Classifier.set_frontend_training`).
"""
from __future__ import annotations

from typing import Iterable

from torch import nn

ParamGroups = list[tuple[list[nn.Parameter], float]]


def learning_rate_groups(frontend: nn.Module, config: dict) -> ParamGroups:
    """``frontend``'s parameters that train at a rate of their own, as ``[(parameters, lr)]``."""
    own = getattr(frontend, "learning_rate_groups", None)
    if own is not None:
        return own(config)
    return default_learning_rate_groups(frontend.parameters(), config)


def default_learning_rate_groups(parameters: Iterable[nn.Parameter], config: dict) -> ParamGroups:
    """Every learnable one of ``parameters`` at ``lr_frontend`` (none when ``lr_frontend`` is ``None``)."""
    learnable = [p for p in parameters if p.requires_grad]
    if config.get("lr_frontend") is None or not learnable:
        return []
    return [(learnable, config["lr_frontend"])]


def after_step(frontend: nn.Module) -> None:
    """The front-end's ``after_step`` (after each optimiser step), if it has one."""
    hook = getattr(frontend, "after_step", None)
    if hook is not None:
        hook()


def epoch_metrics(frontend: nn.Module, sample_rate: int | None) -> dict[str, float]:
    """The front-end's per-epoch metrics (host floats); ``{}`` when it reports none."""
    hook = getattr(frontend, "epoch_metrics", None)
    return hook(sample_rate) if hook is not None else {}


def drift(frontend: nn.Module) -> dict[str, float]:
    """The front-end's drift from its initialisation (host floats); ``{}`` when it reports none."""
    hook = getattr(frontend, "drift", None)
    return hook() if hook is not None else {}
