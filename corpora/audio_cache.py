"""Decode a corpus once into one memory-mapped float16 array that every trial shares (GTZAN, FMA).

:func:`cached_audio` decodes each file to a row of ``n_samples`` (mono, resampled to
``sample_rate``, cropped or zero-padded at the end, or centred: :func:`fit_clip`) and keeps it in

    <cache_root>/<name>-<sample_rate>hz-<n_samples>-<fingerprint[:12]>/
        audio.npy      (n_files, n_samples) float16; row i is files[i], all zeros for a bad file
        status.npy     (n_files,) uint8: 0 to decode, 1 decoded, 2 bad audio
        reasons.json   {row: why the file is bad}
        manifest.json  the files (relative to the dataset folder) and the decoding settings
        complete       written last: the cache is finished and is only read from then on
        build.lock     one process builds; concurrent trials wait for it instead of decoding too

The fingerprint hashes each file's path relative to the dataset folder, size and modification
time (ns), in row order, with the decoding settings: a changed, added, removed or reordered file
gives a new cache, without reading gigabytes of audio to hash them at every trial start. (A copy
of the dataset has new modification times, so it is decoded once more.) The cache lives under
``cache_root``, never inside the dataset folder, which may be read-only.

An interrupted build (a killed trial, Ctrl-C) resumes where it stopped: each finished chunk of
clips is flushed to ``audio.npy`` before ``status.npy`` marks it done, so only unfinished chunks
are decoded again.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import math
import multiprocessing
import os
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from filelock import FileLock, Timeout
from tqdm import tqdm

PADDINGS = ("end", "center")  # where a clip's zeros go (fit_clip)
PENDING, OK, BAD = 0, 1, 2  # status.npy values: not decoded yet, decoded, skipped
MAX_CHUNK = 32  # clips per decoding task: at most this many per worker are redone after an interruption


class BadAudio(Exception):
    """A file that gives no usable clip; the message says why ("unreadable (...)", "empty", "too short (...)")."""


def fit_clip(audio: np.ndarray, n_samples: int, padding: str = "end") -> np.ndarray:
    """``(n_samples,)`` float32 copy of the 1-D ``audio`` at a fixed length.

    ``end``: the recording first, zeros after it; a longer one loses its end. ``center``: the DMEL
    code's AudioMNIST padding, ``np.pad(x, 1 + (n - len(x)) // 2)[:n]``: ``1 + (n - len) // 2`` zeros
    before the recording, the rest after it (so a recording of exactly ``n`` samples loses its last
    one, as in the code); a recording longer than ``n + 1``, where that expression fails, keeps its
    middle ``n`` samples (from ``(len - n) // 2``, which is also what the code gives at ``n + 1``).
    """
    if padding not in PADDINGS:
        raise ValueError(f"unknown clip_padding {padding!r}; choose one of {PADDINGS}")
    out = np.zeros(n_samples, dtype=np.float32)
    if padding == "end" or len(audio) > n_samples:
        start = 0 if padding == "end" else (len(audio) - n_samples) // 2
        piece = audio[start:start + n_samples]
        out[:len(piece)] = piece
    else:
        left = 1 + (n_samples - len(audio)) // 2
        piece = audio[:n_samples - left]
        out[left:left + len(piece)] = piece
    return out


def decode_clip(path, sample_rate: int, n_samples: int, min_samples: int, padding: str = "end") -> np.ndarray:
    """``(n_samples,)`` float32 mono audio of the file ``path`` at ``sample_rate`` Hz.

    Channels are averaged; a file at another rate is resampled (soxr, "HQ"); the result is brought to
    ``n_samples`` by :func:`fit_clip` with ``padding``. Lengths are those of the decoded audio, never the
    header's frame count (a truncated MP3 still reports its full duration).

    Raises :class:`BadAudio` when the file cannot be decoded, holds no audio or non-finite samples,
    or is shorter than ``min_samples`` (at ``sample_rate``) once decoded.
    """
    try:
        audio, rate = sf.read(path, dtype="float32", always_2d=True)  # (frames, channels)
    except (sf.SoundFileError, RuntimeError, ValueError) as err:
        raise BadAudio(f"unreadable ({err})") from err
    if audio.size == 0:
        raise BadAudio("empty")
    mono = audio.mean(axis=1)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    if not np.isfinite(mono).all():
        raise BadAudio("non-finite samples")
    if len(mono) < min_samples:
        raise BadAudio(f"too short ({len(mono) / sample_rate:.3g} s, at least {min_samples / sample_rate:.3g} s "
                       "needed)")
    return fit_clip(mono, n_samples, padding)


@dataclass
class DecodedAudio:
    """A finished cache.

    ``audio``: ``(n_files, n_samples)`` float16, memory-mapped read-only; row ``i`` is ``files[i]``.
    ``ok``: ``(n_files,)`` bool, False for bad files (their rows are zeros).
    ``reasons``: row -> why that file was skipped. ``directory``: the cache folder.
    """

    audio: np.ndarray
    ok: np.ndarray
    reasons: dict[int, str]
    directory: Path


def cached_audio(name: str, files: list[Path], root: Path, sample_rate: int, n_samples: int,
                 cache_root: Path, workers: int | None = None, min_fraction: float = 0.5,
                 padding: str = "end") -> DecodedAudio:
    """The decoded audio of ``files`` (in row order, all under the dataset folder ``root``),
    built once under ``cache_root`` and memory-mapped read-only afterwards (see the module docstring).

    Each file is decoded by :func:`decode_clip` at ``sample_rate`` Hz to ``n_samples`` samples. One
    that is unreadable, empty, or shorter than ``min_fraction * n_samples`` once decoded is marked
    bad; the build warns once, listing them. ``workers``: decoding processes (default: the usable
    cores; 1 decodes in this process).
    """
    if not files:
        raise ValueError(f"{name}: no audio files to cache")
    if n_samples < 1:
        raise ValueError(f"{name}: n_samples must be positive, got {n_samples} (check clip_seconds)")
    root = Path(os.path.abspath(root))
    rel = [Path(os.path.abspath(f)).relative_to(root).as_posix() for f in files]
    min_samples = math.ceil(min_fraction * n_samples)
    settings = {"name": name, "sample_rate": sample_rate, "n_samples": n_samples, "min_samples": min_samples}
    if padding != "end":  # only then: the caches built before clip_padding existed keep their fingerprint
        settings["padding"] = padding
    digest = fingerprint(files, rel, settings)
    directory = Path(cache_root) / f"{name}-{sample_rate}hz-{n_samples}-{digest[:12]}"
    shape = (len(files), n_samples)
    if (directory / "complete").exists() and (problem := _damage(directory, shape)):
        with _build_lock(directory):
            if (directory / "complete").exists() and (problem := _damage(directory, shape)):
                warnings.warn(f"{name}: the decoded-audio cache {directory} is marked complete but {problem}; "
                              "decoding it again")
                for stale in ("complete", "status.npy", "reasons.json", "audio.npy"):
                    (directory / stale).unlink(missing_ok=True)
    if not (directory / "complete").exists():
        directory.mkdir(parents=True, exist_ok=True)
        with _build_lock(directory):
            if not (directory / "complete").exists():  # not finished by the process we waited for
                _build(directory, files, rel, settings, workers or usable_cores())
    status = np.load(directory / "status.npy")
    reasons = {int(row): why for row, why in json.loads((directory / "reasons.json").read_text()).items()}
    return DecodedAudio(np.load(directory / "audio.npy", mmap_mode="r"), status == OK, reasons, directory)


def _damage(directory: Path, shape: tuple[int, int]) -> str | None:
    """What is wrong with a finished cache (a truncated or missing ``audio.npy``, a bad ``status.npy``,
    say after a full disk or a copy that stopped halfway), or ``None`` when its files are whole."""
    try:
        audio = np.load(directory / "audio.npy", mmap_mode="r")
        status = np.load(directory / "status.npy")
        json.loads((directory / "reasons.json").read_text())
    except (OSError, ValueError, EOFError) as err:
        return f"its files cannot be read ({type(err).__name__}: {err})"
    if audio.shape != shape or audio.dtype != np.float16 or status.shape != shape[:1]:
        return f"audio.npy holds {audio.shape} {audio.dtype} and status.npy {status.shape}, not {shape} float16"
    return None


def fingerprint(files: list[Path], rel: list[str], settings: dict) -> str:
    """sha256 hex of ``settings`` and each file's relative path, size and mtime (ns), in row order."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path, name in zip(files, rel):
        st = os.stat(path)
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def usable_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def _build_lock(directory: Path):
    """Hold ``directory/build.lock``, saying so when another process holds it first."""
    lock = FileLock(directory / "build.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"waiting for another process to finish decoding into {directory}")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _build(directory: Path, files: list[Path], rel: list[str], settings: dict, workers: int) -> None:
    """Decode the rows not yet done into ``directory``, then write the ``complete`` marker."""
    name, n = settings["name"], len(files)
    audio_path, status_path, reasons_path = (directory / f for f in ("audio.npy", "status.npy", "reasons.json"))
    _write(directory / "manifest.json", json.dumps({**settings, "files": rel}, indent=1).encode())
    if status_path.exists():  # an interrupted build: keep what it finished
        audio = np.load(audio_path, mmap_mode="r+")
        status = np.load(status_path)
        reasons = {int(r): why for r, why in json.loads(reasons_path.read_text()).items() if status[int(r)] == BAD}
    else:
        audio = np.lib.format.open_memmap(audio_path, mode="w+", dtype=np.float16, shape=(n, settings["n_samples"]))
        status = np.zeros(n, dtype=np.uint8)
        reasons = {}
    pending = np.flatnonzero(status == PENDING)
    workers = max(1, min(workers, len(pending)))
    size = max(1, min(MAX_CHUNK, math.ceil(len(pending) / (4 * workers))))
    chunks = [[(int(r), str(files[r])) for r in pending[i:i + size]] for i in range(0, len(pending), size)]
    decode = functools.partial(_decode_chunk, sample_rate=settings["sample_rate"], n_samples=settings["n_samples"],
                               min_samples=settings["min_samples"], padding=settings.get("padding", "end"))
    start = time.perf_counter()
    with _imap(workers) as imap, tqdm(total=len(pending), desc=f"decoding {name}", unit="clip") as bar:
        for rows, block, bad in imap(decode, chunks):
            audio[rows] = block
            audio.flush()  # the audio is on disk before status.npy says so
            status[rows] = OK
            for row, why in bad.items():
                status[row], reasons[row] = BAD, why
            _write(reasons_path, json.dumps({str(r): why for r, why in sorted(reasons.items())}).encode())
            _write(status_path, _npy_bytes(status))
            bar.update(len(rows))
    del audio
    if len(pending):
        seconds = time.perf_counter() - start
        print(f"{name}: decoded {len(pending)} clips in {seconds:.1f} s ({len(pending) / seconds:.1f} clips/s, "
              f"{workers} worker(s)) into {directory}")
    if reasons:
        shown = ", ".join(f"{rel[r]} ({why})" for r, why in sorted(reasons.items())[:5])
        more = f" and {len(reasons) - 5} more" if len(reasons) > 5 else ""
        warnings.warn(f"{name}: skipped {len(reasons)} of {n} file(s) as bad audio: {shown}{more} "
                      f"(listed in {reasons_path})")
    _write(directory / "complete", json.dumps({"n_files": n, "n_bad": len(reasons)}).encode())


def _decode_chunk(chunk: list[tuple[int, str]], sample_rate: int, n_samples: int, min_samples: int,
                  padding: str) -> tuple[list[int], np.ndarray, dict[int, str]]:
    """Decode ``chunk`` (``(row, path)`` pairs): the rows, their ``(len(chunk), n_samples)`` float16
    audio (zeros for bad files) and ``row -> reason`` for the bad ones."""
    block = np.zeros((len(chunk), n_samples), dtype=np.float16)
    bad = {}
    for k, (row, path) in enumerate(chunk):
        try:
            block[k] = decode_clip(path, sample_rate, n_samples, min_samples, padding)
        except BadAudio as err:
            bad[row] = str(err)
    return [row for row, _ in chunk], block, bad


@contextlib.contextmanager
def _imap(workers: int):
    """An unordered ``imap(fn, items)``: in this process for one worker, else over a forked pool.

    A process that runs other threads (a Ray worker: a trial that finds no cache) decodes in this
    process: a fork copies locks that those threads hold, and a forked decoder can hang on one. ``main.py`` builds caches before the trials, from single-threaded processes.
    """
    if workers == 1 or threading.active_count() > 1:
        yield map
        return
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ctx.Pool(workers) as pool:
        yield pool.imap_unordered


def _npy_bytes(array: np.ndarray) -> bytes:
    """``array`` in .npy format."""
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
