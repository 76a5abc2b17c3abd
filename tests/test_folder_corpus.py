"""The ``folder`` corpus: the user's own labelled audio, in class folders and in a manifest, on a generated
fixture of WAV (16 and 44.1 kHz), FLAC, OGG/Vorbis and MP3, mono and stereo, with an unreadable file.

Expected values come from the fixture's own numbers: each file is a sine at a frequency of its own,
found again by an FFT of its decoded row; a stereo file of channels 2s and 0 decodes to s; split sizes
are the shares of folder_split times the file count; ids of a manifest's split and fold columns."""
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from corpora import folder
from training.config import resolve_config
from training.segments import eval_plan, n_segments, read_segments

RATE = 16000
CLIP = 0.5  # s: 8000 samples at RATE, an FFT bin of 2 Hz
N = round(CLIP * RATE)
ATOL_F16 = 2e-3  # float16 cache of values in [-1, 1], plus soxr's passband ripple
AMPLITUDE = 0.25
# (ending, file rate Hz, soundfile format, subtype, channels): the formats a user's folder holds
FORMATS = [("wav", 16000, "WAV", "PCM_16", 1), ("wav", 44100, "WAV", "PCM_16", 2), ("flac", 22050, "FLAC", "PCM_16", 1),
           ("ogg", 48000, "OGG", "VORBIS", 2), ("mp3", 44100, "MP3", "MPEG_LAYER_III", 1)]
CLASSES = ("alpha", "beta", "gamma")
SPEAKERS = 10


def tone(hz: float, seconds: float, rate: int) -> np.ndarray:
    """``(round(seconds * rate),)`` float32 sine of ``AMPLITUDE`` at ``hz``."""
    return (AMPLITUDE * np.sin(2 * np.pi * hz * np.arange(round(seconds * rate)) / rate)).astype(np.float32)


def write(path: Path, k: int, hz: float, seconds: float = CLIP) -> None:
    """A ``seconds`` tone at ``hz`` in the ``k``-th format of ``FORMATS`` (cyclically)."""
    _, rate, kind, subtype, channels = FORMATS[k % len(FORMATS)]
    x = tone(hz, seconds, rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([x] * channels, axis=1), rate, format=kind, subtype=subtype)


def dominant_hz(row: np.ndarray) -> float:
    """The frequency (Hz, at ``RATE``) of the largest FFT magnitude of ``row``."""
    return float(np.argmax(np.abs(np.fft.rfft(row))) * RATE / len(row))


@pytest.fixture(scope="module")
def class_dir(tmp_path_factory):
    """``(root, {id: tone Hz})``: 10 files in each of 3 class folders, cycling through ``FORMATS``, among them
    a nested one, a stereo file of channels 2s and 0 (``alpha/stereo.wav``), a short and a long one; plus an
    unreadable ``gamma/broken.wav``, an audio file and a README directly in the root, a text file and a
    hidden file in a class folder."""
    root = tmp_path_factory.mktemp("classes")
    hz = {}
    for c, name in enumerate(CLASSES):
        for k in range(10):
            ending = FORMATS[k % len(FORMATS)][0]
            rel = f"{name}/take{k}.{ending}" if k != 3 else f"{name}/session/take{k}.{ending}"
            hz[rel] = 300.0 + 100 * (10 * c + k)
            write(root / rel, k, hz[rel])
    (root / "alpha/take0.wav").unlink()  # replaced by the stereo file: left 2s, right 0 -> mono s
    del hz["alpha/take0.wav"]
    hz["alpha/stereo.wav"] = 250.0
    s = tone(250.0, CLIP, RATE)
    sf.write(root / "alpha/stereo.wav", np.stack([2 * s, np.zeros_like(s)], axis=1), RATE, subtype="FLOAT")
    (root / "beta/take0.wav").unlink()  # a short (0.2 s) and, in gamma, a long (1 s) file at RATE
    del hz["beta/take0.wav"]
    hz["beta/short.wav"] = 1000.0
    sf.write(root / "beta/short.wav", tone(1000.0, 0.2, RATE), RATE)
    (root / "gamma/take0.wav").unlink()
    del hz["gamma/take0.wav"]
    hz["gamma/long.wav"] = 1200.0
    sf.write(root / "gamma/long.wav", tone(1200.0, 1.0, RATE), RATE)
    (root / "gamma/broken.wav").write_bytes(b"RIFF\x00\x01garbage, not audio" * 20)
    (root / "stray.wav").write_bytes((root / "alpha/stereo.wav").read_bytes())
    (root / "README.txt").write_text("my recordings")
    (root / "alpha/notes.txt").write_text("mic: 1")
    (root / "alpha/.DS_Store").write_bytes(b"\x00")
    return root, hz


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def config(data_dir, cache_dir, **kw):
    return resolve_config({"dataset_name": "folder", "data_dir": str(data_dir), "cache_dir": str(cache_dir),
                           "sample_rate": RATE, "clip_seconds": CLIP, "decode_workers": 1, **kw})


def load(data_dir, cache_dir, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fixture's bad files, reported by test_*_warns
        return folder.load_splits(config(data_dir, cache_dir, **kw))


def rows_by_id(s) -> dict[str, np.ndarray]:
    """``id -> (N,)`` decoded row, over the three splits."""
    rows = {}
    for part in ("train", "valid", "test"):
        ids, x = getattr(s, f"ids_{part}"), getattr(s, f"x_{part}")
        rows.update(zip(ids, x[np.arange(len(ids))].numpy()))
    return rows


def test_class_folders_warn_of_the_files_left_out(class_dir, tmp_path):
    root, _ = class_dir
    with pytest.warns(UserWarning) as caught:
        s = folder.load_splits(config(root, tmp_path))
    text = " ".join(str(w.message) for w in caught)
    assert "gamma/broken.wav" in text and "bad audio" in text  # the cache's warning, at its build
    assert "stray.wav" in text and "no class folder" in text
    assert "were ignored (.txt: 2)" in text
    assert s.info == {"files": 31, "train": 21, "valid": 3, "test": 6, "unreadable": 1, "missing": 0,
                      "unlabelled": 1, "ignored": 2}


def test_class_folders_labels_and_stratified_counts(class_dir, cache_dir):
    root, hz = class_dir
    s = load(root, cache_dir)
    assert s.class_names == list(CLASSES) and s.n_classes == 3 and s.sample_rate == RATE
    assert s.x_train.shape == (21, N)
    ids = s.ids_train + s.ids_valid + s.ids_test
    assert sorted(ids) == sorted(hz) and "gamma/broken.wav" not in ids
    assert "beta/session/take3.ogg" in ids  # a nested folder belongs to its class
    for part in ("train", "valid", "test"):
        labels = getattr(s, f"y_{part}").tolist()
        assert labels == [CLASSES.index(i.split("/")[0]) for i in getattr(s, f"ids_{part}")]
        # 0.7/0.1/0.2 of 10 files per class, in each class
        assert np.bincount(labels, minlength=3).tolist() == [{"train": 7, "valid": 1, "test": 2}[part]] * 3


def test_every_format_decodes_to_its_tone(class_dir, cache_dir):
    root, hz = class_dir
    rows = rows_by_id(load(root, cache_dir))
    for rel, f in hz.items():
        assert abs(dominant_hz(rows[rel]) - f) <= 2, rel  # within one FFT bin, after resampling and lossy coding
    for rel in ("alpha/take1.wav", "alpha/take2.flac"):  # 44.1 kHz stereo, 22.05 kHz mono, resampled
        assert np.sqrt(np.mean(rows[rel] ** 2)) == pytest.approx(AMPLITUDE / np.sqrt(2), rel=0.02)
    for rel in ("alpha/session/take3.ogg", "alpha/take4.mp3"):  # lossy: the tone's level, roughly
        assert np.abs(rows[rel]).max() == pytest.approx(AMPLITUDE, rel=0.2)


def test_stereo_is_averaged_and_clips_fit_the_length(class_dir, cache_dir):
    root, _ = class_dir
    rows = rows_by_id(load(root, cache_dir))
    np.testing.assert_allclose(rows["alpha/stereo.wav"], tone(250.0, CLIP, RATE), atol=ATOL_F16)
    short = round(0.2 * RATE)
    np.testing.assert_allclose(rows["beta/short.wav"][:short], tone(1000.0, 0.2, RATE), atol=ATOL_F16)
    assert not rows["beta/short.wav"][short:].any()  # padded at the end (clip_padding="end")
    np.testing.assert_allclose(rows["gamma/long.wav"], tone(1200.0, 1.0, RATE)[:N], atol=ATOL_F16)  # its first 0.5 s
    centred = rows_by_id(load(root, cache_dir, clip_padding="center"))["beta/short.wav"]
    left = 1 + (N - short) // 2  # fit_clip's "center"
    assert not centred[:left].any() and not centred[left + short:].any()


def test_segments_cut_a_folder_clip(class_dir, cache_dir):
    root, _ = class_dir
    cfg = config(root, cache_dir, segment_seconds=CLIP / 4)
    s = load(root, cache_dir, segment_seconds=CLIP / 4)
    length = s.n_points // n_segments(cfg)
    clips, offsets = eval_plan(len(s.x_test), s.n_points, length)
    segments = read_segments(s.x_test, clips, offsets, length)
    assert (n_segments(cfg), length, segments.shape) == (4, N // 4, (4 * len(s.x_test), N // 4))
    np.testing.assert_array_equal(segments.reshape(len(s.x_test), N).numpy(), s.x_test[np.arange(len(s.x_test))].numpy())


@pytest.fixture(scope="module")
def manifest_dir(tmp_path_factory):
    """``(root, manifest table)``: 10 speakers x 3 classes under ``clips/`` (one file of speaker 0 outside
    ``root``, by an absolute path), listed in ``manifest.csv`` with split (speakers 0-6 train, 7 valid,
    8-9 test), fold (speaker % 5 + 1) and group (the speaker); plus a listed file that is absent and an
    unreadable one, both of speaker 9."""
    root = tmp_path_factory.mktemp("manifest")
    outside = tmp_path_factory.mktemp("elsewhere")
    rows = []
    for speaker in range(SPEAKERS):
        for c, label in enumerate(("cat", "bird", "dog")):
            k = speaker * 3 + c
            ending = FORMATS[k % len(FORMATS)][0]
            path = (outside / f"s0_{label}.{ending}") if (speaker, c) == (0, 0) else root / "clips" / f"s{speaker}_{label}.{ending}"
            write(path, k, 300.0 + 50 * k)
            rows.append((str(path) if path.is_relative_to(outside) else f"clips/{path.name}", label, speaker))
    rows.append(("clips/absent.wav", "cat", 9))
    (root / "clips/bad.wav").write_bytes(b"\xff" * 500)
    rows.append(("clips/bad.wav", "dog", 9))
    table = pd.DataFrame(rows, columns=["path", "label", "group"])
    table["split"] = ["train" if g <= 6 else "valid" if g == 7 else "test" for g in table["group"]]
    table["fold"] = table["group"] % 5 + 1
    table["group"] = "speaker" + table["group"].astype(str)
    table.to_csv(root / "manifest.csv", index=False)
    return root, table


def manifest_ids(root, table, mask) -> list[str]:
    """The ids (paths relative to ``root``, else absolute) of the readable, present rows of ``table`` where ``mask`` holds."""
    kept = mask & ~table["path"].isin(["clips/absent.wav", "clips/bad.wav"])
    return table["path"][kept].tolist()


def test_manifest_split_column_is_honoured(manifest_dir, tmp_path):
    root, table = manifest_dir
    with pytest.warns(UserWarning) as caught:
        s = folder.load_splits(config(root, tmp_path))
    text = " ".join(str(w.message) for w in caught)
    assert "absent.wav" in text and "clips/bad.wav" in text
    for part in ("train", "valid", "test"):
        assert getattr(s, f"ids_{part}") == manifest_ids(root, table, table["split"] == part)
    assert str(table["path"][0]) in s.ids_train and Path(s.ids_train[0]).is_absolute()  # outside data_dir
    assert s.class_names == ["bird", "cat", "dog"]
    assert s.y_test.tolist() == [["bird", "cat", "dog"].index(table["label"][i]) for i in range(len(table))
                                 if table["split"][i] == "test" and table["path"][i] not in ("clips/absent.wav", "clips/bad.wav")]
    assert s.info == {"files": 32, "train": 21, "valid": 3, "test": 6, "unreadable": 1, "missing": 1,
                      "unlabelled": 0, "ignored": 0}
    rows = rows_by_id(s)
    for k, p in enumerate(table["path"][:30]):
        assert abs(dominant_hz(rows[p]) - (300.0 + 50 * k)) <= 2, p


def test_fold_protocol(manifest_dir, cache_dir):
    root, table = manifest_dir
    groups = dict(zip(table["path"], table["group"]))
    for seed in range(3):
        s = load(root, cache_dir, protocol="fold", fold=2, seed=seed)  # explicit: wins over the split column
        assert s.ids_test == manifest_ids(root, table, table["fold"] == 2)  # speakers 1 and 6
        assert sorted(s.ids_train + s.ids_valid) == sorted(manifest_ids(root, table, table["fold"] != 2))
        valid, train = {groups[i] for i in s.ids_valid}, {groups[i] for i in s.ids_train}
        assert len(valid) == 1 and not valid & train  # 1/8 of the 8 training speakers, whole
    with pytest.raises(ValueError, match=r"fold=7: the manifest's folds are \[1, 2, 3, 4, 5\]"):
        load(root, cache_dir, protocol="fold", fold=7)


def test_stratified_split_keeps_groups_whole(manifest_dir, cache_dir):
    root, table = manifest_dir
    table[["path", "label", "group"]].to_csv(root / "no_split.csv", index=False)  # a manifest named by config
    groups = dict(zip(table["path"], table["group"]))
    splits = set()
    for seed in range(5):
        s = load(root, cache_dir, manifest="no_split.csv", seed=seed)
        by_split = [{groups[i] for i in getattr(s, f"ids_{part}")} for part in ("train", "valid", "test")]
        assert not by_split[0] & by_split[1] and not by_split[0] & by_split[2] and not by_split[1] & by_split[2]
        assert [len(g) for g in by_split] == [7, 1, 2]  # 0.7/0.1/0.2 of 10 speakers
        assert all(set(getattr(s, f"y_{part}").tolist()) == {0, 1, 2} for part in ("train", "valid", "test"))
        splits.add(tuple(s.ids_test))
    assert len(splits) > 1  # seeded: another seed, another split
    same = [load(root, cache_dir, manifest="no_split.csv", seed=seed, split_seed=0).ids_test for seed in (1, 2)]
    assert same[0] == same[1]


def test_too_few_groups_name_the_class(manifest_dir, cache_dir):
    root, table = manifest_dir
    few = table[["path", "label", "group"]].copy()
    few.loc[few["group"].isin(["speaker3", "speaker4"]) & (few["label"] == "dog"), "label"] = "rare"
    few.to_csv(root / "few.csv", index=False)
    with pytest.raises(ValueError, match=r"class\(es\) 'rare' \(2 files in 2 group\(s\)\) have fewer than 3 groups"):
        load(root, cache_dir, manifest="few.csv")
    untrained = table.copy()
    untrained.loc[untrained["split"] != "test", "label"] = "cat"
    untrained.to_csv(root / "untrained.csv", index=False)
    with pytest.raises(ValueError, match=r"'bird' \(0/0/2\), 'dog' \(0/0/2\) \(train/valid/test files\) have no "
                                         "training example under protocol 'split'"):
        load(root, cache_dir, manifest="untrained.csv")


def test_manifest_errors_name_the_lines(tmp_path, cache_dir):
    (tmp_path / "manifest.csv").write_text("path,label,split\na.wav,cat,train\nb.wav,,train\nc.wav,dog,holdout\n")
    with pytest.raises(ValueError, match=r"empty label on line\(s\) 3"):
        load(tmp_path, cache_dir)
    (tmp_path / "manifest.csv").write_text("path,label,split\na.wav,cat,train\nc.wav,dog,holdout\n")
    with pytest.raises(ValueError, match=r"split must be train, valid or test, not holdout \(line\(s\) 3\)"):
        load(tmp_path, cache_dir)
    (tmp_path / "manifest.csv").write_text("file,class\na.wav,cat\n")
    with pytest.raises(ValueError, match=r"no column\(s\) \['path', 'label'\]"):
        load(tmp_path, cache_dir)
    with pytest.raises(ValueError, match="folder_split"):
        load(tmp_path, cache_dir, folder_split=(0.8, 0.0, 0.2))


def test_extensions_choose_the_files_read(class_dir, tmp_path):
    root, hz = class_dir
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table, left_out = folder.find_class_folders(root, ".FLAC")
    assert sorted(Path(p).relative_to(root).as_posix() for p in table["path"]) == sorted(h for h in hz if h.endswith(".flac"))
    assert left_out == {"unlabelled": 0, "ignored": 31 - 6 + 1 + 2}  # the other audio, stray.wav, the two .txt


def test_class_names_sort_numerically_when_integers():
    assert folder.sort_classes(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert folder.sort_classes(["b", "10", "a", "2"]) == ["10", "2", "a", "b"]


@pytest.mark.parametrize("per_class, train", [(3, 1), (4, 2)])
def test_a_small_balanced_folder_still_splits_three_ways(tmp_path, cache_dir, per_class, train):
    """3 or 4 files per class, the default 0.7/0.1/0.2: one file of each class in valid and in test (a share
    rounds up to one group; StratifiedGroupKFold refuses more folds than a class has files)."""
    for c, name in enumerate(CLASSES):
        for k in range(per_class):
            write(tmp_path / "audio" / name / f"{k}.wav", 0, 200.0 * (c + 1))
    s = load(tmp_path / "audio", cache_dir)
    for part, expected in (("train", train), ("valid", 1), ("test", 1)):
        assert np.bincount(getattr(s, f"y_{part}").numpy(), minlength=3).tolist() == [expected] * 3
