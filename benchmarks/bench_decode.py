"""Decoding speed into the audio cache, and the cache build it projects for FMA or GTZAN.

    python benchmarks/bench_decode.py [--corpus fma|gtzan] [--clips 16] [--sample_rate 22050] [--workers N]

Writes ``--clips`` synthetic 30 s clips (a chord with noise) into a temporary folder: for ``fma``
44.1 kHz stereo MP3s (VBR at libsndfile's highest quality: about 0.9 MB, as an fma_small clip), for
``gtzan`` 22,050 Hz mono 16-bit WAVs (as the GTZAN re-host). Then times
  decode_clip   each clip in this process: decode, downmix, resample to --sample_rate (what one core does);
  cached_audio  the whole cache build, fresh, with --workers processes (default all usable cores).
Prints clips/s per core, the projected cache build of the corpus (fma_small 8,000 and fma_medium 25,000
clips; GTZAN 1,000) on this machine (from the cached_audio rate), and the cache sizes (float16).
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

CLIP_SECONDS = 30
# corpus -> (source rate Hz, channels, file format, {collection: clips})
CORPORA = {"fma": (44100, 2, "MP3", {"fma_small": 8000, "fma_medium": 25000}),
           "gtzan": (22050, 1, "WAV", {"gtzan": 1000})}


def music_like(seed: int, rate: int, channels: int) -> np.ndarray:
    """``(30 s * rate, channels)`` float32: a random three-note chord with a slow tremolo and noise, per channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(CLIP_SECONDS * rate) / rate
    out = np.empty((len(t), channels), dtype=np.float32)
    for ch in range(channels):
        chord = sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(110, 1760, size=3))
        out[:, ch] = 0.2 * chord * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t)) + 0.02 * rng.standard_normal(len(t))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", choices=sorted(CORPORA), default="fma")
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--sample_rate", type=int, default=22050, help="Hz, the rate the clips are decoded to")
    p.add_argument("--workers", type=int, default=usable_cores())
    args = p.parse_args()
    source_rate, channels, fmt, collections = CORPORA[args.corpus]
    n_samples = CLIP_SECONDS * args.sample_rate
    with tempfile.TemporaryDirectory(prefix="bench_decode-") as tmp:
        folder = Path(tmp) / f"{args.corpus}_bench"
        files = [folder / f"{k:03d}" / f"{k:06d}.{fmt.lower()}" for k in range(args.clips)]
        start = time.perf_counter()
        for k, path in enumerate(files):
            path.parent.mkdir(parents=True, exist_ok=True)
            extra = {"compression_level": 0.0} if fmt == "MP3" else {"subtype": "PCM_16"}
            sf.write(path, music_like(k, source_rate, channels), source_rate, format=fmt, **extra)
        megabytes = sum(f.stat().st_size for f in files) / 1e6
        print(f"wrote {args.clips} {fmt}s of {CLIP_SECONDS} s, {source_rate} Hz, {channels} channel(s) "
              f"({megabytes / args.clips:.2f} MB each) in {time.perf_counter() - start:.1f} s")

        times = []
        for path in files:
            start = time.perf_counter()
            decode_clip(path, args.sample_rate, n_samples, n_samples // 2)
            times.append(time.perf_counter() - start)
        per_clip = statistics.median(times)
        print(f"decode_clip to {args.sample_rate} Hz, one process: median {1000 * per_clip:.0f} ms a clip "
              f"(min {1000 * min(times):.0f}, max {1000 * max(times):.0f}) = {1 / per_clip:.2f} clips/s per core")

        start = time.perf_counter()
        cached_audio(f"{args.corpus}_bench", files, folder, args.sample_rate, n_samples, Path(tmp) / "cache", workers=args.workers)
        build = time.perf_counter() - start
        rate = args.clips / build
        print(f"cached_audio build, {args.workers} worker(s) on {usable_cores()} usable core(s): {build:.1f} s = "
              f"{rate:.2f} clips/s ({rate / args.workers:.2f} clips/s per worker)")
    for name, n in collections.items():
        gigabytes = n * n_samples * 2 / 1e9
        print(f"{name}: {n:,} clips -> about {n / rate / 60:.1f} min to build with {args.workers} worker(s) "
              f"({n * per_clip / 60:.1f} core-minutes at the decode_clip rate); cache {gigabytes:.1f} GB "
              f"({n:,} x {CLIP_SECONDS} s x {args.sample_rate:,} Hz x 2 bytes)")


if __name__ == "__main__":
    main()
