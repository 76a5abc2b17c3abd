"""Training-step time of every configuration of the gtzan or fma grid at full size, and the epoch it projects.

    python benchmarks/bench_grid_step.py --grid gtzan [--threads 2] [--repeats 2] [--device cpu|cuda]

For each distinct (front-end variant, segment setting) of the grid: build the model the trial
builds, then time forward + backward + optimizer step on a random batch of the grid's batch size
and segment length (no data needed). Prints the median step time and the training epoch it
projects (GTZAN: 443 filtered training clips, one crop each; FMA small: 6,400 clips x segments).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import search_spaces  # noqa: E402
from figures.results import frontend_label, initial_window_ms  # noqa: E402
from models.classifiers import build_model  # noqa: E402
from training.loop import make_optimizer  # noqa: E402
from training.segments import n_segments  # noqa: E402
from tuning.runner import expand_grid  # noqa: E402

TRAIN_CLIPS = {"gtzan": 443, "fma": 6400}
N_CLASSES = {"gtzan": 10, "fma": 8}


def step_seconds(cfg: dict, device: torch.device, repeats: int) -> tuple[float, int, int]:
    """Median seconds of one training step, the segment length (samples) and steps per epoch."""
    n_points = round(cfg["clip_seconds"] * cfg["sample_rate"])
    parts = n_segments(cfg)
    length = n_points // parts
    model = build_model(cfg, length, N_CLASSES[cfg["dataset_name"]], cfg["sample_rate"]).to(device)
    opt = make_optimizer(model, cfg)
    x = torch.randn(cfg["batch_size"], length, device=device)
    y = torch.randint(0, N_CLASSES[cfg["dataset_name"]], (cfg["batch_size"],), device=device)
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        start = time.perf_counter()
        loss = F.cross_entropy(model(x)[0], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    examples = TRAIN_CLIPS[cfg["dataset_name"]] * (parts if cfg["train_segments"] == "all" else 1)
    return statistics.median(times[1:]), length, -(-examples // cfg["batch_size"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", choices=sorted(TRAIN_CLIPS), default="gtzan")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    configs = {}
    for cfg in expand_grid(search_spaces.get_space(args.grid, 1)):
        configs.setdefault((frontend_label(pd.Series({f"config/{k}": v for k, v in cfg.items()})),
                            initial_window_ms(pd.Series({f"config/{k}": v for k, v in cfg.items()})),
                            n_segments(cfg)), cfg)
    print(f"{args.grid} grid, one training step at full size on {args.device} ({args.threads} threads), "
          f"median of {args.repeats}")
    print(f"  {'front-end':26s} {'init ms':>7s} {'segments':>8s} {'batch':>5s} {'s/step':>7s} {'min/epoch':>9s}")
    for (label, init_ms, parts), cfg in sorted(configs.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])):
        seconds, _, steps = step_seconds(cfg, device, args.repeats)
        print(f"  {label:26s} {init_ms:7.1f} {parts:8d} {cfg['batch_size']:5d} {seconds:7.2f} "
              f"{seconds * steps / 60:9.1f}")


if __name__ == "__main__":
    main()
