"""FMA: metadata parsing, paths, install (local folder, file://, http with resume, wrong SHA-1, shell entry point),
and the loader on a read-only fixture with the broken files of the real fma_small."""
import functools
import http.server
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from corpora import fma
from corpora.download import DownloadError
from tests.fixtures_fma import (EMBEDDED, MEDIUM_GENRES, SMALL_GENRES, make_fma, make_fma_zips, set_read_only,
                                snapshot)
from training.config import resolve_config


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The fixture dataset, read-only for the whole module."""
    fixture = make_fma(tmp_path_factory.mktemp("fma"))
    set_read_only(fixture.root)
    yield fixture
    set_read_only(fixture.root, read_only=False)


@pytest.fixture(scope="module")
def mirror(tree, tmp_path_factory):
    """A folder holding fma_metadata.zip and fma_small.zip of the fixture, and their SHA-1 sums."""
    folder = tmp_path_factory.mktemp("mirror")
    return folder, make_fma_zips(tree.root, folder)


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.name.startswith(".")) if dest.exists() else []


# metadata and paths

def test_read_tracks_and_select(tree):
    tracks = fma.read_tracks(tree.root / "fma_metadata" / "tracks.csv")
    assert tracks.shape == (len(tree.tracks), 9) and tracks.index.name == "track_id"
    assert list(tracks.index) == list(tree.tracks.index)
    assert tracks.loc[5, ("album", "title")] == EMBEDDED and tracks.loc[5, ("track", "genres")] == "[21, 38]"
    small, medium, large = (set(fma.select(tracks, s).index) for s in fma.SUBSET_ORDER)
    assert small < medium < large
    assert tracks[fma.GENRE].isna().sum() == 3 and not fma.select(tracks, "large")[fma.GENRE].isna().any()
    assert sorted(fma.select(tracks, "small")[fma.GENRE].unique()) == sorted(SMALL_GENRES)
    assert sorted(fma.select(tracks, "medium")[fma.GENRE].unique()) == sorted(SMALL_GENRES + MEDIUM_GENRES)
    assert set(tracks[fma.SPLIT]) == set(fma.SPLITS)
    with pytest.raises(ValueError, match="unknown FMA subset 'full'"):
        fma.select(tracks, "full")


def test_track_path():
    assert fma.track_path(Path("x/fma_small"), 2) == Path("x/fma_small/000/000002.mp3")
    assert fma.track_path(Path("x"), 155066) == Path("x/155/155066.mp3")


# install

def test_install_from_local_folder_then_rerun(tree, mirror, tmp_path, capsys):
    folder, sums = mirror
    dest = tmp_path / "data" / "fma"
    fma.install(dest, base=str(folder), sha1=sums)
    csv = dest / "fma_metadata" / "tracks.csv"
    assert csv.read_bytes() == (tree.root / "fma_metadata" / "tracks.csv").read_bytes()
    assert snapshot(dest / "fma_small").keys() == snapshot(tree.root / "fma_small").keys()
    assert (dest / "fma_small" / "000" / "000002.mp3").is_file() and leftovers(dest) == []
    stamp = csv.stat().st_mtime_ns
    fma.install(dest, base=str(folder), sha1=sums)
    out = capsys.readouterr().out
    assert "fma_metadata is already in" in out and "fma_small is already in" in out and "nothing to do" in out
    assert csv.stat().st_mtime_ns == stamp and sorted(p.name for p in dest.iterdir()) == ["fma_metadata", "fma_small"]


def test_install_from_file_url(mirror, tmp_path):
    folder, sums = mirror
    fma.install(tmp_path / "fma", base=folder.as_uri() + "/", sha1=sums)
    assert (tmp_path / "fma" / "fma_small" / "000" / "000002.mp3").is_file() and leftovers(tmp_path / "fma") == []


def test_wrong_sha1_installs_nothing_and_keeps_a_local_copy(mirror, tmp_path):
    folder, sums = mirror
    wrong = {**sums, "fma_small.zip": "0" * 40}
    with pytest.raises(DownloadError, match=f"fma_small.zip has SHA-1 {sums['fma_small.zip']}, expected 0{{40}}"):
        fma.install(tmp_path / "fma", base=str(folder), sha1=wrong)
    assert not (tmp_path / "fma").exists() and (folder / "fma_small.zip").is_file()


class Server(http.server.ThreadingHTTPServer):
    """Serves a folder; ``mode``: "range" honours ``Range``, "whole" ignores it, "cut" sends half of
    each file once (then behaves as "range"). ``log``: (file, Range header, bytes sent) per request."""

    def __init__(self, folder: Path, mode: str):
        super().__init__(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.mode, self.log = mode, []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        data = Path(self.translate_path(self.path)).read_bytes()
        asked = self.headers.get("Range")
        start = int(asked.split("=")[1].split("-")[0]) if asked and self.server.mode != "whole" else 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if self.server.mode == "cut":
            body, self.server.mode = body[:len(body) // 2], "range"
        self.wfile.write(body)
        self.server.log.append((Path(self.path).name, asked, len(body)))

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("mode", ["range", "whole"])
def test_http_resumes_a_partial_download(mirror, tmp_path, mode):
    """A ``.part`` left by an interrupted run: only the rest is requested (or, from a server that
    ignores ``Range``, the whole file replaces it) and the result verifies."""
    folder, sums = mirror
    dest = tmp_path / "fma"
    data = (folder / "fma_small.zip").read_bytes()
    half = len(data) // 2
    (dest / ".downloads").mkdir(parents=True)
    (dest / ".downloads" / "fma_small.zip.part").write_bytes(data[:half] if mode == "range" else b"x" * half)
    server = Server(folder, mode)
    try:
        fma.install(dest, base=server.url(), sha1=sums)
    finally:
        server.shutdown()
    sent = len(data) - half if mode == "range" else len(data)
    assert ("fma_small.zip", f"bytes={half}-", sent) in server.log
    assert ("fma_metadata.zip", None, (folder / "fma_metadata.zip").stat().st_size) in server.log
    assert (dest / "fma_small" / "000" / "000002.mp3").is_file() and leftovers(dest) == []


def test_http_interrupted_then_rerun_resumes(mirror, tmp_path):
    folder, sums = mirror
    dest = tmp_path / "fma"
    server = Server(folder, "cut")
    try:
        with pytest.raises(DownloadError, match="fma_metadata.zip stopped after .* bytes. Rerun to resume"):
            fma.install(dest, base=server.url(), sha1=sums)
        assert not (dest / "fma_metadata").exists() and leftovers(dest) == [".downloads"]
        fma.install(dest, base=server.url(), sha1=sums)
    finally:
        server.shutdown()
    assert [(name, asked is not None) for name, asked, _ in server.log] == [
        ("fma_metadata.zip", False), ("fma_metadata.zip", True), ("fma_small.zip", False)]
    assert (dest / "fma_metadata" / "tracks.csv").is_file() and leftovers(dest) == []


def test_http_wrong_sha1_deletes_the_download(mirror, tmp_path):
    folder, sums = mirror
    dest = tmp_path / "fma"
    server = Server(folder, "range")
    try:
        with pytest.raises(DownloadError, match="expected 1{40} .*The download was deleted"):
            fma.install(dest, base=server.url(), sha1={**sums, "fma_small.zip": "1" * 40})
    finally:
        server.shutdown()
    assert sorted(p.name for p in (dest / ".downloads").iterdir()) == ["fma_metadata.zip"]  # verified: kept
    assert not (dest / "fma_metadata").exists() and not (dest / "fma_small").exists()


def test_shell_entry_point_with_fma_url(mirror, tmp_path, root):
    """`FMA_URL=<folder> sh download_data.sh fma`: the fixture is not the real FMA, so the published
    SHA-1 rejects it and nothing is installed."""
    folder, _ = mirror
    dest = tmp_path / "fma"
    env = {**os.environ, "FMA_URL": str(folder), "FMA_DIR": str(dest)}
    out = subprocess.run(["sh", "download_data.sh", "fma"], cwd=root, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1, out.stderr
    assert f"expected {fma.SHA1['fma_metadata.zip']}" in out.stderr and not dest.exists()


# loader

def cfg(tree, cache, **kw):
    return resolve_config({"data_dir": str(tree.root), "sample_rate": 8000, "clip_seconds": 2.0,
                           "cache_dir": str(cache), "decode_workers": 1, **kw})


def expected_ids(tree, subsets, split):
    t = tree.tracks
    keep = t[("set", "subset")].isin(subsets) & (t[("set", "split")] == split) & t.index.isin(list(tree.hz))
    return [f"{i:06d}" for i in t.index[keep]]


def test_loader_small(tree, tmp_path):
    before = snapshot(tree.root)
    with pytest.warns(UserWarning, match=f"1 track.* have no mp3 under .*: {tree.missing:06d}"), \
            pytest.warns(UserWarning, match="fma_small: skipped 4 of 24 file"):
        s = fma.load_splits(cfg(tree, tmp_path / "cache"))
    assert s.class_names == sorted(SMALL_GENRES) and s.n_classes == 4 and s.sample_rate == 8000
    assert s.info == {"unreadable": len(tree.broken), "missing": 1}
    genre = tree.tracks[("track", "genre_top")]
    for split, x, y, ids in (("training", s.x_train, s.y_train, s.ids_train), ("validation", s.x_valid, s.y_valid,
                             s.ids_valid), ("test", s.x_test, s.y_test, s.ids_test)):
        assert ids == expected_ids(tree, ["small"], split)
        assert y.tolist() == [s.class_names.index(genre[int(i)]) for i in ids]
        audio = x[np.arange(len(ids))].numpy()
        assert audio.shape == (len(ids), 16000)
        peak_hz = np.abs(np.fft.rfft(audio, axis=1)).argmax(axis=1) * 8000 / 16000
        np.testing.assert_allclose(peak_hz, [tree.hz[int(i)] for i in ids], atol=1.0)  # each row is its track
    assert s.ids_train[0] == "000002" and s.n_points == 16000
    assert snapshot(tree.root) == before  # nothing written into the dataset folder
    with pytest.warns(UserWarning, match="no mp3"):  # the cache is reused: no decoding, no decoding warning
        again = fma.load_splits(cfg(tree, tmp_path / "cache"))
    assert again.ids_test == s.ids_test and len(list((tmp_path / "cache").iterdir())) == 1


def test_loader_medium(tree, tmp_path):
    with pytest.warns(UserWarning, match="fma_medium: skipped 4 of 30 file"), pytest.warns(UserWarning, match="no mp3"):
        s = fma.load_splits(cfg(tree, tmp_path, fma_subset="medium"))
    assert s.class_names == sorted(SMALL_GENRES + MEDIUM_GENRES)
    assert s.ids_valid == expected_ids(tree, ["small", "medium"], "validation")
    assert s.info == {"unreadable": len(tree.broken), "missing": 1}


def test_loader_errors(tree, tmp_path):
    with pytest.raises(FileNotFoundError, match="sh download_data.sh fma.*FMA_URL"):
        fma.load_splits(cfg(tree, tmp_path, data_dir=str(tmp_path / "nowhere")))
    with pytest.raises(ValueError, match="unknown fma_subset 'large'"):
        fma.load_splits(cfg(tree, tmp_path, fma_subset="large"))
    with pytest.raises(ValueError, match="unknown FMA protocol 'random'"):
        fma.load_splits(cfg(tree, tmp_path, protocol="random"))
