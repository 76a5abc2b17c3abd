"""Small AudioMNIST-layout fixtures built on the fly from synthetic tones (never real recordings).

``make_audiomnist`` writes ``root/data/<speaker>/<digit>_<speaker>_<take>.wav`` (48 kHz mono, 0.15-0.3 s,
the digit's tone) and ``root/data/audioMNIST_meta.txt``; ``make_audiomnist_zip`` the repository archive.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 48000
TOP = "AudioMNIST-master"


def digit_hz(digit: int) -> float:
    """The tone of ``digit``, Hz (300-2,550: below 4 kHz)."""
    return 300.0 + 250.0 * digit


def tone(digit: int, speaker: int, take: int) -> np.ndarray:
    rng = np.random.default_rng(10000 * speaker + 100 * digit + take)
    t = np.arange(int(RATE * rng.uniform(0.15, 0.3))) / RATE
    return (0.5 * np.sin(2 * np.pi * digit_hz(digit) * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def make_audiomnist(root: Path, speakers=range(1, 61), takes: int = 1) -> Path:
    """Every digit x ``takes`` for each speaker number in ``speakers``; returns ``root``."""
    data = root / "data"
    for s in speakers:
        (data / f"{s:02d}").mkdir(parents=True, exist_ok=True)
        for digit in range(10):
            for take in range(takes):
                sf.write(data / f"{s:02d}" / f"{digit}_{s:02d}_{take}.wav", tone(digit, s, take), RATE,
                         subtype="PCM_16")
    (data / "audioMNIST_meta.txt").write_text(json.dumps({f"{s:02d}": {"gender": "fixture"} for s in speakers}))
    return root


def make_audiomnist_zip(path: Path, speakers: int = 3, takes: int = 2, skip: tuple = (), top: str = TOP) -> Path:
    """A repository zip (``top/data/<speaker>/*.wav`` of 16 samples, the metadata, and a script that
    is not data) for speakers 01..``speakers`` x 10 digits x ``takes``, without the names in ``skip``."""
    buf = io.BytesIO()
    sf.write(buf, np.zeros(16, dtype=np.float32), RATE, format="WAV", subtype="PCM_16")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{top}/README.md", "fixture")
        zf.writestr(f"{top}/audiomnist/train/splits.py", "# not data\n")
        zf.writestr(f"{top}/data/audioMNIST_meta.txt", "{}")
        for s in range(1, speakers + 1):
            for digit in range(10):
                for take in range(takes):
                    name = f"{digit}_{s:02d}_{take}.wav"
                    if name not in skip:
                        zf.writestr(f"{top}/data/{s:02d}/{name}", buf.getvalue())
    return path
