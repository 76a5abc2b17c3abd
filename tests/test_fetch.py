"""corpora.download.fetch over HTTP: resume with Range (206), restart on a whole-file answer (200) and
on 416 (a ``*.part`` that is not a prefix of the file)."""
import http.server
import threading

import pytest

from corpora.download import DownloadError, fetch

BODY = bytes(range(256)) * 400  # 102,400 bytes


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``BODY`` at any path; honours ``Range: bytes=N-`` (206), or 416 past the end."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        asked = self.headers.get("Range")
        self.server.log.append(asked)
        start = int(asked.split("=")[1].rstrip("-")) if asked and self.server.ranges else 0
        if start >= len(BODY):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(BODY)}")
            self.end_headers()
            return
        body = BODY[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(params=[True, False], ids=["ranges", "no-ranges"])
def server(request):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    srv.log, srv.ranges = [], request.param
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()


def url(server):
    return f"http://127.0.0.1:{server.server_address[1]}/data/archive.bin"


def test_partial_download_resumes_or_restarts(server, tmp_path):
    (tmp_path / "archive.bin.part").write_bytes(BODY[:1000])
    got = fetch(url(server), tmp_path)
    assert got == tmp_path / "archive.bin" and got.read_bytes() == BODY
    assert not (tmp_path / "archive.bin.part").exists()
    assert server.log == ["bytes=1000-"]  # one request; a server without ranges sends it all (200)


def test_416_drops_a_part_that_is_not_a_prefix_and_starts_over(tmp_path):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    srv.log, srv.ranges = [], True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        (tmp_path / "archive.bin.part").write_bytes(b"x" * (len(BODY) + 10))  # longer than the file
        got = fetch(f"http://127.0.0.1:{srv.server_address[1]}/archive.bin", tmp_path)
    finally:
        srv.shutdown()
    assert got.read_bytes() == BODY
    assert srv.log == [f"bytes={len(BODY) + 10}-", None]  # 416, then the whole file without Range


def test_a_finished_file_is_not_fetched_again(server, tmp_path):
    (tmp_path / "archive.bin").write_bytes(b"done")
    assert fetch(url(server), tmp_path).read_bytes() == b"done" and server.log == []


def test_missing_local_file_is_a_clear_error(tmp_path):
    with pytest.raises(DownloadError, match="no such file"):
        fetch(str(tmp_path / "absent.zip"), tmp_path)
