"""One training epoch of the audio_mnist grid's largest configuration on CPU, broken down.

    python benchmarks/bench_epoch.py --data_dir=data/audio-mnist [--model mel_conv_net --window_ms 300]

Reports: decoding + splitting FSDD (once per process), batch assembly over the epoch, one
full training epoch (forward, backward, optimizer), the front-end alone (forward + backward
of DMEL over the same batches), their shares of the epoch, and the process's peak resident memory.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import search_spaces  # noqa: E402
from corpora import load_splits  # noqa: E402
from models.classifiers import build_model  # noqa: E402
from models.functional import ms_to_lambd  # noqa: E402
from training.config import resolve_config  # noqa: E402
from training.loop import make_optimizer, seed_everything, train_epoch  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default="data/audio-mnist")
    p.add_argument("--model", default="mel_conv_net")
    p.add_argument("--window_ms", type=float, default=300.0)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    space = {k: v for k, v in search_spaces.audio_mnist(1).items() if not isinstance(v, dict)}
    cfg = resolve_config({**space, "model_name": args.model, "trainable": True, "data_dir": args.data_dir,
                          "init_lambd": ms_to_lambd(args.window_ms, 8000)})
    seed_everything(0)

    t0 = time.perf_counter()
    data = load_splits(cfg)
    t_load = time.perf_counter() - t0
    model = build_model(cfg, data.n_points, data.n_classes, data.sample_rate)
    opt = make_optimizer(model, cfg)
    n_fft = model.frontend.spectrogram.geometry()[1]
    gen = torch.Generator().manual_seed(0)
    batches = torch.randperm(len(data.y_train), generator=gen).split(cfg["batch_size"])

    t0 = time.perf_counter()
    for idx in batches:
        data.x_train[idx], data.y_train[idx]
    t_batches = time.perf_counter() - t0

    train_epoch(model, opt, data.x_train[:64], data.y_train[:64], 64, gen, torch.device("cpu"))  # warm-up
    t0 = time.perf_counter()
    train_epoch(model, opt, data.x_train, data.y_train, cfg["batch_size"], gen, torch.device("cpu"))
    t_epoch = time.perf_counter() - t0

    t0 = time.perf_counter()
    for idx in batches:
        model.frontend(data.x_train[idx]).sum().backward()
    t_frontend = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"{args.model}, initial window {args.window_ms:g} ms (n_fft {n_fft}), "
          f"{len(data.y_train)} training examples, batch {cfg['batch_size']}, {args.threads} threads")
    print(f"  decode + split FSDD (once per process): {t_load:6.2f} s")
    print(f"  batch assembly over the epoch:          {t_batches:6.3f} s ({100 * t_batches / t_epoch:.1f} % of the epoch)")
    print(f"  one training epoch:                     {t_epoch:6.2f} s")
    print(f"  front-end forward + backward:           {t_frontend:6.2f} s ({100 * t_frontend / t_epoch:.0f} % of the epoch)")
    print(f"  peak resident memory:                   {peak_mb:6.0f} MB")


if __name__ == "__main__":
    main()
