"""Decoded-audio cache: decode_clip against an analytic tone; built once, resumed, keyed by file content;
read-only dataset folders; concurrent builders."""
import json
import os
import threading
import warnings

import numpy as np
import pytest
import soundfile as sf

from corpora import audio_cache
from corpora.audio_cache import BadAudio, cached_audio, decode_clip, fit_clip
from tests.fixtures_gtzan import make_gtzan

RATE = 8000
N = 8000  # 1 s at 8 kHz
ATOL_F16 = 1e-3  # float16 storage of values in [-1, 1]: error <= 2**-11


@pytest.fixture()
def dataset(tmp_path):
    """``(genres folder, its audio files in row order)``: 39 clips, one of them unreadable."""
    folder = make_gtzan(tmp_path / "gtzan", per_split=1) / "genres"
    return folder, sorted(p for p in folder.rglob("*") if p.is_file())


def build(files, folder, cache_root, workers=1):
    return cached_audio("test", files, folder, RATE, N, cache_root, workers=workers)


class Interrupted(Exception):
    """Stands for a killed trial or Ctrl-C in the middle of a build."""


def counting_decoder(monkeypatch, fail_after=None):
    """Replace ``decode_clip`` with one that counts its calls and raises after ``fail_after`` of them."""
    calls = []

    def decode(*args):
        calls.append(args[0])
        if fail_after is not None and len(calls) > fail_after:
            raise Interrupted
        return decode_clip(*args)
    monkeypatch.setattr(audio_cache, "decode_clip", decode)
    return calls


def test_decode_clip_downmixes_resamples_crops_and_pads(tmp_path):
    path = tmp_path / "stereo.wav"
    t = np.arange(11025) / 22050  # 0.5 s at 22,050 Hz -> exactly 4,000 samples at 8 kHz
    left = np.sin(2 * np.pi * 440 * t)
    sf.write(path, np.stack([left, 0.5 * left], axis=1), 22050, subtype="FLOAT")
    expected = 0.75 * np.sin(2 * np.pi * 440 * np.arange(4000) / RATE)  # channel mean, sampled at 8 kHz
    exact = decode_clip(path, RATE, 4000, 1)
    assert exact.dtype == np.float32 and exact.shape == (4000,)
    np.testing.assert_allclose(exact[50:-50], expected[50:-50], atol=2e-3)  # away from the filter's edges
    cropped = decode_clip(path, RATE, 1000, 1)
    np.testing.assert_array_equal(cropped, exact[:1000])
    padded = decode_clip(path, RATE, 6000, 1)
    np.testing.assert_array_equal(padded[:4000], exact)
    assert not padded[4000:].any()


def test_decode_clip_at_the_file_rate_is_the_plain_read(tmp_path):
    path = tmp_path / "mono.au"
    sf.write(path, 0.3 * np.random.default_rng(0).standard_normal(5000), RATE, format="AU", subtype="PCM_16")
    np.testing.assert_array_equal(decode_clip(path, RATE, 5000, 1), sf.read(path, dtype="float32")[0])


def test_decode_clip_rejects_bad_audio(tmp_path):
    sf.write(tmp_path / "short.wav", np.zeros(3000, dtype=np.float32), RATE)
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1), dtype=np.float32), RATE)
    (tmp_path / "garbage.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)
    with pytest.raises(BadAudio, match=r"too short \(0.375 s, at least 0.5 s needed\)"):
        decode_clip(tmp_path / "short.wav", RATE, N, N // 2)
    with pytest.raises(BadAudio, match="^empty$"):
        decode_clip(tmp_path / "empty.wav", RATE, N, 1)
    with pytest.raises(BadAudio, match=r"^unreadable \(.*garbage.wav"):
        decode_clip(tmp_path / "garbage.wav", RATE, N, 1)


def test_built_once_then_reused(dataset, tmp_path, monkeypatch):
    folder, files = dataset
    skipped = r"test: skipped 1 of 39 file\(s\) as bad audio: jazz/jazz.00054.wav \(unreadable"
    with pytest.warns(UserWarning, match=skipped):
        first = build(files, folder, tmp_path / "cache")
    assert first.audio.dtype == np.float16 and first.audio.shape == (39, N)
    bad = files.index(folder / "jazz" / "jazz.00054.wav")
    assert list(first.reasons) == [bad] and first.ok.sum() == 38 and not first.ok[bad]
    assert not np.asarray(first.audio[bad]).any()
    for row in (0, 17, 38):
        np.testing.assert_allclose(first.audio[row], decode_clip(files[row], RATE, N, N // 2), atol=ATOL_F16)
    assert first.directory.parent == tmp_path / "cache" and first.directory.name.startswith("test-8000hz-8000-")
    assert json.loads((first.directory / "manifest.json").read_text())["files"][bad] == "jazz/jazz.00054.wav"
    stamp = (first.directory / "audio.npy").stat().st_mtime_ns
    calls = counting_decoder(monkeypatch, fail_after=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the bad file was reported by the build, not again
        again = build(files, folder, tmp_path / "cache")
    assert calls == [] and again.directory == first.directory and again.reasons == first.reasons
    assert (first.directory / "audio.npy").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.audio, first.audio)
    with pytest.raises(ValueError, match="not writable|read-only"):
        again.audio[0, 0] = 1.0


def test_interrupted_build_resumes(dataset, tmp_path, monkeypatch):
    folder, files = dataset
    counting_decoder(monkeypatch, fail_after=20)
    with pytest.raises(Interrupted):
        build(files, folder, tmp_path / "cache")
    (directory,) = (tmp_path / "cache").iterdir()
    assert not (directory / "complete").exists()
    done = int((np.load(directory / "status.npy") > 0).sum())
    assert 0 < done <= 20
    calls = counting_decoder(monkeypatch)
    with pytest.warns(UserWarning, match="skipped 1 of 39"):
        resumed = build(files, folder, tmp_path / "cache")
    assert len(calls) == 39 - done and (directory / "complete").exists()
    with pytest.warns(UserWarning):
        fresh = build(files, folder, tmp_path / "fresh")
    np.testing.assert_array_equal(resumed.audio, fresh.audio)
    np.testing.assert_array_equal(resumed.ok, fresh.ok)


def test_parallel_build_matches_in_process(dataset, tmp_path):
    folder, files = dataset
    with pytest.warns(UserWarning, match="skipped 1 of 39"):
        pooled = build(files, folder, tmp_path / "pooled", workers=2)
    with pytest.warns(UserWarning, match="skipped 1 of 39"):
        single = build(files, folder, tmp_path / "single", workers=1)
    np.testing.assert_array_equal(pooled.audio, single.audio)
    assert pooled.reasons == single.reasons


def test_fingerprint_follows_file_content(dataset, tmp_path):
    folder, files = dataset
    with pytest.warns(UserWarning):
        before = build(files, folder, tmp_path / "cache")
    target = folder / "blues" / "blues.00000.wav"
    row = files.index(target)
    sf.write(target, np.zeros(N, dtype=np.float32), RATE)  # new content, new size
    with pytest.warns(UserWarning):
        after = build(files, folder, tmp_path / "cache")
    assert after.directory != before.directory and not np.asarray(after.audio[row]).any()
    assert np.asarray(before.audio[row]).any()
    os.utime(target, ns=(0, 12345))  # same bytes, other modification time
    with pytest.warns(UserWarning):
        assert build(files, folder, tmp_path / "cache").directory not in (before.directory, after.directory)


def test_read_only_dataset_folder(dataset, tmp_path):
    folder, files = dataset
    def listing():
        return sorted((str(p), p.stat().st_mtime_ns) for p in folder.parent.rglob("*"))
    snapshot = listing()
    paths = [folder.parent, *folder.parent.rglob("*")]
    for p in paths:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        with pytest.warns(UserWarning):
            cache = build(files, folder, tmp_path / "cache")
    finally:
        for p in paths:
            p.chmod(0o755 if p.is_dir() else 0o644)
    assert cache.ok.sum() == 38 and listing() == snapshot


def test_concurrent_builders_decode_once(dataset, tmp_path, monkeypatch):
    folder, files = dataset
    calls = counting_decoder(monkeypatch)
    results = []

    def trial():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results.append(build(files, folder, tmp_path / "cache"))
    threads = [threading.Thread(target=trial) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0].directory == results[1].directory
    assert len(calls) == 39


@pytest.mark.parametrize("damage", ["truncate", "remove"])
def test_complete_cache_with_damaged_audio_is_rebuilt(dataset, tmp_path, damage):
    """A ``complete`` marker over a truncated (a full disk, a copy that stopped) or missing audio.npy
    is detected, reported and decoded again, never memory-mapped as it is."""
    folder, files = dataset
    with pytest.warns(UserWarning, match="skipped 1 of 39"):
        first = build(files, folder, tmp_path / "cache")
    expected = np.array(first.audio)
    audio = first.directory / "audio.npy"
    del first
    if damage == "truncate":
        with open(audio, "r+b") as f:
            f.truncate(audio.stat().st_size // 2)
    else:
        audio.unlink()
    with pytest.warns(UserWarning, match="marked complete but .*decoding it again"):
        again = build(files, folder, tmp_path / "cache")
    np.testing.assert_array_equal(again.audio, expected)
    assert (again.directory / "complete").exists()


@pytest.mark.parametrize("length", [1, 999, 1000, 4000, 7998, 7999, 8000, 8001])
def test_centre_padding_is_the_dmel_codes_np_pad(length):
    """``center`` is the DMEL code's AudioMNIST padding ``np.pad(x, 1 + (n - len(x)) // 2)[:n]`` wherever that
    expression is defined (up to n + 1 samples); ``end`` puts the zeros after the recording."""
    n = 8000
    x = np.random.default_rng(length).standard_normal(length).astype(np.float32)
    np.testing.assert_array_equal(fit_clip(x, n, "center"), np.pad(x, 1 + (n - len(x)) // 2)[:n])
    np.testing.assert_array_equal(fit_clip(x, n, "end"), np.concatenate([x, np.zeros(max(0, n - length))])[:n])


def test_centre_padding_keeps_the_middle_of_a_long_recording():
    x = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fit_clip(x, 4, "center"), [3, 4, 5, 6])  # (10 - 4) // 2 = 3 samples dropped first
    np.testing.assert_array_equal(fit_clip(x, 4, "end"), [0, 1, 2, 3])
    with pytest.raises(ValueError, match="clip_padding"):
        fit_clip(x, 4, "left")
