"""Parse a GGUF header (metadata and tensor infos) from the first bytes of a file.

Pure: the caller reads bytes (a local file, an HTTP Range response) and passes them in. A prefix
that ends inside the header raises `NeedMoreBytes` with a lower bound of the prefix length
required, so the caller can grow its window (`next_window`: 2 MiB doubling to 64 MiB, design.md
section 5) and parse again. Layout (GGUF v2 and v3; v3 adds big-endian files):

    magic "GGUF" | version u32 | tensor_count u64 | kv_count u64
    kv_count × (key string, value type u32, value)         string = u64 length + UTF-8 bytes
    tensor_count × (name string, n_dims u32, n_dims × u64, ggml type u32, offset u64)
    padding to `general.alignment` (default 32), then the tensor data
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import TypeVar

Bytes = bytes | bytearray | memoryview
_T = TypeVar("_T")

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
INITIAL_WINDOW = 2 * 1024 * 1024
MAX_WINDOW = 64 * 1024 * 1024
INLINE_ARRAY_LIMIT = 1024
"""Arrays longer than this (tokenizer tokens, scores, merges) keep only their length."""

_MAX_DIMS = 4  # GGML_MAX_DIMS
_MAX_NAME_BYTES = 65535  # the GGUF spec's limit for keys; generous for tensor names
_MAX_STRING_BYTES = 1 << 30
_MAX_ARRAY_NESTING = 8


QUANT_FILE_TYPES: Mapping[str, int] = {
    "F32": 0,
    "F16": 1,
    "Q4_0": 2,
    "Q4_1": 3,
    "Q8_0": 7,
    "Q5_0": 8,
    "Q5_1": 9,
    "Q2_K": 10,
    "Q3_K_S": 11,
    "Q3_K_M": 12,
    "Q3_K_L": 13,
    "Q4_K_S": 14,
    "Q4_K_M": 15,
    "Q5_K_S": 16,
    "Q5_K_M": 17,
    "Q6_K": 18,
    "IQ2_XXS": 19,
    "IQ2_XS": 20,
    "Q2_K_S": 21,
    "IQ3_XS": 22,
    "IQ3_XXS": 23,
    "IQ1_S": 24,
    "IQ4_NL": 25,
    "IQ3_S": 26,
    "IQ3_M": 27,
    "IQ2_S": 28,
    "IQ2_M": 29,
    "IQ4_XS": 30,
    "IQ1_M": 31,
    "BF16": 32,
}
"""Quant label → `general.file_type` (llama.cpp's `llama_ftype`)."""


class GgufValueType(IntEnum):
    """Metadata value types as numbered in the GGUF spec."""

    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


_SCALAR_FORMATS: dict[GgufValueType, str] = {
    GgufValueType.UINT8: "B",
    GgufValueType.INT8: "b",
    GgufValueType.UINT16: "H",
    GgufValueType.INT16: "h",
    GgufValueType.UINT32: "I",
    GgufValueType.INT32: "i",
    GgufValueType.FLOAT32: "f",
    GgufValueType.BOOL: "?",
    GgufValueType.UINT64: "Q",
    GgufValueType.INT64: "q",
    GgufValueType.FLOAT64: "d",
}

_STRUCTS: dict[str, dict[GgufValueType, struct.Struct]] = {
    order: {kind: struct.Struct(order + fmt) for kind, fmt in _SCALAR_FORMATS.items()}
    for order in "<>"
}

# ggml type id → (name, weights per block, bytes per block), as GGML_QUANT_SIZES in ggml.h.
GGML_TYPES: Mapping[int, tuple[str, int, int]] = MappingProxyType(
    {
        0: ("F32", 1, 4),
        1: ("F16", 1, 2),
        2: ("Q4_0", 32, 18),
        3: ("Q4_1", 32, 20),
        6: ("Q5_0", 32, 22),
        7: ("Q5_1", 32, 24),
        8: ("Q8_0", 32, 34),
        9: ("Q8_1", 32, 40),
        10: ("Q2_K", 256, 84),
        11: ("Q3_K", 256, 110),
        12: ("Q4_K", 256, 144),
        13: ("Q5_K", 256, 176),
        14: ("Q6_K", 256, 210),
        15: ("Q8_K", 256, 292),
        16: ("IQ2_XXS", 256, 66),
        17: ("IQ2_XS", 256, 74),
        18: ("IQ3_XXS", 256, 98),
        19: ("IQ1_S", 256, 50),
        20: ("IQ4_NL", 32, 18),
        21: ("IQ3_S", 256, 110),
        22: ("IQ2_S", 256, 82),
        23: ("IQ4_XS", 256, 136),
        24: ("I8", 1, 1),
        25: ("I16", 1, 2),
        26: ("I32", 1, 4),
        27: ("I64", 1, 8),
        28: ("F64", 1, 8),
        29: ("IQ1_M", 256, 56),
        30: ("BF16", 1, 2),
        34: ("TQ1_0", 256, 54),
        35: ("TQ2_0", 256, 66),
        39: ("MXFP4", 32, 17),
        40: ("NVFP4", 64, 36),
        41: ("Q1_0", 128, 18),
    }
)


class GgufFormatError(ValueError):
    """The bytes are not a GGUF header this parser understands (bad magic, version, or layout)."""


class NeedMoreBytes(Exception):  # noqa: N818  a request for a longer prefix, not a failure
    """The prefix ends inside the header; `needed` is a lower bound of the prefix length."""

    def __init__(self, needed: int | None) -> None:
        super().__init__(f"the GGUF header needs at least {needed} bytes")
        self.needed = needed


@dataclass(frozen=True, slots=True)
class GgufArray:
    """A metadata array: its item type and length, and its items unless it was too long to keep."""

    item_type: GgufValueType
    length: int
    offset: int
    """Absolute byte offset of the first item, for `GgufHeader.array_item` on skipped arrays."""
    values: tuple[object, ...] | None

    def __len__(self) -> int:
        return self.length


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor info: dims in GGUF order (ne[0], the row length, first) and data offset."""

    name: str
    dims: tuple[int, ...]
    ggml_type: int
    offset: int
    """Offset of the tensor data from the start of the data section (`GgufHeader.header_size`)."""

    @property
    def n_elements(self) -> int:
        """Number of weights: the product of the dims."""
        return math.prod(self.dims)

    @property
    def type_name(self) -> str:
        """The ggml type name (`Q4_K`, `F32`), or `TYPE_<id>` for a type unknown here."""
        known = GGML_TYPES.get(self.ggml_type)
        return known[0] if known else f"TYPE_{self.ggml_type}"

    @property
    def n_bytes(self) -> int | None:
        """Size of the tensor data, or None for a ggml type unknown here."""
        known = GGML_TYPES.get(self.ggml_type)
        if known is None:
            return None
        _, block, size = known
        return self.n_elements // block * size


@dataclass(frozen=True, slots=True)
class GgufHeader:
    """Everything before the tensor data, with helpers for the values memory estimates need."""

    version: int
    metadata: Mapping[str, object]
    tensors: tuple[TensorInfo, ...]
    header_size: int
    """Bytes before the tensor data: the tensor infos' end padded to `alignment`."""
    alignment: int = DEFAULT_ALIGNMENT
    big_endian: bool = False

    @property
    def architecture(self) -> str | None:
        """`general.architecture` (`llama`, `gemma3`, `clip` for a vision projector)."""
        return _as_str(self.metadata.get("general.architecture"))

    @property
    def name(self) -> str | None:
        """`general.name`, the model's display name."""
        return _as_str(self.metadata.get("general.name"))

    @property
    def file_type(self) -> int | None:
        """`general.file_type`, llama.cpp's `llama_ftype` number (15 = Q4_K_M)."""
        return _as_int(self.metadata.get("general.file_type"))

    @property
    def quant(self) -> str | None:
        """The quantization label `general.file_type` names (`Q4_K_M`), if it is a known one."""
        wanted = self.file_type
        return next((label for label, n in QUANT_FILE_TYPES.items() if n == wanted), None)

    @property
    def parameter_count(self) -> int:
        """Sum of the weights of all tensors in this file (one shard's share for a split model)."""
        return sum(tensor.n_elements for tensor in self.tensors)

    @property
    def context_length(self) -> int | None:
        """`{arch}.context_length`: the trained context in tokens."""
        return _as_int(self.arch_value("context_length"))

    @property
    def block_count(self) -> int | None:
        """`{arch}.block_count`: the number of layers."""
        return _as_int(self.arch_value("block_count"))

    @property
    def embedding_length(self) -> int | None:
        """`{arch}.embedding_length`: the hidden size."""
        return _as_int(self.arch_value("embedding_length"))

    @property
    def head_count(self) -> int | tuple[int, ...] | None:
        """`{arch}.attention.head_count`: query heads, per layer where the file gives an array."""
        return _as_int_or_ints(self.arch_value("attention.head_count"))

    @property
    def head_count_kv(self) -> int | tuple[int, ...] | None:
        """`{arch}.attention.head_count_kv`: KV heads (GQA), per layer where given; 0 = no KV."""
        return _as_int_or_ints(self.arch_value("attention.head_count_kv"))

    @property
    def key_length(self) -> int | None:
        """`{arch}.attention.key_length`: the K head size, where the file states it."""
        return _as_int(self.arch_value("attention.key_length"))

    @property
    def value_length(self) -> int | None:
        """`{arch}.attention.value_length`: the V head size, where the file states it."""
        return _as_int(self.arch_value("attention.value_length"))

    def arch_value(self, suffix: str) -> object | None:
        """The metadata value of `{architecture}.{suffix}`, or None."""
        arch = self.architecture
        return None if arch is None else self.metadata.get(f"{arch}.{suffix}")

    def array_item(self, data: Bytes, key: str, index: int) -> object:
        """Item `index` of the metadata array `key`, read from `data` if the array was skipped.

        Raises KeyError if `key` is no array, IndexError if `index` is out of range, and
        NeedMoreBytes if `data` ends before the item.
        """
        array = self.metadata.get(key)
        if not isinstance(array, GgufArray):
            raise KeyError(key)
        if not 0 <= index < array.length:
            raise IndexError(f"{key}[{index}] is outside its {array.length} items")
        if array.values is not None:
            return array.values[index]
        order = ">" if self.big_endian else "<"
        return _on_view(data, lambda view: _read_item(_Reader(view, order), array, index))


def parse_header(data: Bytes, *, inline_limit: int = INLINE_ARRAY_LIMIT) -> GgufHeader:
    """Parse the GGUF header at the start of `data`.

    Arrays longer than `inline_limit` keep only their length. Raises NeedMoreBytes when `data`
    ends inside the header and GgufFormatError when the bytes are not a GGUF header.
    """
    return _on_view(data, lambda view: _parse(view, inline_limit))


def next_window(current: int, needed: int | None) -> int | None:
    """The next read window after NeedMoreBytes: at least double, at least `needed`, capped.

    Returns None when the header cannot fit in MAX_WINDOW.
    """
    if current >= MAX_WINDOW or (needed is not None and needed > MAX_WINDOW):
        return None
    return min(MAX_WINDOW, max(2 * current, needed or 0, INITIAL_WINDOW))


def _on_view(data: Bytes, parse: Callable[[memoryview], _T]) -> _T:
    """Run `parse` on a byte view of `data` and release the view even when it fails.

    The failure is raised afresh, without the frames that hold slices of the view: a caller
    growing a bytearray while it handles NeedMoreBytes would otherwise get a BufferError.
    """
    view = memoryview(data).cast("B")
    try:
        return parse(view)
    except NeedMoreBytes as more:
        failure: Exception = NeedMoreBytes(more.needed)
    except GgufFormatError as err:
        failure = GgufFormatError(str(err))
    view.release()
    raise failure


def _parse(view: memoryview, inline_limit: int) -> GgufHeader:
    order, version = _read_preamble(view)
    reader = _Reader(view, order)
    reader.pos = 8
    tensor_count = reader.u64()
    kv_count = reader.u64()
    metadata = _read_metadata(reader, kv_count, inline_limit)
    tensors = _read_tensor_infos(reader, tensor_count)
    alignment = _alignment(metadata)
    _check_offsets(tensors, alignment)
    return GgufHeader(
        version=version,
        metadata=MappingProxyType(metadata),
        tensors=tensors,
        header_size=-(-reader.pos // alignment) * alignment,
        alignment=alignment,
        big_endian=order == ">",
    )


def _read_preamble(view: memoryview) -> tuple[str, int]:
    """Check the magic and find the byte order from the version word; returns (order, version)."""
    head = bytes(view[:4])
    if head != GGUF_MAGIC[: len(head)]:
        raise GgufFormatError(f"not a GGUF file: starts with {head!r}, expected {GGUF_MAGIC!r}")
    if len(view) < 8:
        raise NeedMoreBytes(8)
    (little,) = struct.unpack_from("<I", view, 4)
    # A big-endian file's small version number reads as a multiple of 2**16 in little-endian.
    order = "<" if little & 0xFFFF else ">"
    (version,) = struct.unpack_from(order + "I", view, 4)
    if version not in SUPPORTED_VERSIONS:
        raise GgufFormatError(
            f"GGUF version {version} is not supported (supported: "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}); convert the file with current llama.cpp"
        )
    return order, version


def _read_item(reader: _Reader, array: GgufArray, index: int) -> object:
    reader.pos = array.offset
    _skip_items(reader, array.item_type, index, depth=1)
    return _read_value(reader, array.item_type, depth=1, inline_limit=0)


class _Reader:
    """A position in the header bytes; every read checks the bounds first."""

    __slots__ = ("order", "pos", "structs", "view")

    def __init__(self, view: memoryview, order: str) -> None:
        self.view = view
        self.order = order
        self.pos = 0
        self.structs = _STRUCTS[order]

    def need(self, size: int) -> None:
        """Raise NeedMoreBytes unless `size` bytes follow the current position."""
        if self.pos + size > len(self.view):
            raise NeedMoreBytes(self.pos + size)

    def scalar(self, value_type: GgufValueType) -> object:
        layout = self.structs[value_type]
        self.need(layout.size)
        (value,) = layout.unpack_from(self.view, self.pos)
        self.pos += layout.size
        return value

    def u32(self) -> int:
        value = self.scalar(GgufValueType.UINT32)
        assert isinstance(value, int)
        return value

    def u64(self) -> int:
        value = self.scalar(GgufValueType.UINT64)
        assert isinstance(value, int)
        return value

    def raw_string(self, limit: int) -> memoryview:
        length = self.u64()
        if length > limit:
            raise GgufFormatError(
                f"string of {length} bytes at offset {self.pos - 8} exceeds {limit}"
            )
        self.need(length)
        start, self.pos = self.pos, self.pos + length
        return self.view[start : self.pos]

    def name(self, what: str) -> str:
        start = self.pos
        raw = self.raw_string(_MAX_NAME_BYTES)
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError as err:
            raise GgufFormatError(f"{what} at offset {start} is not valid UTF-8") from err


def _read_metadata(reader: _Reader, count: int, inline_limit: int) -> dict[str, object]:
    metadata: dict[str, object] = {}
    for _ in range(count):
        start = reader.pos
        key = reader.name("metadata key")
        if key in metadata:
            raise GgufFormatError(f"metadata key {key!r} repeats at offset {start}")
        value_type = _value_type(reader.u32(), reader.pos - 4)
        metadata[key] = _read_value(reader, value_type, depth=0, inline_limit=inline_limit)
    return metadata


def _value_type(raw: int, offset: int) -> GgufValueType:
    try:
        return GgufValueType(raw)
    except ValueError:
        raise GgufFormatError(f"unknown metadata value type {raw} at offset {offset}") from None


def _read_value(
    reader: _Reader, value_type: GgufValueType, *, depth: int, inline_limit: int
) -> object:
    if value_type is GgufValueType.STRING:
        # Values are not validated as UTF-8 by llama.cpp either; one odd byte must not hide a model.
        return str(reader.raw_string(_MAX_STRING_BYTES), "utf-8", "replace")
    if value_type is GgufValueType.ARRAY:
        return _read_array(reader, depth=depth + 1, inline_limit=inline_limit)
    return reader.scalar(value_type)


def _read_array(reader: _Reader, *, depth: int, inline_limit: int) -> GgufArray:
    if depth > _MAX_ARRAY_NESTING:
        raise GgufFormatError(
            f"arrays nested deeper than {_MAX_ARRAY_NESTING} at offset {reader.pos}"
        )
    item_type = _value_type(reader.u32(), reader.pos - 4)
    length = reader.u64()
    offset = reader.pos
    if length > inline_limit:
        _skip_items(reader, item_type, length, depth=depth)
        return GgufArray(item_type, length, offset, None)
    fmt = _SCALAR_FORMATS.get(item_type)
    if fmt is not None:
        values = _unpack_many(reader, fmt, length)
    else:
        values = tuple(
            _read_value(reader, item_type, depth=depth, inline_limit=inline_limit)
            for _ in range(length)
        )
    return GgufArray(item_type, length, offset, values)


def _unpack_many(reader: _Reader, fmt: str, count: int) -> tuple[object, ...]:
    layout = f"{reader.order}{count}{fmt}"
    size = struct.calcsize(layout)
    reader.need(size)
    values = struct.unpack_from(layout, reader.view, reader.pos)
    reader.pos += size
    return values


def _skip_items(reader: _Reader, item_type: GgufValueType, count: int, *, depth: int) -> None:
    """Move past `count` items without building them: O(1) for fixed sizes, one jump per string."""
    fmt = _SCALAR_FORMATS.get(item_type)
    if fmt is not None:
        reader.need(count * struct.calcsize(fmt))
        reader.pos += count * struct.calcsize(fmt)
    elif item_type is GgufValueType.STRING:
        _skip_strings(reader, count)
    else:
        for _ in range(count):
            _read_array(reader, depth=depth + 1, inline_limit=0)


def _skip_strings(reader: _Reader, count: int) -> None:
    view, pos, end = reader.view, reader.pos, len(reader.view)
    unpack = reader.structs[GgufValueType.UINT64].unpack_from
    for done in range(count):
        # Every string left needs at least its 8-byte length: a tighter bound for the next window.
        if pos + 8 > end:
            raise NeedMoreBytes(pos + 8 * (count - done))
        (length,) = unpack(view, pos)
        if length > _MAX_STRING_BYTES:
            raise GgufFormatError(
                f"string of {length} bytes at offset {pos} exceeds {_MAX_STRING_BYTES}"
            )
        pos += 8 + length
        if pos > end:
            raise NeedMoreBytes(pos + 8 * (count - done - 1))
    reader.pos = pos


def _read_tensor_infos(reader: _Reader, count: int) -> tuple[TensorInfo, ...]:
    tensors: list[TensorInfo] = []
    seen: set[str] = set()
    for _ in range(count):
        start = reader.pos
        tensor = _read_tensor_info(reader)
        if tensor.name in seen:
            raise GgufFormatError(f"tensor {tensor.name!r} repeats at offset {start}")
        seen.add(tensor.name)
        tensors.append(tensor)
    return tuple(tensors)


def _read_tensor_info(reader: _Reader) -> TensorInfo:
    name = reader.name("tensor name")
    n_dims = reader.u32()
    if n_dims > _MAX_DIMS:
        raise GgufFormatError(f"tensor {name!r} has {n_dims} dims; GGUF allows at most {_MAX_DIMS}")
    dims = tuple(reader.u64() for _ in range(n_dims))
    ggml_type = reader.u32()
    offset = reader.u64()
    if any(dim >= 1 << 63 for dim in dims):
        raise GgufFormatError(f"tensor {name!r} has a dimension beyond int64: {dims}")
    known = GGML_TYPES.get(ggml_type)
    if known is not None and dims and dims[0] % known[1]:
        raise GgufFormatError(
            f"tensor {name!r}: row length {dims[0]} is not a multiple of "
            f"{known[0]}'s block of {known[1]}"
        )
    return TensorInfo(name, dims, ggml_type, offset)


def _alignment(metadata: Mapping[str, object]) -> int:
    value = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0 or value & (value - 1):
        raise GgufFormatError(f"general.alignment must be a power of two, found {value!r}")
    return value


def _check_offsets(tensors: tuple[TensorInfo, ...], alignment: int) -> None:
    for tensor in tensors:
        if tensor.offset % alignment:
            raise GgufFormatError(
                f"tensor {tensor.name!r} data offset {tensor.offset} is not aligned to {alignment}"
            )


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _as_int_or_ints(value: object) -> int | tuple[int, ...] | None:
    if not isinstance(value, GgufArray):
        return _as_int(value)
    items = value.values or ()
    ints = tuple(item for item in items if isinstance(item, int) and not isinstance(item, bool))
    return ints if value.values is not None and len(ints) == len(items) else None
