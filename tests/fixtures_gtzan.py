"""Small GTZAN-layout fixtures built on the fly from synthetic tones (never real music).

``make_gtzan`` writes ``<root>/genres/<genre>/<stem>.{wav,au}`` for real stems of the shipped
filtered lists (so split membership can be checked) plus, where a genre has one, a clip in none of
them. Formats vary clip by clip: .au or .wav, 22,050 Hz or 16,000 Hz, mono or stereo, 0.9-1.2 s.
``jazz/jazz.00054.wav`` (in the training list) is garbage bytes, as in common copies.
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import soundfile as sf

from corpora.gtzan import GENRES, SPLIT_NAMES, read_list

RATE, OTHER_RATE = 22050, 16000
BROKEN = "jazz.00054"


def genre_hz(genre: str) -> float:
    """The tone frequency of ``genre``'s clips, Hz (200-1,550, below 4 kHz)."""
    return 200.0 + 150.0 * GENRES.index(genre)


def tone(stem: str, rate: int, channels: int) -> np.ndarray:
    """``(frames, channels)`` float32: the genre's tone, 0.9-1.2 s, the right channel at 0.8 gain."""
    rng = np.random.default_rng(int(stem.split(".")[1]) + 1000 * GENRES.index(stem.split(".")[0]))
    t = np.arange(int(rate * rng.uniform(0.9, 1.2))) / rate
    mono = 0.5 * np.sin(2 * np.pi * genre_hz(stem.split(".")[0]) * t) + 0.01 * rng.standard_normal(len(t))
    return np.stack([mono, 0.8 * mono][:channels], axis=1).astype(np.float32)


def fixture_stems(per_split: int = 2, splits=SPLIT_NAMES) -> dict[str, list[str]]:
    """Stems in the fixture: the first ``per_split`` of each genre in each listed split (``train`` also
    holds ``BROKEN``), and ``unlisted``: the first clip of each genre in no list (blues and rock have none)."""
    lists = {name: read_list(name) for name in SPLIT_NAMES}
    chosen = {name: [s for g in GENRES for s in [x for x in lists[name] if x.startswith(g + ".")][:per_split]]
              for name in splits}
    if "train" in chosen and BROKEN not in chosen["train"]:
        chosen["train"] = sorted(chosen["train"] + [BROKEN], key=lists["train"].index)
    listed = {s for names in lists.values() for s in names}
    unlisted = [next((f"{g}.{i:05d}" for i in range(100) if f"{g}.{i:05d}" not in listed), None) for g in GENRES]
    return {**chosen, "unlisted": [s for s in unlisted if s]}


def make_gtzan(root: Path, per_split: int = 2, splits=SPLIT_NAMES) -> Path:
    """Write the fixture of :func:`fixture_stems` under ``root/genres``; returns ``root``."""
    stems = sorted(s for names in fixture_stems(per_split, splits).values() for s in names)
    for k, stem in enumerate(stems):
        genre = stem.split(".")[0]
        (root / "genres" / genre).mkdir(parents=True, exist_ok=True)
        if stem == BROKEN:
            (root / "genres" / genre / f"{stem}.wav").write_bytes(np.random.default_rng(0).bytes(4096))
            continue
        ext = ".au" if k % 2 else ".wav"
        rate, channels = (OTHER_RATE if k % 3 == 0 else RATE), (2 if k % 4 == 1 else 1)
        sf.write(root / "genres" / genre / f"{stem}{ext}", tone(stem, rate, channels), rate,
                 format="AU" if ext == ".au" else "WAV", subtype="PCM_16")
    return root


def make_gtzan_tarball(path: Path, per_genre: int = 100, top: str = "genres") -> Path:
    """A ``genres.tar.gz`` laid out like the download (``top/<genre>/<genre>.NNNNN.wav``, tiny
    silent clips, plus a non-audio ``top/input.mf`` as in the original) with ``per_genre`` clips a genre."""
    buf = io.BytesIO()
    sf.write(buf, np.zeros(16, dtype=np.float32), RATE, format="WAV", subtype="PCM_16")
    members = {f"{top}/input.mf": b"fixture\n"}
    members.update({f"{top}/{g}/{g}.{i:05d}.wav": buf.getvalue() for g in GENRES for i in range(per_genre)})
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
