"""Read a TensorFlow checkpoint (the tensor-bundle format ``tf.compat.v1.train.Saver`` writes) with numpy only.

A checkpoint ``<prefix>`` is ``<prefix>.index`` plus ``<prefix>.data-<shard>-of-<shards>`` files. The index
is a LevelDB table (``tensorflow/core/lib/io/table*``): a 48-byte footer (the metaindex and index block
handles as varints, padded to 40 bytes, then the magic number ``0xdb4775248b80fb57``) points to an index
block whose values are the handles of the data blocks; every block is followed by a 1-byte compression
type (TF writes 0, uncompressed) and the masked CRC-32C of block and type. A block holds entries with
prefix-compressed keys (shared length, unshared length, value length as varints, then the key's unshared
bytes and the value), then its restart offsets (``uint32`` each) and their count (``uint32``).

Each key is a tensor's name and its value a serialized ``BundleEntryProto`` (``tensor_bundle.proto``):
dtype = 1, shape = 2 (a ``TensorShapeProto``: ``dim`` = 2, each ``size`` = 1), shard_id = 3, offset = 4,
size = 5, crc32c = 6 (masked CRC-32C of the tensor's bytes), slices = 7. The empty key holds the
``BundleHeaderProto`` (num_shards = 1, endianness = 2). The protobufs are decoded by hand here.

    weights = read_checkpoint("data/musicnn/MTT_musicnn/")   # {"conv2d/kernel": np.ndarray, ...}
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_BYTES = 48  # two block handles padded to 40 bytes, then the 8-byte magic
BLOCK_TRAILER_BYTES = 5  # compression type (1 byte) + masked CRC-32C (4 bytes)
# TF's DataType enum (types.proto) -> numpy; string, resource and variant tensors are not plain arrays
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 8: np.complex64,
          9: np.int64, 10: np.bool_, 17: np.uint16, 18: np.complex128, 19: np.float16, 22: np.uint32, 23: np.uint64}
CRC32C_POLY = 0x82F63B78  # Castagnoli, reflected


class CheckpointError(ValueError):
    """The files are not a readable TF tensor-bundle checkpoint; the message says which and why."""


def _crc_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(CRC32C_POLY), table >> 1).astype(np.uint32)
    return table


CRC_TABLE = _crc_table()


def _feed(registers: np.ndarray, data: np.ndarray) -> np.ndarray:
    """CRC registers (``(lanes,)`` uint32) after feeding each lane its row of ``data`` (``(lanes, n)`` uint8)."""
    for column in np.ascontiguousarray(data.T):  # a column per step: contiguous, not strided
        registers = CRC_TABLE[(registers ^ column) & 0xFF] ^ (registers >> 8)
    return registers


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data``. A byte-at-a-time loop in Python would take seconds for a 10 MB checkpoint, so
    the bytes are cut into equal lanes fed side by side with numpy, whose registers are then chained: a
    CRC register is linear over GF(2), so the register after lane i then lane i+1 is lane i's register
    advanced over ``len(lane)`` zero bytes (a 32x32 bit matrix, kept as its 32 column images) XOR lane
    i+1's register computed from zero. About sqrt(2 n) lanes of n bytes make the fewest numpy steps
    (lane length twice: data and matrix, plus the tail, shorter than the lane count)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    lanes = max(1, min(4096, math.isqrt(2 * len(buf))))
    length = len(buf) // lanes
    start = np.zeros(lanes, dtype=np.uint32)
    start[0] = 0xFFFFFFFF  # the standard initial value enters once, at the front of the first lane
    registers = _feed(start, buf[:lanes * length].reshape(lanes, length))
    images = _feed(np.uint32(1) << np.arange(32, dtype=np.uint32), np.zeros((32, length), dtype=np.uint8))
    # the matrix applied a byte of the register at a time: table[b][v] = XOR of the images of v's bits
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1
    tables = [np.bitwise_xor.reduce(np.where(bits, images[8 * b:8 * b + 8], 0), axis=1).tolist() for b in range(4)]
    crc = 0
    for register in registers.tolist():
        crc = (tables[0][crc & 0xFF] ^ tables[1][crc >> 8 & 0xFF] ^ tables[2][crc >> 16 & 0xFF]
               ^ tables[3][crc >> 24]) ^ register
    tail = buf[lanes * length:]
    crc = int(_feed(np.array([crc], dtype=np.uint32), tail[None, :])[0])
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The CRC-32C as LevelDB and TF store it: rotated right by 15 bits plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The unsigned varint at ``buf[pos:]`` and the position after it."""
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise CheckpointError("a varint runs past its buffer")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _proto_fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """``(field number, value)`` of each field of a serialized protobuf message: an int for varint and
    fixed-width fields, bytes for length-delimited ones."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise CheckpointError(f"protobuf wire type {wire} (field {number}) is not used by tensor bundles")
        if pos > len(buf):
            raise CheckpointError(f"protobuf field {number} runs past the end of its message")
        yield number, value


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lies: ``size`` bytes at ``offset`` of data shard ``shard_id``."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool


def parse_entry(buf: bytes) -> BundleEntry:
    """Decode a serialized ``BundleEntryProto`` (fields absent from the wire take proto3's zero defaults)."""
    fields = {"dtype": 0, "shape": (), "shard_id": 0, "offset": 0, "size": 0, "crc32c": None, "sliced": False}
    for number, value in _proto_fields(buf):
        if number == 1:
            fields["dtype"] = value
        elif number == 2:
            fields["shape"] = tuple(_dim_size(dim) for n, dim in _proto_fields(value) if n == 2)
        elif number in (3, 4, 5):
            fields[("shard_id", "offset", "size")[number - 3]] = value
        elif number == 6:
            fields["crc32c"] = value
        elif number == 7:
            fields["sliced"] = True
    return BundleEntry(**fields)


def _dim_size(dim: bytes) -> int:
    size = next((value for number, value in _proto_fields(dim) if number == 1), 0)
    if size >= 1 << 63:  # an int64 -1: an unknown dimension, which a saved tensor cannot have
        raise CheckpointError("a saved tensor has a dimension of unknown size")
    return size


def _block(index: bytes, handle: bytes, where: str) -> bytes:
    """The contents of the table block at the ``BlockHandle`` ``handle`` (offset, size as varints), checked."""
    offset, pos = _varint(handle, 0)
    size, _ = _varint(handle, pos)
    end = offset + size
    if end + BLOCK_TRAILER_BYTES > len(index):
        raise CheckpointError(f"{where}: a block runs past the end of the file (truncated?)")
    contents, kind = index[offset:end], index[end]
    (stored,) = struct.unpack_from("<I", index, end + 1)
    if masked_crc32c(contents + bytes([kind])) != stored:
        raise CheckpointError(f"{where}: a block fails its CRC-32C check (a corrupt file)")
    if kind != 0:
        raise CheckpointError(f"{where}: a block is compressed (type {kind}, snappy); only uncompressed tables "
                              "are read (TF writes its checkpoints uncompressed)")
    return contents


def _block_entries(block: bytes, where: str) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` of each entry of a table block, keys restored from their shared prefixes."""
    if len(block) < 4:
        raise CheckpointError(f"{where}: a block is too short to hold its restart count")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * restarts
    if limit < 0:
        raise CheckpointError(f"{where}: a block's restart count does not fit in it")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        length, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + length > limit:
            raise CheckpointError(f"{where}: a malformed block entry")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + length]
        pos += length


def read_index(path: Path) -> dict[str, bytes]:
    """``key -> value`` of every entry of the LevelDB table at ``path`` (a checkpoint's ``.index``)."""
    index = Path(path).read_bytes()
    if len(index) < FOOTER_BYTES or struct.unpack_from("<Q", index, len(index) - 8)[0] != TABLE_MAGIC:
        raise CheckpointError(f"{path} is not a TF checkpoint index (no table magic number at its end)")
    footer = index[-FOOTER_BYTES:]
    _, pos = _varint(footer, _varint(footer, 0)[1])  # skip the metaindex handle: TF writes no meta blocks
    index_block = _block(index, footer[pos:], str(path))
    entries = {}
    for _, handle in _block_entries(index_block, str(path)):
        for key, value in _block_entries(_block(index, handle, str(path)), str(path)):
            entries[key.decode()] = value
    return entries


def index_path(prefix: str | Path) -> Path:
    """``<prefix>.index``; a folder stands for the prefix ``<folder>/`` (empty basename), as musicnn's are."""
    return Path(prefix) / ".index" if Path(prefix).is_dir() else Path(f"{prefix}.index")


def read_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint ``prefix`` (what ``Saver.save`` returned, or a folder: see
    :func:`index_path`) as ``{variable name: array}`` in the saved dtype and shape (TF layouts, e.g. conv
    kernels ``(height, width, in, out)``). Each tensor's bytes are checked against its stored CRC-32C.

    Raises :class:`CheckpointError` (one line) for a missing, truncated, corrupt or unsupported file.
    """
    index = index_path(prefix)
    if not index.is_file():
        raise CheckpointError(f"no TF checkpoint index at {index}")
    entries = read_index(index)
    header = dict(_proto_fields(entries.pop("", b"")))
    shards, big_endian = header.get(1, 1), header.get(2, 0) == 1
    data: dict[int, bytes] = {}
    out = {}
    for name, raw in entries.items():
        entry = parse_entry(raw)
        if entry.sliced:
            raise CheckpointError(f"{index}: {name} is a partitioned variable (saved in slices), which is not read")
        if entry.dtype not in DTYPES:
            raise CheckpointError(f"{index}: {name} has TF dtype {entry.dtype}, not a numeric one read here")
        dtype = np.dtype(DTYPES[entry.dtype]).newbyteorder(">" if big_endian else "<")
        if entry.size != dtype.itemsize * int(np.prod(entry.shape)):
            raise CheckpointError(f"{index}: {name} claims {entry.size} bytes for shape {entry.shape} of {dtype}")
        if entry.shard_id not in data:
            shard = Path(f"{str(index)[:-len('.index')]}.data-{entry.shard_id:05d}-of-{shards:05d}")
            if not shard.is_file():
                raise CheckpointError(f"{index}: its data file {shard.name} is missing")
            data[entry.shard_id] = shard.read_bytes()
        raw_tensor = data[entry.shard_id][entry.offset:entry.offset + entry.size]
        if len(raw_tensor) != entry.size:
            raise CheckpointError(f"{index}: {name} lies past the end of its data file (truncated?)")
        if entry.crc32c is not None and masked_crc32c(raw_tensor) != entry.crc32c:
            raise CheckpointError(f"{index}: {name} fails its CRC-32C check (a corrupt data file)")
        native = dtype.newbyteorder("=")
        out[name] = np.frombuffer(raw_tensor, dtype=dtype).astype(native, copy=True).reshape(entry.shape)
    return out
