"""Small ESC-50-layout fixtures built on the fly from synthetic tones (never real recordings).

``meta_rows`` has the real metadata's shape: 50 targets x 40 clips, each source recording cut into two
takes (A, B) in one fold, folds 1-5 of 400, file names ``<fold>-<src_file>-<take>-<target>.wav``, rows
sorted by file name as in the published ``meta/esc50.csv`` (so the shipped ``dmel`` list applies by row).
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

RATES = (16000, 22050)
TOP = "ESC-50-master"


def target_hz(target: int) -> float:
    """The tone of class ``target``, Hz (200-3,140: below 4 kHz)."""
    return 200.0 + 60.0 * target


def meta_rows(per_class: int = 40, n_classes: int = 50, n_folds: int = 5) -> pd.DataFrame:
    """The ``meta/esc50.csv`` table (sorted by file name, index reset)."""
    rows = []
    for target in range(n_classes):
        for k in range(per_class):
            src = 100000 + 1000 * target + k // 2
            fold = (k // 2) % n_folds + 1
            take = "AB"[k % 2]
            rows.append({"filename": f"{fold}-{src}-{take}-{target}.wav", "fold": fold, "target": target,
                         "category": f"sound_{target:02d}", "esc10": target < 10, "src_file": src, "take": take})
    return pd.DataFrame(rows).sort_values("filename").reset_index(drop=True)


def tone(target: int, row: int, seconds: float, rate: int) -> np.ndarray:
    rng = np.random.default_rng(row)
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * target_hz(target) * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def make_esc50(root: Path, rows=None, seconds: float = 0.25, broken: int | None = None) -> Path:
    """``root/meta/esc50.csv`` (all 2,000 rows) and ``root/audio/*.wav`` for the row positions ``rows``
    (default all): tones of the class's frequency at 16 or 22.05 kHz; row ``broken`` is garbage bytes."""
    meta = meta_rows()
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    meta.to_csv(root / "meta" / "esc50.csv", index=False)
    for i in (range(len(meta)) if rows is None else rows):
        path = root / "audio" / meta.at[i, "filename"]
        if i == broken:
            path.write_bytes(np.random.default_rng(0).bytes(2048))
            continue
        rate = RATES[i % 2]
        sf.write(path, tone(int(meta.at[i, "target"]), i, seconds, rate), rate, subtype="PCM_16")
    return root


def make_esc50_zip(path: Path, meta: pd.DataFrame | None = None, drop: int = 0, top: str = TOP) -> Path:
    """A repository zip (``top/audio/*.wav``, ``top/meta/esc50.csv``, a README) with 16-sample clips;
    the last ``drop`` listed files are left out of ``audio/``."""
    meta = meta_rows() if meta is None else meta
    buf = io.BytesIO()
    sf.write(buf, np.zeros(16, dtype=np.float32), 44100, format="WAV", subtype="PCM_16")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{top}/README.md", "fixture")
        zf.writestr(f"{top}/meta/esc50.csv", meta.to_csv(index=False))
        for name in meta["filename"][:len(meta) - drop]:
            zf.writestr(f"{top}/audio/{name}", buf.getvalue())
    return path
