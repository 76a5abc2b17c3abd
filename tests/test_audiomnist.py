"""AudioMNIST (60 speakers): the DMEL speaker split on a fixture in the real layout, padding, and install from a
repository zip (local path, file://, rerun, content that fails verification, shell entry point)."""
import os
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import soxr

from corpora import audiomnist
from corpora.download import DownloadError
from corpora.splits import Rows
from tests.fixtures_audiomnist import digit_hz, make_audiomnist, make_audiomnist_zip
from training.config import resolve_config

RATE = 8000


@pytest.fixture(scope="module")
def am_dir(tmp_path_factory):
    root = make_audiomnist(tmp_path_factory.mktemp("audiomnist"))
    (root / "data" / "07" / "3_07_0.wav").write_bytes(b"RIFF not really")  # one unreadable recording
    return root


def load(data_dir, cache_dir, **kw):
    cfg = resolve_config({"dataset_name": "audiomnist60", "data_dir": str(data_dir), "cache_dir": str(cache_dir),
                          "sample_rate": RATE, "clip_seconds": 1.0, "decode_workers": 1, **kw})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unreadable file, reported once per cache build
        return audiomnist.load_splits(cfg)


def test_speaker_split_is_the_dmel_list(am_dir, tmp_path):
    s = load(am_dir, tmp_path / "cache")
    shipped = pd.read_csv(audiomnist.SPLIT_LIST, dtype=str)
    assert shipped["split"].value_counts().to_dict() == {"train": 36, "valid": 12, "test": 12}
    for ids, name in ((s.ids_train, "train"), (s.ids_valid, "valid"), (s.ids_test, "test")):
        speakers = {i.split("_")[1] for i in ids}
        assert speakers == set(shipped.loc[shipped["split"] == name, "speaker"].str.zfill(2))
    n_each = {name: len(ids) for name, ids in (("train", s.ids_train), ("valid", s.ids_valid), ("test", s.ids_test))}
    seven = shipped.set_index("speaker").loc["07", "split"]
    assert n_each == {name: (360 if name == "train" else 120) - (name == seven) for name in n_each}
    assert s.info == {"unreadable": 1} and "3_07_0" not in s.ids_train + s.ids_valid + s.ids_test
    assert s.y_test.tolist() == [int(i.split("_")[0]) for i in s.ids_test]
    assert s.n_classes == 10 and s.sample_rate == RATE
    assert load(am_dir, tmp_path / "cache", seed=5).ids_test == s.ids_test  # one fixed split


def test_resampled_and_zero_padded_to_one_second(am_dir, tmp_path):
    s = load(am_dir, tmp_path / "cache")
    assert isinstance(s.x_train, Rows) and s.x_train.shape == (len(s.ids_train), RATE)
    x = s.x_test[np.arange(10)].numpy()
    assert np.abs(x[:, int(0.31 * RATE):]).max() == 0  # the 0.15-0.3 s recordings, zero-padded at the end
    heard = np.abs(np.fft.rfft(x, axis=1)).argmax(axis=1) * RATE / x.shape[1]  # 48 kHz -> 8 kHz, the digit's tone
    np.testing.assert_allclose(heard, [digit_hz(int(d)) for d in s.y_test[:10]], atol=2)
    short = load(am_dir, tmp_path / "cache", clip_seconds=0.1)  # no recording is dropped for its length
    assert len(short.ids_train) == len(s.ids_train) and short.x_train.shape[1] == 800


def test_centred_as_the_dmel_code(am_dir, tmp_path):
    """``clip_padding=center`` (the audiomnist60 grid): each resampled recording x sits where the DMEL code's
    ``np.pad(x, 1 + (8000 - len(x)) // 2)[:8000]`` puts it; x read and resampled here with soundfile and soxr."""
    s = load(am_dir, tmp_path / "cache", clip_padding="center")
    for row, stem in list(enumerate(s.ids_test))[:6]:
        digit, speaker, _ = stem.split("_")
        audio, rate = sf.read(am_dir / "data" / speaker / f"{stem}.wav", dtype="float32")
        x = soxr.resample(audio, rate, RATE, quality="HQ")
        want = np.pad(x, 1 + (RATE - len(x)) // 2)[:RATE]
        # the cache holds float16
        np.testing.assert_allclose(s.x_test[np.array([row])].numpy()[0], want, atol=1e-3)
        assert np.abs(want[:(RATE - len(x)) // 2]).max() == 0  # zeros before the recording, not only after
    end = load(am_dir, tmp_path / "cache")
    assert not np.array_equal(end.x_test[np.arange(3)].numpy(), s.x_test[np.arange(3)].numpy())  # a cache of its own


def test_bad_settings_are_named(am_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown AudioMNIST protocol 'speaker'"):
        load(am_dir, tmp_path / "cache", protocol="speaker")
    for data_dir in (None, tmp_path):
        with pytest.raises(FileNotFoundError, match="sh download_data.sh audiomnist"):
            load(data_dir, tmp_path / "cache")
    few = make_audiomnist(tmp_path / "few", speakers=[1, 2, 3])  # all three train speakers
    with pytest.raises(ValueError, match="empty valid split"):
        load(few, tmp_path / "cache")


def test_data_folder_itself_as_data_dir(am_dir, tmp_path):
    assert load(am_dir / "data", tmp_path / "cache").ids_test == load(am_dir, tmp_path / "cache").ids_test


# install

LAYOUT = {"speakers": 3, "takes": 2}  # the fixture archive's size (the real one is 60 x 50)


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name or p.name.endswith(".part") or ".downloads" in p.name]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return make_audiomnist_zip(tmp_path_factory.mktemp("mirror") / "AudioMNIST-master.zip")


def test_install_from_local_path_and_file_url_then_rerun(archive, tmp_path, capsys):
    dest = audiomnist.install(tmp_path / "data" / "audiomnist60", str(archive), **LAYOUT)
    assert audiomnist.verify(dest, **LAYOUT) == [] and len(list((dest / "data").rglob("*.wav"))) == 60
    assert (dest / "data" / "audioMNIST_meta.txt").is_file() and not (dest / "audiomnist").exists()
    assert leftovers(dest.parent) == []
    other = audiomnist.install(tmp_path / "other", archive.as_uri(), **LAYOUT)
    stamp = (other / "data" / "01" / "0_01_0.wav").stat().st_mtime_ns
    audiomnist.install(other, archive.as_uri(), **LAYOUT)
    assert "nothing to do" in capsys.readouterr().out
    assert (other / "data" / "01" / "0_01_0.wav").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("kind,message", [
    ("missing", r"119 of the 120 recordings found \(6 of 6 speakers\); missing data/02/5_02_1.wav"),
    ("full", r"60 of the 30000 recordings found \(3 of 60 speakers\)"),
    ("corrupt", "not a valid zip archive"),
    ("layout", "holds none of the files of AudioMNIST"),
])
def test_wrong_content_installs_nothing(tmp_path, kind, message):
    if kind == "missing":
        bad = make_audiomnist_zip(tmp_path / "bad.zip", speakers=6, skip=("5_02_1.wav",))
        expected = {"speakers": 6, "takes": 2}
    else:
        bad = make_audiomnist_zip(tmp_path / "bad.zip", top="a/b" if kind == "layout" else "AudioMNIST-master")
        expected = LAYOUT if kind != "full" else {}
    if kind == "corrupt":
        bad.write_bytes(bad.read_bytes()[:3000])
    dest = tmp_path / "out" / "audiomnist60"
    with pytest.raises(DownloadError, match=message) as err:
        audiomnist.install(dest, str(bad), **expected)
    if kind in ("missing", "full"):
        assert "is not AudioMNIST" in str(err.value) and "Nothing was installed" in str(err.value)
    assert not dest.exists() and leftovers(dest.parent) == []


def test_unreadable_recording_fails_verification(tmp_path):
    root = make_audiomnist(tmp_path / "am", speakers=[1], takes=1)
    (root / "data" / "01" / "4_01_0.wav").write_bytes(b"")
    assert audiomnist.verify(root, speakers=1, takes=1)[0].startswith("unreadable data/01/4_01_0.wav")


def test_shell_entry_point_rejects_a_partial_copy(archive, tmp_path, root):
    """`AUDIOMNIST_URL=file://... sh download_data.sh audiomnist`: the fixture has 3 of the 60 speakers, so
    the real layout's check rejects it and nothing is installed."""
    dest = tmp_path / "audiomnist60"
    env = {**os.environ, "AUDIOMNIST_URL": archive.as_uri(), "AUDIOMNIST_DIR": str(dest)}
    out = subprocess.run(["sh", "download_data.sh", "audiomnist"], cwd=root, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    assert "is not AudioMNIST: 60 of the 30000 recordings found (3 of 60 speakers)" in out.stderr
    assert not dest.exists() and leftovers(tmp_path) == []
