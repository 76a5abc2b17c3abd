"""Where experiments live: a local folder or a URI (``s3://bucket/prefix``, ``gs://...``,
``file:///abs/path``, with a query such as ``?endpoint_override=host:port&scheme=http`` kept), read
and written through ``pyarrow.fs``. No Ray or training imports, so the figure scripts can use it."""
from __future__ import annotations

import os
import posixpath
import time
import urllib.parse
import uuid
from pathlib import Path

import pyarrow
import pyarrow.fs


def is_uri(location) -> bool:
    """``s3://...``, ``gs://...``, ``file:///...``: a storage URI (never a local path)."""
    return "://" in str(location)


def _on_path(uri: str, change) -> str:
    """``uri`` with its path replaced by ``change(path)``; scheme, bucket and query
    (``?endpoint_override=...``) kept."""
    parts = urllib.parse.urlsplit(uri)
    return urllib.parse.urlunsplit(parts._replace(path=change(parts.path)))


def storage_root(storage: str | None, ray_root_dir: str | os.PathLike = "ray_results") -> str:
    """Where experiments live: ``storage`` (else ``ray_root_dir``); a URI is kept as given (never
    through ``Path.resolve``), a local path is made absolute (Tune accepts only absolute paths)."""
    location = str(storage or ray_root_dir)
    if is_uri(location):
        return _on_path(location, lambda path: path.rstrip("/") or path[:1])
    return str(Path(location).expanduser().resolve())


def experiment_location(storage: str | os.PathLike, name: str) -> str:
    """``<storage>/<name>`` for a path or a URI."""
    if is_uri(storage):
        return _on_path(storage, lambda path: posixpath.join(path or "/", name))
    return str(Path(storage) / name)


def display(location: str | os.PathLike) -> str:
    """``location`` for messages: a local path made absolute, a URI without its query (it may hold credentials)."""
    if is_uri(location):
        return urllib.parse.urlunsplit(urllib.parse.urlsplit(str(location))._replace(query=""))
    return os.path.abspath(os.path.expanduser(str(location)))


def split_location(location: str) -> tuple[str, str]:
    """``<storage>/<name>`` -> ``(storage, name)`` for a path or a URI."""
    if is_uri(location):
        path = urllib.parse.urlsplit(location).path.rstrip("/")
        return _on_path(location, lambda _: posixpath.dirname(path)), posixpath.basename(path)
    path = Path(location)
    return str(path.parent), path.name


def filesystem(location: str | os.PathLike) -> tuple[pyarrow.fs.FileSystem, str]:
    """``(pyarrow filesystem, path on it)`` for a path or a URI."""
    if is_uri(location):
        return pyarrow.fs.FileSystem.from_uri(str(location))
    return pyarrow.fs.LocalFileSystem(), str(Path(location).expanduser().resolve())


_fs = filesystem


class _ReplaceOnClose:
    """A binary file written under a hidden name beside ``path`` (``.<name>.<random>.part``) and renamed
    to ``path`` when closed, so that ``path`` always holds a whole version. Created with ``open``'s
    permissions (the umask applies), like a file written in place."""

    def __init__(self, path: str):
        directory, name = os.path.split(path)
        self.path, self.part = path, os.path.join(directory, f".{name}.{uuid.uuid4().hex[:8]}.part")
        self.file = open(self.part, "xb")

    def write(self, data) -> int:
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()

    def tell(self) -> int:
        return self.file.tell()

    @property
    def closed(self) -> bool:
        return self.file.closed

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()
            os.replace(self.part, self.path)


class AtomicLocalHandler(pyarrow.fs.FileSystemHandler):
    """pyarrow's local filesystem, except that every file is written whole or not at all.

    Tune saves the experiment state by copying it from the driver's staging folder to the storage
    (``pyarrow.fs.copy_files``), which truncates the file there and writes it again. ``kill -9`` in that
    moment left an empty ``experiment_state-*.json``, and the rerun could not restore the experiment:
    Tune logged "Failed to restore the run state" and started it over (seen in
    ``tests/test_tune.py::test_driver_killed_then_rerun``). Here a file being written is a hidden
    ``.part`` file until it is complete and renamed over the old one (``os.replace``: atomic on one
    filesystem), so a killed writer leaves the previous version plus a stray ``.part`` file. Object
    stores need none of this: an upload becomes visible only once complete. (That Tune's upload never
    reads a staging file being rewritten is :mod:`tuning.tune_state`'s part.)
    """

    def __init__(self):
        self.fs = pyarrow.fs.LocalFileSystem()

    def __eq__(self, other) -> bool:
        return isinstance(other, AtomicLocalHandler)

    def __reduce__(self):  # pickled with the filesystem to every trial process
        return AtomicLocalHandler, ()

    def get_type_name(self) -> str:
        return "atomic-local"

    def normalize_path(self, path: str) -> str:
        return self.fs.normalize_path(path)

    def get_file_info(self, paths: list[str]) -> list:
        return self.fs.get_file_info(paths)

    def get_file_info_selector(self, selector) -> list:
        return self.fs.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self.fs.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self.fs.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self.fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        self.fs.delete_dir_contents("/", accept_root_dir=True)

    def delete_file(self, path: str) -> None:
        self.fs.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self.fs.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        with self.fs.open_input_stream(src) as source, self.open_output_stream(dest, None) as out:
            out.upload(source)

    def open_input_stream(self, path: str):
        return self.fs.open_input_stream(path)

    def open_input_file(self, path: str):
        return self.fs.open_input_file(path)

    def open_output_stream(self, path: str, metadata):
        return pyarrow.PythonFile(_ReplaceOnClose(path), mode="w")

    def open_append_stream(self, path: str, metadata):
        return self.fs.open_append_stream(path)


def tune_storage(location: str) -> tuple[str, pyarrow.fs.FileSystem | None]:
    """``(storage_path, storage_filesystem)`` to hand to Tune for ``location``: a local path or a
    ``file://`` URI becomes its plain path on :class:`AtomicLocalHandler`'s filesystem; any other URI is
    passed on as it is (``None``: Tune resolves it)."""
    if is_uri(location) and not str(location).startswith("file://"):
        return str(location), None
    _, path = filesystem(location)
    return path, pyarrow.fs.PyFileSystem(AtomicLocalHandler())


def exists(location: str) -> bool:
    fs, path = _fs(location)
    return fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def read_bytes(location: str | os.PathLike) -> bytes | None:
    """The content of the file at ``location`` (path or URI), or ``None`` when there is no such file."""
    fs, path = _fs(location)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(path) as f:
        return f.readall()


def read_text(location: str) -> str | None:
    """The text of the file at ``location`` (path or URI), or None when there is none."""
    data = read_bytes(location)
    return None if data is None else data.decode()


def write_text(location: str, text: str) -> None:
    fs, path = _fs(location)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(text.encode())


def move_aside(location: str) -> str:
    """Rename the experiment ``location`` (path or URI) to ``<location>.old-<time>``; return the new name.
    Object stores cannot rename a folder: it is copied, then deleted."""
    aside = _on_path(location, lambda path: f"{path.rstrip('/')}.old-{time.strftime('%Y%m%d-%H%M%S')}") \
        if is_uri(location) else f"{location.rstrip('/')}.old-{time.strftime('%Y%m%d-%H%M%S')}"
    fs, src = _fs(location)
    _, dst = _fs(aside)
    try:
        fs.move(src, dst)
    except (OSError, NotImplementedError):
        pyarrow.fs.copy_files(src, dst, source_filesystem=fs, destination_filesystem=fs)
        fs.delete_dir(src)
    return aside
