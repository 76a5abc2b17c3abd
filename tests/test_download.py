"""FSDD download: good zip (file://, local path, http), rerun, corrupt zip, wrong content, shell entry point."""
import functools
import http.server
import os
import subprocess
import threading
from pathlib import Path

import pytest

from corpora.download import DownloadError, read_checksums
from corpora.fsdd import RECORDING
from corpora.fsdd import install as install_fsdd
from tests.fixtures import make_fsdd_zip


@pytest.fixture()
def fixture_zip(tmp_path):
    path = tmp_path / "mirror" / "fsdd.zip"
    path.parent.mkdir()
    return path, make_fsdd_zip(path)


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name or p.name.endswith(".part")]


def test_install_from_file_url_then_rerun_does_nothing(fixture_zip, tmp_path, capsys):
    zip_path, checksums = fixture_zip
    dest = tmp_path / "data" / "audio-mnist"
    install_fsdd(dest, source=zip_path.as_uri(), expected=checksums)
    assert len(list((dest / "recordings").glob("*.wav"))) == 90
    stamp = (dest / "recordings" / "0_alice_0.wav").stat().st_mtime_ns
    install_fsdd(dest, source=zip_path.as_uri(), expected=checksums)
    assert "nothing to do" in capsys.readouterr().out
    assert (dest / "recordings" / "0_alice_0.wav").stat().st_mtime_ns == stamp
    assert leftovers(dest.parent) == []


def test_install_from_local_path(fixture_zip, tmp_path):
    zip_path, checksums = fixture_zip
    install_fsdd(tmp_path / "fsdd", source=str(zip_path), expected=checksums)
    assert (tmp_path / "fsdd" / "recordings" / "9_carol_2.wav").is_file()


def test_install_over_http(fixture_zip, tmp_path):
    zip_path, checksums = fixture_zip
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(zip_path.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/fsdd.zip"
        install_fsdd(tmp_path / "fsdd", source=url, expected=checksums)
    finally:
        server.shutdown()
    assert len(list((tmp_path / "fsdd" / "recordings").glob("*.wav"))) == 90
    assert leftovers(tmp_path) == []


def test_corrupt_zip_installs_nothing(fixture_zip, tmp_path):
    zip_path, checksums = fixture_zip
    bad = tmp_path / "bad.zip"
    bad.write_bytes(zip_path.read_bytes()[:5000])  # a truncated download
    dest = tmp_path / "out" / "audio-mnist"
    with pytest.raises(DownloadError, match="not a valid zip archive"):
        install_fsdd(dest, source=str(bad), expected=checksums)
    assert not dest.exists() and leftovers(dest.parent) == []


def test_wrong_content_installs_nothing(fixture_zip, tmp_path):
    zip_path, checksums = fixture_zip
    expected = dict(checksums)
    expected["recordings/0_alice_0.wav"] = "0" * 64
    expected["recordings/5_zed_0.wav"] = "1" * 64
    dest = tmp_path / "out" / "audio-mnist"
    with pytest.raises(DownloadError, match="checksum mismatch recordings/0_alice_0.wav") as err:
        install_fsdd(dest, source=str(zip_path), expected=expected)
    assert "missing recordings/5_zed_0.wav" in str(err.value)
    assert not dest.exists() and leftovers(dest.parent) == []


def test_existing_other_folder_is_not_touched(fixture_zip, tmp_path):
    zip_path, checksums = fixture_zip
    dest = tmp_path / "audio-mnist"
    (dest / "recordings").mkdir(parents=True)
    (dest / "recordings" / "mine.txt").write_text("keep")
    with pytest.raises(DownloadError, match="exists but is not FSDD"):
        install_fsdd(dest, source=str(zip_path), expected=checksums)
    assert (dest / "recordings" / "mine.txt").read_text() == "keep"


def test_shell_entry_point_with_fsdd_url(fixture_zip, tmp_path, root):
    """`FSDD_URL=file://... sh download_data.sh`: the fixture is not the real FSDD, so the shipped
    checksum list rejects it and nothing is installed."""
    zip_path, _ = fixture_zip
    dest = tmp_path / "audio-mnist"
    env = {**os.environ, "FSDD_URL": zip_path.as_uri(), "FSDD_DIR": str(dest)}
    out = subprocess.run(["sh", "download_data.sh"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert "does not match FSDD v1.0.8" in out.stderr and "Nothing was installed" in out.stderr
    assert not dest.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("version,n,speakers", [("1.0.8", 1500, 3), ("1.0.10", 3000, 6)])
def test_shipped_checksum_lists(version, n, speakers):
    sums = read_checksums(f"fsdd-v{version}")
    assert len(sums) == n
    names = [rel.split("/")[1] for rel in sums]
    assert all(RECORDING.match(rel) for rel in sums)
    assert len({name.split("_")[1] for name in names}) == speakers
    assert all(len(d) == 64 for d in sums.values())
