"""GTZAN loader (filtered and random protocols, layouts, bad and missing clips) and install from a tarball."""
import functools
import http.server
import re
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from corpora import gtzan
from corpora.download import DownloadError
from corpora.splits import Rows
from tests.fixtures_gtzan import BROKEN, OTHER_RATE, fixture_stems, genre_hz, make_gtzan, make_gtzan_tarball
from training.config import resolve_config

RATE = 8000
N_LISTED = 443 + 197 + 290


@pytest.fixture(scope="module")
def gtzan_dir(tmp_path_factory):
    return make_gtzan(tmp_path_factory.mktemp("gtzan"))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def cfg(data_dir, cache_dir, **kw):
    return resolve_config({"dataset_name": "gtzan", "data_dir": str(data_dir), "cache_dir": str(cache_dir),
                           "sample_rate": RATE, "clip_seconds": 1.0, "decode_workers": 1, **kw})


def load(data_dir, cache_dir, **kw):
    """``load_splits``, ignoring its warnings (bad files on a first build; listed clips not in the fixture)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gtzan.load_splits(cfg(data_dir, cache_dir, **kw))


def peak_hz(x: np.ndarray) -> np.ndarray:
    """The strongest frequency of each row of ``x`` (n, RATE samples = 1 s), Hz."""
    return np.abs(np.fft.rfft(x, axis=1)).argmax(axis=1) * RATE / x.shape[1]


def test_filtered_split(gtzan_dir, cache_dir):
    want = fixture_stems()
    missing = N_LISTED - sum(len(want[name]) for name in gtzan.SPLIT_NAMES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = gtzan.load_splits(cfg(gtzan_dir, cache_dir))
    said = [str(w.message) for w in caught]
    assert any(re.match(rf"GTZAN: {missing} clip\(s\) of the filtered split are not in", m) for m in said), said
    assert s.ids_train == [x for x in want["train"] if x != BROKEN]
    assert (s.ids_valid, s.ids_test) == (want["valid"], want["test"])
    assert s.info == {"unreadable": 1, "missing": missing}
    for x, y, ids in ((s.x_train, s.y_train, s.ids_train), (s.x_valid, s.y_valid, s.ids_valid),
                      (s.x_test, s.y_test, s.ids_test)):
        assert isinstance(x, Rows) and x.shape == (len(ids), RATE)
        assert y.dtype == torch.int64 and y.tolist() == [gtzan.GENRES.index(i.split(".")[0]) for i in ids]
        # every clip decoded (.au or .wav, 22,050 or 16,000 Hz, mono or stereo) to its genre's tone at 8 kHz
        heard = peak_hz(x[np.arange(len(x))].numpy())
        np.testing.assert_allclose(heard, [genre_hz(i.split(".")[0]) for i in ids], atol=2)
    assert s.n_classes == 10 and s.class_names[5] == "jazz" and s.sample_rate == RATE and s.n_points == RATE


def test_fixture_mixes_formats(gtzan_dir):
    files = list((gtzan_dir / "genres").rglob("*.*"))
    assert {p.suffix for p in files} == {".wav", ".au"}
    assert {sf.info(p).samplerate for p in files if p.stem != BROKEN} == {22050, OTHER_RATE}
    assert {sf.info(p).channels for p in files if p.stem != BROKEN} == {1, 2}


def test_genres_folder_as_data_dir_shares_the_cache(gtzan_dir, cache_dir, monkeypatch):
    first = load(gtzan_dir, cache_dir)
    monkeypatch.setattr("corpora.audio_cache.decode_clip", lambda *a: pytest.fail("decoded again"))
    again = load(gtzan_dir / "genres", cache_dir)
    assert again.ids_train == first.ids_train and again.x_train.array.filename == first.x_train.array.filename


def test_random_split(gtzan_dir, cache_dir):
    s = load(gtzan_dir, cache_dir, protocol="random", seed=0)
    stems = {x for names in fixture_stems().values() for x in names}
    ids = s.ids_train + s.ids_valid + s.ids_test
    assert sorted(ids) == sorted(stems - {BROKEN}) and len(set(ids)) == len(ids)
    n = len(stems)
    assert s.info == {"unreadable": 1, "missing": 0}
    sizes = [len(s.ids_train), len(s.ids_valid), len(s.ids_test)]
    assert sum(sizes) == n - 1 and abs(sizes[0] - 0.7 * n) <= 1 and abs(sizes[1] - 0.1 * n) <= 1
    assert load(gtzan_dir, cache_dir, protocol="random", seed=0).ids_test == s.ids_test
    assert load(gtzan_dir, cache_dir, protocol="random", seed=1).ids_test != s.ids_test
    assert s.y_train.tolist() == [gtzan.GENRES.index(i.split(".")[0]) for i in s.ids_train]


def test_empty_split_is_named(tmp_path):
    root = make_gtzan(tmp_path / "g", per_split=1, splits=("train",))
    with pytest.raises(ValueError, match="empty valid split"):
        load(root, tmp_path / "cache")


def test_missing_data_says_how_to_download(tmp_path):
    for data_dir in (None, str(tmp_path / "nothing"), str(tmp_path)):
        with pytest.raises(FileNotFoundError, match="sh download_data.sh gtzan"):
            gtzan.load_splits(resolve_config({"data_dir": data_dir, "cache_dir": str(tmp_path / "cache")}))


def test_unknown_protocol(gtzan_dir, cache_dir):
    with pytest.raises(ValueError, match="unknown GTZAN protocol 'dmel'"):
        gtzan.load_splits(cfg(gtzan_dir, cache_dir, protocol="dmel"))


# install

def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name or p.name.endswith(".part")]


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    return make_gtzan_tarball(tmp_path_factory.mktemp("mirror") / "genres.tar.gz")


def test_install_from_local_path(tarball, tmp_path):
    dest = gtzan.install(tmp_path / "data" / "gtzan", str(tarball))
    assert dest == tmp_path / "data" / "gtzan" and gtzan.verify(dest) == []
    assert len(gtzan.find_clips(dest / "genres")) == 1000 and (dest / "genres" / "rock" / "rock.00099.wav").is_file()
    assert leftovers(dest.parent) == []


def test_install_from_file_url_then_rerun_does_nothing(tarball, tmp_path, capsys):
    dest = tmp_path / "gtzan"
    gtzan.install(dest, tarball.as_uri())
    stamp = (dest / "genres" / "blues" / "blues.00000.wav").stat().st_mtime_ns
    gtzan.install(dest, tarball.as_uri())
    assert "nothing to do" in capsys.readouterr().out
    assert (dest / "genres" / "blues" / "blues.00000.wav").stat().st_mtime_ns == stamp


def test_install_over_http_leaves_no_download(tarball, tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tarball.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{tarball.name}"
        gtzan.install(tmp_path / "gtzan", url)
        with pytest.raises(DownloadError, match="could not download .*missing.tar.gz"):
            gtzan.install(tmp_path / "other", url.replace(tarball.name, "missing.tar.gz"))
    finally:
        server.shutdown()
    assert gtzan.verify(tmp_path / "gtzan") == [] and not (tmp_path / ".gtzan.downloads").exists()
    assert not (tmp_path / "other").exists() and leftovers(tmp_path) == []


def test_wrong_count_installs_nothing(tmp_path):
    bad = make_gtzan_tarball(tmp_path / "genres.tar.gz", per_genre=99)
    dest = tmp_path / "out" / "gtzan"
    with pytest.raises(DownloadError, match="990 of the 1000 clips found; missing genres/blues/blues.00099.wav") as err:
        gtzan.install(dest, str(bad))
    assert "Nothing was installed" in str(err.value)
    assert not dest.exists() and leftovers(dest.parent) == []


def test_wrong_layout_and_corrupt_archive_install_nothing(tarball, tmp_path):
    dest = tmp_path / "out" / "gtzan"
    with pytest.raises(DownloadError, match=r"no genres/ folder \(found \['genres_original'\]\)"):
        gtzan.install(dest, str(make_gtzan_tarball(tmp_path / "kaggle.tar.gz", top="genres_original")))
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(tarball.read_bytes()[:3000])
    with pytest.raises(DownloadError, match="could not unpack"):
        gtzan.install(dest, str(truncated))
    assert not dest.exists() and leftovers(dest.parent) == []


def test_existing_other_folder_is_not_touched(tarball, tmp_path):
    dest = tmp_path / "gtzan"
    (dest / "genres").mkdir(parents=True)
    (dest / "genres" / "mine.txt").write_text("keep")
    with pytest.raises(DownloadError, match="exists but is not GTZAN"):
        gtzan.install(dest, str(tarball))
    assert (dest / "genres" / "mine.txt").read_text() == "keep"
