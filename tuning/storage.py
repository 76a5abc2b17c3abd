"""Where experiments live: a local folder or a URI (``s3://bucket/prefix``, ``gs://...``,
``file:///abs/path``, with a query such as ``?endpoint_override=host:port&scheme=http`` kept), read
and written through ``pyarrow.fs``. No Ray or training imports, so the figure scripts can use it."""
from __future__ import annotations

import os
import posixpath
import time
import urllib.parse
from pathlib import Path

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
