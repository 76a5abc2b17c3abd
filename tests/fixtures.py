"""Small FSDD-layout fixtures built on the fly (synthetic tones, never real recordings)."""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

SPEAKERS = ("alice", "bob", "carol")
TOP = "Jakobovski-free-spoken-digit-dataset-e9e1155"


def tone(digit: int, take: int, speaker_idx: int, rate: int = 8000) -> np.ndarray:
    """A digit-dependent tone of 1,200-6,000 samples (some fall outside the dmel 1,500-5,500 band)."""
    rng = np.random.default_rng(1000 * digit + 10 * take + speaker_idx)
    n = int(rng.integers(1200, 6000))
    t = np.arange(n) / rate
    f = 300 + 250 * digit + 20 * speaker_idx
    return (0.5 * np.sin(2 * np.pi * f * t) * np.hanning(n) + 0.01 * rng.standard_normal(n)).astype(np.float32)


def make_fsdd(root: Path, takes: int = 12, rate: int = 8000) -> Path:
    """``root/recordings/{digit}_{speaker}_{take}.wav`` for 10 digits x 3 speakers x ``takes``."""
    rec = root / "recordings"
    rec.mkdir(parents=True, exist_ok=True)
    for d in range(10):
        for s, speaker in enumerate(SPEAKERS):
            for take in range(takes):
                sf.write(rec / f"{d}_{speaker}_{take}.wav", tone(d, take, s, rate), rate, subtype="PCM_16")
    return root


def make_fsdd_zip(path: Path, takes: int = 3) -> dict[str, str]:
    """A zip laid out like the Zenodo download; returns its ``recordings/...`` checksum list."""
    src = make_fsdd(path.parent / (path.stem + "_src"), takes=takes)
    checksums = {}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{TOP}/README.md", "fixture")
        for wav in sorted((src / "recordings").glob("*.wav")):
            data = wav.read_bytes()
            zf.writestr(f"{TOP}/recordings/{wav.name}", data)
            checksums[f"recordings/{wav.name}"] = hashlib.sha256(data).hexdigest()
    return checksums


# The one small time_frequency grid that the table, storage, TensorBoard and report tests all read
# (conftest's session fixture ``tiny_experiment`` runs it once).
TINY_GRID = ["--name=time_frequency", "--num_cpus=2", "--num_samples=2", "--max_epochs=2", "--set", "n_samples=150",
             "--set", 'model_name="linear_net"', "--set", "init_lambd=[1.276,31.9]"]
TINY_TRIALS = 8  # linear_net x trainable/fixed x lambda 1.276/31.9 x seeds 0, 1
