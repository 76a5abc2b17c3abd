"""Decoding speed of FMA-like MP3s into the audio cache, and the cache build it projects for FMA.

    python benchmarks/bench_decode.py [--clips 16] [--sample_rate 22050] [--workers N]

Writes ``--clips`` synthetic 30 s, 44.1 kHz stereo MP3s (a chord with noise, VBR at libsndfile's highest
quality: about 0.9 MB, as an fma_small clip) into a temporary folder, then times
  decode_clip   each clip in this process: decode, downmix, resample to --sample_rate (what one core does);
  cached_audio  the whole cache build, fresh, with --workers processes (default all usable cores).
Prints clips/s per core, the projected cache build of fma_small (8,000 clips) and fma_medium (25,000)
on this machine (from the cached_audio rate), and the cache sizes (float16, 2 bytes a sample).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from corpora.audio_cache import cached_audio, decode_clip, usable_cores  # noqa: E402

CLIP_SECONDS, SOURCE_RATE = 30, 44100
FMA_CLIPS = {"fma_small": 8000, "fma_medium": 25000}


def music_like(seed: int) -> np.ndarray:
    """``(30 s * 44,100, 2)`` float32: a random three-note chord with a slow tremolo and noise, per channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(CLIP_SECONDS * SOURCE_RATE) / SOURCE_RATE
    out = np.empty((len(t), 2), dtype=np.float32)
    for ch in range(2):
        chord = sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(110, 1760, size=3))
        out[:, ch] = 0.2 * chord * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t)) + 0.02 * rng.standard_normal(len(t))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--sample_rate", type=int, default=22050, help="Hz, the rate the clips are decoded to")
    p.add_argument("--workers", type=int, default=usable_cores())
    args = p.parse_args()
    n_samples = CLIP_SECONDS * args.sample_rate
    with tempfile.TemporaryDirectory(prefix="bench_decode-") as tmp:
        folder = Path(tmp) / "fma_bench"
        files = [folder / f"{k:03d}" / f"{k:06d}.mp3" for k in range(args.clips)]
        start = time.perf_counter()
        for k, path in enumerate(files):
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, music_like(k), SOURCE_RATE, format="MP3", compression_level=0.0)
        megabytes = sum(f.stat().st_size for f in files) / 1e6
        print(f"wrote {args.clips} MP3s of {CLIP_SECONDS} s, {SOURCE_RATE} Hz stereo ({megabytes / args.clips:.2f} MB "
              f"each) in {time.perf_counter() - start:.1f} s")

        times = []
        for path in files:
            start = time.perf_counter()
            decode_clip(path, args.sample_rate, n_samples, n_samples // 2)
            times.append(time.perf_counter() - start)
        per_clip = statistics.median(times)
        print(f"decode_clip to {args.sample_rate} Hz, one process: median {1000 * per_clip:.0f} ms a clip "
              f"(min {1000 * min(times):.0f}, max {1000 * max(times):.0f}) = {1 / per_clip:.2f} clips/s per core")

        start = time.perf_counter()
        cached_audio("fma_bench", files, folder, args.sample_rate, n_samples, Path(tmp) / "cache", workers=args.workers)
        build = time.perf_counter() - start
        rate = args.clips / build
        print(f"cached_audio build, {args.workers} worker(s) on {usable_cores()} usable core(s): {build:.1f} s = "
              f"{rate:.2f} clips/s ({rate / args.workers:.2f} clips/s per worker)")
    for name, n in FMA_CLIPS.items():
        gigabytes = n * n_samples * 2 / 1e9
        print(f"{name}: {n:,} clips -> about {n / rate / 60:.0f} min to build with {args.workers} worker(s) "
              f"({n * per_clip / 60:.0f} core-minutes at the decode_clip rate); cache {gigabytes:.1f} GB "
              f"({n:,} x {CLIP_SECONDS} s x {args.sample_rate:,} Hz x 2 bytes)")


if __name__ == "__main__":
    main()
