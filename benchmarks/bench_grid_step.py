"""Training-step time and peak memory of every configuration of a grid at full size, and the epoch it projects.

    python benchmarks/bench_grid_step.py --grid NAME|all [--threads 2] [--repeats 2] [--device cpu|cuda]

For each configuration of the grid (a registered experiment, ``main.py --list``; axes that only pick data, like
``fold``, are measured once): build the model the trial builds, then time forward + backward +
optimizer step on a random batch of the grid's batch size and segment length (no data needed).
Each configuration runs in a fresh subprocess whose peak resident memory (Linux ``VmHWM``) is reset
after the imports: ``peak RSS`` is the process's peak from building the model to the last step
(Python and torch included, Ray not imported), ``+model`` its growth over the process before the
model was built. On CUDA it also prints ``torch.cuda.max_memory_allocated`` (peak reset before the
model is built). Prints the median step time and the training epoch it projects from the grid's
training set:

    time_frequency          3,500 signals of 128 samples (n_samples 5000, 70 %)
    audio_mnist(_reference) 1,050 FSDD clips of 5,500 samples at 8 kHz
    gtzan                   443 clips of 30 s (filtered split), one crop each per epoch
    fma                     6,400 clips of 30 s (fma_small) x segments per clip
    esc50(_folds)           1,400 clips of 5 s (70 % of 2,000; about the same with folds)
    audiomnist60            18,000 clips of 1 s (36 of 60 speakers)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from corpora import get_corpus  # noqa: E402
from models.classifiers import build_model  # noqa: E402
from models.registry import frontend_label, get_frontend  # noqa: E402
from training.loop import make_optimizer  # noqa: E402
from training.segments import n_segments  # noqa: E402

DATA_ONLY = ("seed", "fold", "protocol", "data_dir")  # config keys that do not change a training step
# dataset_name: (training clips, classes)
DATASETS = {"time_frequency": (3500, 3), "audio_mnist": (1050, 10), "gtzan": (443, 10), "fma": (6400, 8),
            "esc50": (1400, 50), "audiomnist60": (18000, 10)}


def training_set(cfg: dict) -> tuple[int, int]:
    """``(training clips, classes)`` of the grid's dataset."""
    if cfg["dataset_name"] not in DATASETS:
        raise KeyError(f"add the training-set size of {cfg['dataset_name']!r} to DATASETS in {__file__}")
    return DATASETS[cfg["dataset_name"]]


def clip_points(cfg: dict) -> int:
    """Samples per clip: ``n_points`` for the synthetic and FSDD data, ``clip_seconds`` for music."""
    if cfg["dataset_name"] in ("time_frequency", "audio_mnist"):
        return cfg["n_points"]
    return round(cfg["clip_seconds"] * cfg["sample_rate"])


def memory_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process from /proc, MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # kB
    raise KeyError(field)


def measure(cfg: dict, device: torch.device, repeats: int) -> dict:
    """Median seconds of one training step and the memory peaks; run in a fresh process."""
    Path("/proc/self/clear_refs").write_text("5")  # restart the peak (VmHWM) from the current resident size
    rss_before = memory_mb("VmRSS")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    clips, n_classes = training_set(cfg)
    length = clip_points(cfg) // n_segments(cfg)
    rate = None if cfg["dataset_name"] == "time_frequency" else cfg["sample_rate"]
    model = build_model(cfg, length, n_classes, rate).to(device)
    layer = model.gaussian_spectrogram()
    opt = make_optimizer(model, cfg)
    x = torch.randn(cfg["batch_size"], length, device=device)
    y = torch.randint(0, n_classes, (cfg["batch_size"],), device=device)
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        logits = model(x)[0]
        if cfg.get("loss", "ce") == "bce":  # sigmoid + binary cross-entropy on one-hot labels (CNN6)
            loss = F.binary_cross_entropy_with_logits(logits, F.one_hot(y, n_classes).float())
        else:
            loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if layer is not None:
            layer.project_()  # as training.loop.train_epoch does after each step
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    examples = clips * (n_segments(cfg) if cfg["train_segments"] == "all" else 1)
    peak = memory_mb("VmHWM")
    return {"seconds": statistics.median(times[1:]), "steps": -(-examples // cfg["batch_size"]),
            "rss_mb": peak, "model_mb": peak - rss_before,
            "cuda_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None}


def measure_in_subprocess(cfg: dict, args) -> dict:
    cmd = [sys.executable, __file__, "--config", json.dumps(cfg), "--device", args.device,
           "--threads", str(args.threads), "--repeats", str(args.repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"configuration failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def describe(cfg: dict) -> tuple[str, str]:
    """A front-end label and its initial window (lambda in samples for synthetic data, else ms)."""
    label = frontend_label(cfg)
    if not get_corpus(cfg["dataset_name"]).has_sample_rate:
        return label, f"lambda {cfg['init_lambd']:g}"
    return label, f"{get_frontend(cfg['frontend']).initial_window_ms(cfg, cfg['sample_rate']):.1f} ms"


def run_grid(name: str, args) -> None:
    from tuning.spaces import build_parts, expand_grid  # the grids import Ray; the measuring subprocesses do not

    configs = {}  # every part of an experiment of parts (window_search); a distribution's edges
    for cfg in (c for part in build_parts(name, 1, 1) for c in expand_grid(part.space)):
        configs.setdefault(json.dumps({k: v for k, v in cfg.items() if k not in DATA_ONLY}, sort_keys=True), cfg)
    configs = list(configs.values())
    clips, _ = training_set(configs[0])
    print(f"\n{name} grid: one training step at full size on {args.device} ({args.threads} threads), "
          f"median of {args.repeats}; {len(configs)} configurations, {clips} training clips of "
          f"{clip_points(configs[0])} samples; load average {os.getloadavg()[0]:.1f}")
    cuda = args.device.startswith("cuda")
    print(f"  {'model':14s} {'front-end':23s} {'init':>12s} {'segments':>8s} {'batch':>5s} {'s/step':>7s} "
          f"{'min/epoch':>9s} {'peak RSS MB':>11s} {'+model MB':>9s}" + (f" {'CUDA MB':>8s}" if cuda else ""))
    for cfg in configs:
        m = measure_in_subprocess(cfg, args)
        label, init = describe(cfg)
        print(f"  {cfg['model_name']:14s} {label:23s} {init:>12s} {n_segments(cfg):8d} {cfg['batch_size']:5d} "
              f"{m['seconds']:7.3f} {m['seconds'] * m['steps'] / 60:9.2f} {m['rss_mb']:11.0f} {m['model_mb']:9.0f}"
              + (f" {m['cuda_mb']:8.0f}" if cuda else ""), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", default="gtzan", help="a registered experiment (main.py --list), or all")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--config", help=argparse.SUPPRESS)  # internal: measure one JSON config in this process
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.config:
        print(json.dumps(measure(json.loads(args.config), torch.device(args.device), args.repeats)))
        return
    from tuning.experiments import list_experiments

    if args.grid != "all" and args.grid not in list_experiments():
        p.error(f"--grid: choose one of {', '.join(list_experiments())} or all")
    for name in list_experiments() if args.grid == "all" else [args.grid]:
        run_grid(name, args)


if __name__ == "__main__":
    main()
