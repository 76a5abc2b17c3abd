"""Find audio files and read each one as the trial's corpus read its clips."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from corpora.audio_cache import BadAudio, decode_clip

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")  # what a folder is searched for (any case)


def find_audio(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """``(files, problems)``: every path that is a file, in the order given, and every audio file under
    each folder (``AUDIO_EXTENSIONS``, recursively, sorted); one line per path that is neither, or a
    folder with no audio."""
    files, problems = [], []
    for given in paths:
        path = Path(given)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            if not found:
                problems.append(f"no {'/'.join(AUDIO_EXTENSIONS)} files under the folder {path}; "
                                "give a folder that holds audio")
            files.extend(found)
        else:
            problems.append(f"no such file or folder {path}; check the path")
    return files, problems


def read_clip(path: str | Path, sample_rate: int, n_points: int, padding: str = "end",
              float16: bool = False) -> np.ndarray:
    """``(n_points,)`` float32: ``path`` decoded, channels averaged, resampled to ``sample_rate`` Hz (soxr HQ)
    and cropped or zero-padded to ``n_points`` samples by ``padding``, all by
    :func:`corpora.audio_cache.decode_clip`, the corpora's own decoder; ``float16``: rounded to float16 and
    back, as a clip read from a decoded-audio cache is. A file of any length is kept (a corpus drops the
    shortest ones from its splits; a prediction pads them).

    Raises :class:`corpora.audio_cache.BadAudio` saying why a file gives no clip.
    """
    clip = decode_clip(path, sample_rate, n_points, min_samples=1, padding=padding)
    return clip.astype(np.float16).astype(np.float32) if float16 else clip


__all__ = ["AUDIO_EXTENSIONS", "BadAudio", "find_audio", "read_clip"]
