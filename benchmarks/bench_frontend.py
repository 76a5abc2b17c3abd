"""Time forward+backward of the DMEL/DSPEC and Ada-STFT layers against the per-example original and torchaudio.

    python benchmarks/bench_frontend.py [--threads 2] [--repeats 7] [--settings audio synthetic gtzan]

Settings (the paper's): audio = batch 64 x 8,000 samples at 8 kHz, hop 80, 64 mels, windows of
10, 35 and 300 ms ("optimized" windows); synthetic = batch 128 x 128 samples, hop 1, "full" window.
Rows:
  batched     one STFT call for the whole batch
  chunks-8    the batch in chunks of 8 examples
  default     what the layer picks by itself (chunks of CHUNK_ELEMENTS // (frames * n_fft) examples)
  loop        the original algorithm: one STFT per example, mel filterbank rebuilt per example
  torchaudio  torchaudio's fixed Hann (Mel)Spectrogram at the same n_fft and hop, forward only
              (a fixed front-end has nothing to back-propagate into)
  ta+grad     the same torchaudio transform with its window made a leaf that requires grad,
              forward+backward through autograd (the cost of learning a window the plain way)
Prints the median time per batch in ms and ratios to the loop and to torchaudio (forward only).

Setting gtzan = batch 16 x 30 s at 22,050 Hz, n_fft 1024, hop 512, 128 mels, forward+backward:
  ada-window  AdaSTFT, window learned, kernels frozen (torch.stft path)
  ada-kernels AdaSTFT, window and DFT kernels learned (unfold + matmul path)
  dmel-46ms   DMEL, 46 ms "optimized" Gaussian window (n_fft 1024), hop 512
  torchaudio  torchaudio's fixed MelSpectrogram (Hann, n_fft 1024, hop 512, magnitude, reflect), forward only
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torchaudio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from models import functional as F  # noqa: E402
from models.frontends import DMEL, AdaSTFT, GaussianSpectrogram  # noqa: E402

SETTINGS = ("audio", "synthetic", "gtzan")


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def fwd_bwd(layer, x):
    def run():
        layer.zero_grad(set_to_none=True)
        layer(x).sum().backward()
    return run


def loop_original(x, lambd, n_points, hop, mode, mel: dict | None):
    """The paper code's algorithm: one ``torch.stft`` per example, ``|.|^2`` through autograd,
    the mel filterbank rebuilt for every example."""
    def run():
        lam = lambd.abs()
        length, n_fft = F.window_geometry(float(lam.detach()), n_points, mode)
        outs = []
        for xi in x:
            window = F.gaussian_window(lam, length)
            spec = torch.stft(xi - xi.mean(), n_fft=n_fft, hop_length=hop, win_length=length, window=window,
                              center=True, pad_mode="constant", return_complex=True).abs().pow(2)
            if mel:
                fb, _ = F.mel_filterbank(n_fft, mel["n_mels"], mel["sample_rate"])
                spec = F.log_mel(spec, fb)
            outs.append(spec)
        torch.stack(outs).sum().backward()
        lambd.grad = None
    return run


def bench_case(label, x, lambd, n_points, hop, mode, mel, repeats):
    kwargs = dict(init_lambd=lambd, n_points=n_points, hop_length=hop, window_mode=mode)
    make = (lambda **kw: DMEL(sample_rate=mel["sample_rate"], n_mels=mel["n_mels"], **kwargs, **kw)) if mel \
        else (lambda **kw: GaussianSpectrogram(**kwargs, **kw))
    _, n_fft = F.window_geometry(lambd, n_points, mode)
    rows = {
        "batched": median_ms(fwd_bwd(make(chunk_size=len(x)), x), repeats),
        "chunks-8": median_ms(fwd_bwd(make(chunk_size=8), x), repeats),
        "default": median_ms(fwd_bwd(make(), x), repeats),
        "loop": median_ms(loop_original(x, torch.nn.Parameter(torch.tensor(lambd)), n_points, hop, mode, mel),
                          repeats),
    }
    win = F.window_geometry(lambd, n_points, mode)[0]
    if mel:
        ta = torchaudio.transforms.MelSpectrogram(mel["sample_rate"], n_fft=n_fft, win_length=win, hop_length=hop,
                                                  n_mels=mel["n_mels"], power=2.0, pad_mode="constant")
    else:
        ta = torchaudio.transforms.Spectrogram(n_fft=n_fft, win_length=win, hop_length=hop, power=2.0,
                                               pad_mode="constant")
    with torch.no_grad():
        rows["torchaudio"] = median_ms(lambda: ta(x), repeats)
    window = (ta.spectrogram if mel else ta).window
    window.requires_grad_(True)

    def ta_grad():
        window.grad = None
        ta(x).sum().backward()
    rows["ta+grad"] = median_ms(ta_grad, repeats)
    print(f"\n{label}: n_fft {n_fft}, window {win} samples, batch {tuple(x.shape)}")
    print(f"  {'method':<11} {'ms/batch':>9} {'vs loop':>8} {'vs torchaudio':>14}")
    for name, ms in rows.items():
        print(f"  {name:<11} {ms:9.1f} {rows['loop'] / ms:7.1f}x {ms / rows['torchaudio']:13.2f}x")


def bench_gtzan(repeats):
    sr, seconds, n_fft, hop, n_mels = 22050, 30, 1024, 512, 128
    x = torch.randn(16, seconds * sr)
    ada = dict(sample_rate=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels)
    rows = {
        "ada-window": median_ms(fwd_bwd(AdaSTFT(**ada, learn_window=True, learn_kernels=False), x), repeats),
        "ada-kernels": median_ms(fwd_bwd(AdaSTFT(**ada, learn_window=True, learn_kernels=True), x), repeats),
        "dmel-46ms": median_ms(fwd_bwd(DMEL(sample_rate=sr, n_mels=n_mels, init_lambd=F.ms_to_lambd(46, sr),
                                           n_points=x.shape[-1], hop_length=hop, window_mode="optimized"), x),
                               repeats),
    }
    ta = torchaudio.transforms.MelSpectrogram(sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels, power=1.0,
                                              pad_mode="reflect", norm=None, mel_scale="htk")
    with torch.no_grad():
        rows["torchaudio"] = median_ms(lambda: ta(x), repeats)
    print(f"\ngtzan {seconds} s: n_fft {n_fft}, hop {hop}, {n_mels} mels, batch {tuple(x.shape)}")
    print(f"  {'method':<11} {'ms/batch':>9} {'vs torchaudio':>14}")
    for name, ms in rows.items():
        print(f"  {name:<11} {ms:9.1f} {ms / rows['torchaudio']:13.2f}x")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--settings", nargs="+", choices=SETTINGS, default=SETTINGS, help="settings to run")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats}")
    if "audio" in args.settings:
        mel = {"sample_rate": 8000, "n_mels": 64}
        x = torch.randn(64, 8000)
        for ms in (10, 35, 300):
            bench_case(f"audio {ms} ms", x, F.ms_to_lambd(ms, 8000), 8000, 80, "optimized", mel, args.repeats)
    if "synthetic" in args.settings:
        bench_case("synthetic", torch.randn(128, 128), 6.38, 128, 1, "full", None, args.repeats)
    if "gtzan" in args.settings:
        bench_gtzan(args.repeats)


if __name__ == "__main__":
    main()
