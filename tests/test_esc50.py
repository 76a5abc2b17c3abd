"""ESC-50: the dmel and fold protocols on a fixture in the real layout, missing and broken clips, and install
from a repository zip (local path, file://, http, rerun, content that fails verification, shell entry point)."""
import functools
import http.server
import os
import subprocess
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from corpora import esc50
from corpora.download import DownloadError
from corpora.splits import Rows
from tests.fixtures_esc50 import make_esc50, make_esc50_zip, meta_rows, target_hz
from training.config import resolve_config

RATE = 8000
BROKEN = 7  # row position of the unreadable file in the full fixture


@pytest.fixture(scope="module")
def esc_dir(tmp_path_factory):
    return make_esc50(tmp_path_factory.mktemp("esc50"), broken=BROKEN)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def load(data_dir, cache_dir, **kw):
    cfg = resolve_config({"dataset_name": "esc50", "data_dir": str(data_dir), "cache_dir": str(cache_dir),
                          "sample_rate": RATE, "clip_seconds": 0.25, "decode_workers": 1, **kw})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the broken file, reported once per cache build
        return esc50.load_splits(cfg)


def stems(rows):
    return [Path(n).stem for n in meta_rows()["filename"][rows]]


def test_dmel_protocol_is_the_shipped_list(esc_dir, cache_dir):
    s = load(esc_dir, cache_dir)
    shipped = pd.read_csv(esc50.LIST)
    want = {name: stems(shipped.loc[shipped["split"] == name, "row"].sort_values().to_numpy())
            for name in ("train", "valid", "test")}
    broken = stems([BROKEN])[0]
    assert (len(want["train"]), len(want["valid"]), len(want["test"])) == (1400, 200, 400)
    assert s.ids_train == [i for i in want["train"] if i != broken]
    assert (s.ids_valid, s.ids_test) == ([i for i in want["valid"] if i != broken], [i for i in want["test"] if i != broken])
    assert not set(s.ids_train) & set(s.ids_valid) and not set(s.ids_train) & set(s.ids_test)
    assert not set(s.ids_valid) & set(s.ids_test)
    assert s.info == {"unreadable": 1, "missing": 0}
    assert s.n_classes == 50 and s.class_names[3] == "sound_03" and s.sample_rate == RATE
    assert isinstance(s.x_test, Rows) and s.x_test.shape == (len(s.ids_test), 2000)
    assert s.y_test.tolist() == [int(i.split("-")[-1]) for i in s.ids_test]  # the target is in the file name
    # decoded (16 or 22.05 kHz -> 8 kHz): each clip carries its class's tone
    x = s.x_test[np.arange(20)].numpy()
    heard = np.abs(np.fft.rfft(x, axis=1)).argmax(axis=1) * RATE / x.shape[1]
    np.testing.assert_allclose(heard, [target_hz(int(t)) for t in s.y_test[:20]], atol=4)
    assert load(esc_dir, cache_dir, seed=3).ids_test == s.ids_test  # one fixed split, as in the DMEL code


@pytest.mark.parametrize("fold", [1, 2, 3, 4, 5])
def test_fold_protocol(esc_dir, cache_dir, fold):
    meta = meta_rows()
    s = load(esc_dir, cache_dir, protocol="fold", fold=fold, seed=0)
    fold_of = dict(zip(meta["filename"].str[:-4], meta["fold"]))
    src_of = dict(zip(meta["filename"].str[:-4], meta["src_file"]))
    assert {fold_of[i] for i in s.ids_test} == {fold}
    assert len(s.ids_test) == 400 - (fold_of[stems([BROKEN])[0]] == fold)
    assert {fold_of[i] for i in s.ids_train + s.ids_valid} == set(range(1, 6)) - {fold}
    assert len(s.ids_train) + len(s.ids_valid) + len(s.ids_test) == 1999
    assert not {src_of[i] for i in s.ids_train} & {src_of[i] for i in s.ids_valid}  # sources never straddle
    assert abs(len(s.ids_valid) - 200) <= 10  # 1/8 of the 800 training sources, two takes each
    other_seed = load(esc_dir, cache_dir, protocol="fold", fold=fold, seed=1)
    assert other_seed.ids_test == s.ids_test and other_seed.ids_valid != s.ids_valid


def test_missing_clips_are_counted(tmp_path):
    root = make_esc50(tmp_path / "esc", rows=range(0, 2000, 10))
    with pytest.warns(UserWarning, match=r"ESC-50: 1800 clip\(s\) of meta/esc50.csv are not in"):
        s = esc50.load_splits(resolve_config({"dataset_name": "esc50", "data_dir": str(root), "sample_rate": RATE,
                                              "clip_seconds": 0.25, "cache_dir": str(tmp_path / "cache"),
                                              "decode_workers": 1}))
    assert s.info == {"unreadable": 0, "missing": 1800}
    assert len(s.ids_train) + len(s.ids_valid) + len(s.ids_test) == 200


def test_bad_settings_are_named(esc_dir, cache_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown ESC-50 protocol 'filtered'"):
        load(esc_dir, cache_dir, protocol="filtered")
    with pytest.raises(ValueError, match="fold must be 1-5, got 6"):
        load(esc_dir, cache_dir, protocol="fold", fold=6)
    for data_dir in (None, tmp_path):
        with pytest.raises(FileNotFoundError, match="sh download_data.sh esc50"):
            load(data_dir, cache_dir)


# install

def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name or p.name.endswith(".part") or ".downloads" in p.name]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return make_esc50_zip(tmp_path_factory.mktemp("mirror") / "ESC-50-master.zip")


def test_install_from_local_path_and_file_url_then_rerun(archive, tmp_path, capsys):
    dest = esc50.install(tmp_path / "data" / "esc50", str(archive))
    assert esc50.verify(dest) == [] and len(list((dest / "audio").glob("*.wav"))) == 2000
    assert not (dest / "README.md").exists() and leftovers(dest.parent) == []
    other = esc50.install(tmp_path / "other", archive.as_uri())
    stamp = (other / "meta" / "esc50.csv").stat().st_mtime_ns
    esc50.install(other, archive.as_uri())
    assert "nothing to do" in capsys.readouterr().out
    assert (other / "meta" / "esc50.csv").stat().st_mtime_ns == stamp


def test_install_over_http(archive, tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(archive.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        esc50.install(tmp_path / "esc50", f"http://127.0.0.1:{server.server_address[1]}/{archive.name}")
    finally:
        server.shutdown()
    assert esc50.verify(tmp_path / "esc50") == [] and leftovers(tmp_path) == []


@pytest.mark.parametrize("kind,message", [
    ("missing", "missing audio/5-149019-B-49.wav"),
    ("class", r"expected 50 classes \(targets 0-49\) of 40 clips, found 50 classes with 39-41 clips"),
    ("folds", r"expected folds 1-5 of 400 clips"),
    ("corrupt", "not a valid zip archive"),
    ("layout", "holds none of the files of ESC-50"),
])
def test_wrong_content_installs_nothing(tmp_path, kind, message):
    meta = meta_rows()
    if kind == "class":
        meta.loc[0, "target"] = 1  # one clip relabelled: class 0 has 39, class 1 has 41
    if kind == "folds":
        meta.loc[0, "fold"] = 2
    bad = make_esc50_zip(tmp_path / "bad.zip", meta, drop=1 if kind == "missing" else 0,
                         top="ESC-50-master" if kind != "layout" else "x/y")
    if kind == "corrupt":
        bad.write_bytes(bad.read_bytes()[:5000])
    dest = tmp_path / "out" / "esc50"
    with pytest.raises(DownloadError, match=message) as err:
        esc50.install(dest, str(bad))
    if kind not in ("corrupt", "layout"):
        assert "is not ESC-50" in str(err.value) and "Nothing was installed" in str(err.value)
    assert not dest.exists() and leftovers(dest.parent) == []


def test_unreadable_clip_fails_verification(tmp_path):
    root = make_esc50(tmp_path / "esc", rows=[])
    first = meta_rows()["filename"][0]
    problems = esc50.verify(root)
    assert problems[0] == "missing audio/" + first
    (root / "audio" / first).write_bytes(b"not audio")
    assert any(p.startswith("unreadable audio/" + first) for p in esc50.verify(root))


def test_shell_entry_point_with_esc50_url(archive, tmp_path, root):
    dest = tmp_path / "esc50"
    env = {**os.environ, "ESC50_URL": archive.as_uri(), "ESC50_DIR": str(dest)}
    out = subprocess.run(["sh", "download_data.sh", "esc50"], cwd=root, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert esc50.verify(dest) == []
    bad = make_esc50_zip(tmp_path / "bad.zip", drop=3)
    env = {**env, "ESC50_URL": str(bad), "ESC50_DIR": str(tmp_path / "bad")}
    out = subprocess.run(["sh", "download_data.sh", "esc50"], cwd=root, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 1 and "is not ESC-50" in out.stderr and not (tmp_path / "bad").exists()


def test_labels_are_int64(esc_dir, cache_dir):
    s = load(esc_dir, cache_dir)
    assert s.y_train.dtype == torch.int64 and set(s.y_train.tolist()) == set(range(50))
