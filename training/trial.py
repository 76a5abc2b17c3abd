"""One trial: build data and model from a config, train with early stopping, test the best model.

:func:`run_trial` holds the logic and takes a ``report`` callable and an optional checkpoint
directory to resume from, so it runs with or without Ray. :func:`train_trial` is the function
Ray Tune runs: it wires ``run_trial`` to ``tune.report`` / ``tune.get_checkpoint``.

Each checkpoint directory holds ``state.pt`` (model, optimizer, counters and RNG states: what a
resume needs), ``best_model.pt`` (the weights with the lowest validation loss so far) and
``config.json`` (and ``pretrained_keys.json`` with ``pretrained``: what the checkpoint gave, by name;
:class:`models.pretrained.KeyReport`). The final checkpoint adds ``predictions.csv`` (test clips, best model: mean-logit
and majority-vote predictions), ``confusion_matrix.csv`` (test, best model, mean-logit decisions)
and ``splits.json`` (the ids of every split).

Clips longer than one segment (``split_parts``/``segment_seconds``) are trained on segments and
evaluated per clip: ``*_accuracy`` aggregates each clip's segments by their mean logits,
``*_accuracy_vote`` by majority vote, ``*_accuracy_segment`` scores segments on their own.
Early stopping watches the validation loss over segments.
"""
from __future__ import annotations

import json
import math
import os
import random
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from corpora import load_splits
from models.classifiers import build_model, frozen_epochs
from models.functional import lambd_to_ms
from models.pretrained import KeyReport, load_pretrained
from models.stats import REPORT_KEYS, report_stats
from training.augment import build_waveform_augment
from training.config import resolve_config
from training.loop import LOSSES, evaluate, make_optimizer, make_scheduler, seed_everything, train_epoch
from training.metrics import class_metrics, confusion_table, unweighted_average_recall
from training.provenance import code_version
from training.sapaugment import build_sap_policy
from training.segments import segment_geometry

Report = Callable[[dict, "str | None"], None]  # (metrics, checkpoint directory or None)
DEVICES = ("auto", "cpu", "cuda")


def cuda_unusable_reason() -> str | None:
    """Why this process cannot use CUDA (torch build, driver, ``CUDA_VISIBLE_DEVICES``), or ``None``."""
    if torch.version.cuda is None:
        return f"this torch build ({torch.__version__}) has no CUDA support; install a CUDA build of torch"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1", "NoDevFiles"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU from this process"
    if not torch.cuda.is_available():
        shown = "unset" if visible is None else repr(visible)
        return (f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no usable GPU with "
                f"CUDA_VISIBLE_DEVICES {shown}: no NVIDIA driver, or one too old for CUDA {torch.version.cuda}")
    return None


def select_device(requested: str, assigned_gpus: float | None) -> torch.device:
    """The device a trial trains on.

    Args:
        requested: the ``device`` config key: ``auto``, ``cpu`` or ``cuda``.
        assigned_gpus: the GPU share Ray assigned the trial (0 for none), ``None`` outside Ray.
    ``auto`` means CUDA exactly when Ray assigned the trial a GPU (outside Ray: when CUDA is
    available), so a trial Ray did not count never touches a GPU. A trial that must use CUDA
    (``cuda``, or ``auto`` with a GPU assigned) raises ``RuntimeError`` with the reason when torch
    cannot use it, rather than training on the CPU without a word.
    """
    if requested not in DEVICES:
        raise ValueError(f"unknown device {requested!r}; choose one of {DEVICES}")
    if requested == "cpu" or (requested == "auto" and assigned_gpus == 0):
        return torch.device("cpu")
    if requested == "auto" and assigned_gpus is None:
        return torch.device("cuda" if cuda_unusable_reason() is None else "cpu")
    reason = cuda_unusable_reason()
    if reason is not None:
        given = f"Ray assigned this trial {assigned_gpus:g} GPU" if assigned_gpus else "device='cuda' was asked for"
        raise RuntimeError(f"{given}, but torch cannot use CUDA on node {node_address()}: {reason}")
    return torch.device("cuda", torch.cuda.current_device())


def node_address() -> str:
    """This node's IP address as Ray knows it (the host name outside Ray)."""
    try:
        import ray

        if ray.is_initialized():
            return ray.util.get_node_ip_address()
    except ImportError:  # pragma: no cover - ray is a requirement
        pass
    return socket.gethostname()


def _ray_context() -> tuple[str, float | None]:
    """``(node id, GPUs Ray assigned this worker)``; ``("", None)`` outside a Ray worker (a driver
    that called ``ray.init`` itself runs ``run_trial`` as any script does)."""
    import ray

    if not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return "", None
    ctx = ray.get_runtime_context()
    return ctx.get_node_id(), float(ctx.get_assigned_resources().get("GPU", 0.0))


def _set_threads() -> None:
    """Torch threads = the CPUs Ray gave the trial (Ray exports OMP_NUM_THREADS)."""
    n = os.environ.get("OMP_NUM_THREADS")
    if n and n.isdigit() and int(n) > 0:
        torch.set_num_threads(int(n))


def _check_data_dir(cfg: dict) -> None:
    """Stop at once, naming this node and the path, when the dataset folder is not here."""
    data_dir = cfg["data_dir"]
    if cfg["dataset_name"] != "time_frequency" and data_dir and not Path(data_dir).is_dir():
        raise FileNotFoundError(f"node {node_address()}: no dataset at {data_dir}; every node that runs trials "
                                "needs the data at the same absolute path (or on a shared filesystem)")


class CheckpointClock:
    """When a resume checkpoint is due: every ``every`` epochs (``None``: never by count) or once
    ``minutes`` have passed since the last one (``None``: never by time), whichever comes first,
    and always at the end. ``clock`` returns seconds (monotonic)."""

    def __init__(self, every: int | None, minutes: float | None, start_epoch: int = 0,
                 clock: Callable[[], float] = time.monotonic):
        if every is not None and every < 1:
            raise ValueError(f"checkpoint_every must be at least 1 epoch (or None), got {every}")
        self.every, self.minutes, self.clock = every, minutes, clock
        self.last_epoch, self.last_time = start_epoch, clock()

    def due(self, epochs_done: int, done: bool) -> bool:
        """Whether to checkpoint after ``epochs_done`` epochs; marks the checkpoint as taken if so."""
        now = self.clock()
        due = (done or (self.every is not None and epochs_done - self.last_epoch >= self.every)
               or (self.minutes is not None and now - self.last_time >= 60 * self.minutes))
        if due:
            self.last_epoch, self.last_time = epochs_done, now
        return due


def run_trial(config: dict, report: Report, restore_dir: str | None = None) -> dict:
    """Train one configuration to early stop or ``max_epochs``; return the final metrics.

    ``report(metrics, checkpoint_dir)`` is called once per epoch; ``checkpoint_dir`` is a
    temporary directory (deleted after the call) when a checkpoint is due (see
    :class:`CheckpointClock`), else ``None``. The best weights are kept in memory and written
    with each checkpoint. The last report carries ``test_accuracy``/``test_loss`` of the best
    model and ``done=True``.
    """
    cfg = resolve_config(config)
    if cfg["classifier"] is not None:  # a scikit-learn head on embeddings (transfer/trial.py)
        from transfer.trial import run_transfer_trial

        seed_everything(cfg["seed"], cfg["deterministic"])
        return run_transfer_trial(cfg, report)
    if cfg["loss"] not in LOSSES:
        raise ValueError(f"unknown loss {cfg['loss']!r}; choose one of {LOSSES}")
    seed_everything(cfg["seed"], cfg["deterministic"])
    _set_threads()
    node_id, assigned_gpus = _ray_context()
    device = select_device(cfg["device"], assigned_gpus)
    if device.type == "cuda" and assigned_gpus and assigned_gpus < 1:
        # this trial's share of the GPU: its own growth fails it, not the trials beside it
        torch.cuda.set_per_process_memory_fraction(assigned_gpus, device)
    _check_data_dir(cfg)
    data = load_splits(cfg).waveforms_to(device)
    length, hop = segment_geometry(cfg, data.n_points, data.sample_rate)  # samples per segment (the model's input), between starts
    model = build_model(cfg, length, data.n_classes, data.sample_rate).to(device)
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, cfg)
    augment = build_waveform_augment(cfg, data.sample_rate)
    sap = build_sap_policy(cfg)  # SapAugment: per-example strengths from each batch's losses (None: off)
    gen = torch.Generator().manual_seed(cfg["seed"])
    st = {"epoch": 0, "best_valid_loss": math.inf, "best_valid_acc": 0.0, "best_valid_acc_vote": 0.0,
          "best_valid_acc_segment": 0.0, "best_epoch": -1,
          "best_frontend": model.frontend_metrics(data.sample_rate), "epochs_since_best": 0}
    if cfg["pretrained"] and restore_dir is None:  # PANNs' CNN6 (a resume restores the fine-tuned weights)
        keys = load_pretrained(model, cfg, data.sample_rate)
        print(keys.text(), flush=True)
        st["pretrained"] = keys.as_dict()  # kept with the counters: the report outlives a resume
    best_weights = _copy_weights(model)

    if restore_dir is not None:
        st, best_weights = _load_checkpoint(Path(restore_dir), model, opt, sched, gen, device)
        st.setdefault("best_frontend", _older_best_frontend(st, data.sample_rate))
    clock = CheckpointClock(cfg["checkpoint_every"], cfg["checkpoint_minutes"], st["epoch"])

    sample_rate = data.sample_rate
    test_placeholders = {key: math.nan for key in _test_metric_names(data.class_names)}
    where = {"device": str(device), "node_id": node_id, "node_ip": node_address()}
    metrics: dict = {}
    for epoch in range(st["epoch"], cfg["max_epochs"]):
        if cfg["fine_learning_rate"] is not None and epoch == frozen_epochs(cfg):
            opt.param_groups[0]["lr"] = cfg["fine_learning_rate"]  # lr_model's group (a resume restores it later on)
        lr = opt.param_groups[0]["lr"]
        model.set_frontend_training(cfg, epoch)  # frozen during the first tf_warmup_epochs
        model.set_head_training(cfg, epoch)  # the output layer alone during the first freeze_epochs/pre_epochs, then finetune_layers
        loss = train_epoch(model, opt, data.x_train, data.y_train, cfg["batch_size"], gen, device, length,
                           cfg["train_segments"], augment, cfg["loss"], sap, hop)
        sched.step()
        valid = evaluate(model, data.x_valid, data.y_valid, cfg["batch_size"], device, length, cfg["loss"], hop)
        valid_uar = unweighted_average_recall(data.y_valid.numpy(), valid.predictions, data.n_classes)
        frontend_metrics = model.frontend_metrics(sample_rate)
        if valid.loss < st["best_valid_loss"]:
            st.update(best_valid_loss=valid.loss, best_valid_acc=valid.accuracy, best_valid_uar=valid_uar,
                      best_valid_acc_vote=valid.accuracy_vote, best_valid_acc_segment=valid.accuracy_segment,
                      best_epoch=epoch, best_frontend=frontend_metrics, epochs_since_best=0)
            best_weights = _copy_weights(model)
        else:
            st["epochs_since_best"] += 1
        st["epoch"] = epoch + 1
        done = st["epochs_since_best"] >= cfg["patience"] or epoch + 1 >= cfg["max_epochs"]
        metrics = {"epoch": epoch, "lr": lr, "loss": loss, "valid_loss": valid.loss, "valid_acc": valid.accuracy,
                   "valid_acc_vote": valid.accuracy_vote, "valid_acc_segment": valid.accuracy_segment,
                   "valid_uar": valid_uar, "best_valid_uar": st.get("best_valid_uar", math.nan),
                   "best_valid_loss": st["best_valid_loss"], "best_valid_acc": st["best_valid_acc"],
                   # the same best epoch's vote/segment accuracies (NaN after resuming an older checkpoint)
                   "best_valid_acc_vote": st.get("best_valid_acc_vote", math.nan),
                   "best_valid_acc_segment": st.get("best_valid_acc_segment", math.nan),
                   "code_version": code_version(),
                   "best_epoch": st["best_epoch"], **frontend_metrics,
                   **{f"best_{k}": v for k, v in st["best_frontend"].items()},
                   **{f"frontend_{k}": v for k, v in model.frontend_drift().items()},
                   "done": done, **where, **test_placeholders}  # fixed schema for progress.csv
        metrics.update({f"n_{k}": v for k, v in data.info.items()})
        if "pretrained" in st:
            metrics.update(KeyReport.from_dict(st["pretrained"]).counts())  # pretrained_loaded/_missing/_unexpected
        if done:
            metrics.update(_final_test(model, best_weights, data, cfg, device, length, hop))
        if not clock.due(epoch + 1, done):
            report(metrics, None)
            continue
        with tempfile.TemporaryDirectory() as ckpt:
            _save_checkpoint(Path(ckpt), model, opt, sched, gen, st, best_weights, cfg)
            if done:
                _write_test_artifacts(Path(ckpt), metrics.pop("_test"), data)
            report(metrics, ckpt)
        if done:
            break
    return metrics


def _older_best_frontend(st: dict, sample_rate: int | None) -> dict:
    """The best epoch's front-end metrics of a checkpoint written before they were kept per front-end
    (it kept DMEL's lambda as ``best_lambd``, NaN for the others)."""
    lambd = st.pop("best_lambd", math.nan)
    if math.isnan(lambd):
        return {}
    return {"lambd_est": lambd, **({"lambd_ms": lambd_to_ms(lambd, sample_rate)} if sample_rate else {})}


def _copy_weights(model) -> dict:
    """A copy of the model's weights where they live (a device-to-device copy on a GPU)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _save_checkpoint(ckpt: Path, model, opt, sched, gen, st: dict, best_weights: dict, cfg: dict) -> None:
    """Everything a resume needs (weights, optimizer, schedule, counters, every RNG, CUDA's
    included when it is in use) plus the best weights."""
    rng = {"generator": gen.get_state(), "torch": torch.get_rng_state(), "numpy": np.random.get_state(),
           "python": random.getstate()}
    if torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "state": st, "rng": rng}, ckpt / "state.pt")
    torch.save(best_weights, ckpt / "best_model.pt")
    if "pretrained" in st:  # what the PANNs checkpoint gave, by name (models.pretrained.KeyReport)
        (ckpt / "pretrained_keys.json").write_text(json.dumps(st["pretrained"], indent=1))
    (ckpt / "config.json").write_text(json.dumps(cfg, indent=1, default=str))


def _load_checkpoint(ckpt: Path, model, opt, sched, gen, device) -> tuple[dict, dict]:
    """Restore what :func:`_save_checkpoint` wrote; returns ``(counters, best weights on device)``.

    Everything is loaded on the CPU first (RNG states must be CPU byte tensors; a checkpoint
    written on a GPU loads on a CPU-only node), then the weights and optimizer state move to
    ``device`` as they are loaded into the model and optimizer.
    """
    saved = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    sched.load_state_dict(saved["scheduler"])
    rng = saved["rng"]
    gen.set_state(rng["generator"])
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if device.type == "cuda" and "cuda" in rng and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])
    best = torch.load(ckpt / "best_model.pt", map_location="cpu", weights_only=True)
    return saved["state"], {k: v.to(device) for k, v in best.items()}


def _test_metric_names(class_names: list[str]) -> list[str]:
    return ["test_loss", "test_accuracy", "test_accuracy_vote", "test_accuracy_segment", "test_macro_f1",
            "test_uar", *(f"test_recall/{name}" for name in class_names), *REPORT_KEYS]


def _final_test(model, best_weights, data, cfg, device, length: int, hop: int) -> dict:
    """Evaluate the best weights on the test split (the model's current weights are kept)."""
    current = _copy_weights(model)
    model.load_state_dict(best_weights)
    test = evaluate(model, data.x_test, data.y_test, cfg["batch_size"], device, length, cfg["loss"], hop)
    stats = report_stats(model, length)  # of the tested weights (models/stats.py: parameters, FLOPs, bytes, latency)
    model.load_state_dict(current)
    per_class = class_metrics(data.y_test.numpy(), test.predictions, data.class_names)
    return {"test_loss": test.loss, "test_accuracy": test.accuracy, "test_accuracy_vote": test.accuracy_vote,
            "test_accuracy_segment": test.accuracy_segment, **{f"test_{k}": v for k, v in per_class.items()},
            **stats, "_test": test}


def _write_test_artifacts(ckpt: Path, test, data) -> None:
    labels = data.y_test.numpy()
    pd.DataFrame({"id": data.ids_test, "label": labels, "prediction": test.predictions,
                  "vote": test.votes}).to_csv(ckpt / "predictions.csv", index=False)
    confusion_table(labels, test.predictions, data.class_names).to_csv(ckpt / "confusion_matrix.csv")
    (ckpt / "splits.json").write_text(json.dumps(
        {"train": data.ids_train, "valid": data.ids_valid, "test": data.ids_test}))
    # what predict.py needs to read new audio as this corpus did: class i's name, the rate, the clip length
    (ckpt / "classes.json").write_text(json.dumps(
        {"class_names": list(data.class_names), "sample_rate": data.sample_rate, "n_points": data.n_points}))


def train_trial(config: dict) -> None:
    """The Ray Tune trainable: resumes from ``tune.get_checkpoint()`` and reports each epoch."""
    from ray import tune

    def report(metrics: dict, ckpt_dir: str | None) -> None:
        checkpoint = tune.Checkpoint.from_directory(ckpt_dir) if ckpt_dir else None
        tune.report(metrics, checkpoint=checkpoint)

    try:
        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            run_trial(config, report)
            return
        with checkpoint.as_directory() as restore_dir:
            run_trial(config, report, restore_dir=restore_dir)
    finally:  # the actor may be reused for the next trial: hand its GPU memory back
        if torch.cuda.is_initialized():
            torch.cuda.empty_cache()
