"""Small FMA-layout fixtures built on the fly (synthetic tones, never real audio).

``make_fma(root)`` writes ``root/fma_metadata/{tracks,genres}.csv`` with the real two-level header and
``root/fma_{small,medium}/NNN/NNNNNN.mp3``: tones at 44.1/48/22.05 kHz, mono and stereo, 1.5-3 s long, each
track its own frequency, plus the broken files of the real fma_small (see ``BROKEN``).
"""
from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

SMALL_GENRES = ("Electronic", "Folk", "Hip-Hop", "Rock")
MEDIUM_GENRES = ("Blues", "Jazz")  # medium adds these to the small ones
RATES = (44100, 48000, 22050)
PER_SPLIT = {"training": 3, "validation": 1, "test": 1}  # good tracks per genre in fma_small
# broken fma_small tracks, all labelled and in the metadata: how each is broken, its genre and split
BROKEN = {
    "id3_only": ("Rock", "training"),     # an ID3 tag and no audio frame
    "empty": ("Folk", "validation"),      # 0 bytes
    "short": ("Hip-Hop", "test"),         # 0.3 s of audio (clips of 2 s need 1 s)
    "truncated": ("Electronic", "training"),  # a 3 s mp3 cut to a quarter of its bytes
}
MISSING = ("Rock", "training")            # in the metadata, no mp3
EMBEDDED = 'Live at "the Barn",\nside B'  # an album title with quotes, a comma and a newline


@dataclass
class FmaFixture:
    """What :func:`make_fma` wrote: ``tracks`` as in tracks.csv (the three columns the loader reads),
    ``hz`` the tone of each track with audio, and the ids of the broken and missing small tracks."""

    root: Path
    tracks: pd.DataFrame
    hz: dict[int, float]
    broken: dict[str, int]
    missing: int


def track_ids():
    """Increasing ids of one to six digits (2, 5, 26, 83, ..., 107813, ...)."""
    k = 0
    while True:
        yield 2 + 3 * k ** 3
        k += 1


def tone(hz: float, seconds: float, rate: int, channels: int) -> np.ndarray:
    """``(n, channels)`` float32 sine at ``hz`` with a short fade in and out."""
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.4 * np.sin(2 * np.pi * hz * t) * np.minimum(1, np.minimum(t, t[-1] - t) / 0.02)
    return np.repeat(wave[:, None], channels, axis=1).astype(np.float32)


def write_mp3(path: Path, kind: str, hz: float, k: int) -> None:
    """One mp3 of ``kind`` (``good`` or a key of ``BROKEN``); ``k`` varies rate, channels and length."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rate, channels = RATES[k % 3], 1 + k % 2
    if kind == "id3_only":
        path.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00")
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        seconds = {"good": 1.5 + 0.25 * (k % 7), "short": 0.3, "truncated": 3.0}[kind]
        sf.write(path, tone(hz, seconds, rate, channels), rate, format="MP3")
        if kind == "truncated":
            path.write_bytes(path.read_bytes()[:path.stat().st_size // 4])


def metadata(rows: list[tuple[int, str, str, str | None]]) -> pd.DataFrame:
    """tracks.csv content for ``(track_id, subset, split, genre_top)`` rows, with the real two-level header."""
    table = {
        ("album", "title"): [EMBEDDED if i == 1 else f"Album {i}" for i in range(len(rows))],
        ("artist", "name"): [f"Artist {i % 3}" for i in range(len(rows))],
        ("set", "split"): [r[2] for r in rows],
        ("set", "subset"): [r[1] for r in rows],
        ("track", "duration"): [30] * len(rows),
        ("track", "genre_top"): [r[3] for r in rows],
        ("track", "genres"): ["[21, 38]" if i % 2 else "[]" for i in range(len(rows))],
        ("track", "genres_all"): ["[1, 21, 38]" if i % 2 else "[]" for i in range(len(rows))],
        ("track", "title"): [f"Track {r[0]}, take {i}" for i, r in enumerate(rows)],
    }
    return pd.DataFrame(table, index=pd.Index([r[0] for r in rows], name="track_id"))


def make_fma(root: Path) -> FmaFixture:
    """The fixture tree under ``root`` (see the module docstring)."""
    ids = track_ids()
    rows, kinds = [], {}
    for genre in SMALL_GENRES:
        for split, count in PER_SPLIT.items():
            rows += [(next(ids), "small", split, genre) for _ in range(count)]
    for kind, (genre, split) in BROKEN.items():
        rows.append((next(ids), "small", split, genre))
        kinds[rows[-1][0]] = kind
    genre, split = MISSING
    rows.append((next(ids), "small", split, genre))
    missing = rows[-1][0]
    for genre in MEDIUM_GENRES:
        rows += [(next(ids), "medium", split, genre) for split in PER_SPLIT]
    rows.append((next(ids), "medium", "training", None))  # no top genre: never used
    rows += [(next(ids), "large", split, genre) for split, genre in
             (("training", None), ("validation", "Jazz"), ("test", None))]
    tracks = metadata(rows)
    (root / "fma_metadata").mkdir(parents=True, exist_ok=True)
    tracks.to_csv(root / "fma_metadata" / "tracks.csv")
    pd.DataFrame({"#tracks": [10, 20], "parent": [0, 0], "title": ["Blues", "Jazz"], "top_level": [3, 4]},
                 index=pd.Index([3, 4], name="genre_id")).to_csv(root / "fma_metadata" / "genres.csv")
    hz = {}
    for k, (track_id, subset, _, genre) in enumerate(rows):
        if track_id == missing or subset == "large" or genre is None:
            continue
        hz[track_id] = 300.0 + 50.0 * k
        name = f"{track_id:06d}"
        for folder in ("fma_small", "fma_medium") if subset == "small" else ("fma_medium",):
            write_mp3(root / folder / name[:3] / f"{name}.mp3", kinds.get(track_id, "good"), hz[track_id], k)
    for folder in ("fma_small", "fma_medium"):
        (root / folder / "README.txt").write_text("fixture\n")
    broken = {kind: track_id for track_id, kind in kinds.items()}
    return FmaFixture(root, tracks[[("set", "subset"), ("set", "split"), ("track", "genre_top")]],
                      {t: f for t, f in hz.items() if t not in kinds}, broken, missing)


def make_fma_zips(root: Path, folder: Path, names=("fma_metadata", "fma_small")) -> dict[str, str]:
    """``folder/<name>.zip`` of each ``root/<name>`` laid out as the official archives (BZIP2, entries
    under ``<name>/``); returns file name -> SHA-1."""
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    for name in names:
        path = folder / f"{name}.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as zf:
            for item in sorted((root / name).rglob("*")):
                zf.write(item, item.relative_to(root).as_posix())
        sums[path.name] = hashlib.sha1(path.read_bytes()).hexdigest()
    return sums


def set_read_only(root: Path, read_only: bool = True) -> None:
    """Take away (or give back) write permission on everything under ``root``."""
    for item in [root, *root.rglob("*")]:
        mode = item.stat().st_mode
        os.chmod(item, mode & ~0o222 if read_only else mode | stat.S_IWUSR)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime in ns) of everything under ``root``, folders included."""
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}
