"""The pure GGUF header parser, judged against the gguf package's own reader and writer."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from pathlib import Path

import gguf
import numpy as np
import pytest

from modelsync.gguf import (
    GGML_TYPES,
    INITIAL_WINDOW,
    INLINE_ARRAY_LIMIT,
    MAX_WINDOW,
    Bytes,
    GgufArray,
    GgufFormatError,
    GgufHeader,
    GgufValueType,
    NeedMoreBytes,
    next_window,
    parse_header,
    read_header,
    summarize_file,
)
from modelsync.testing.gguf_files import GgufOptions, SyntheticModel, write_gguf

MIB = 1024 * 1024


def _write_every_value_type(
    path: Path, endianess: gguf.GGUFEndian = gguf.GGUFEndian.LITTLE
) -> Path:
    writer = gguf.GGUFWriter(path, "llama", endianess=endianess)
    writer.add_uint8("t.u8", 200)
    writer.add_int8("t.i8", -100)
    writer.add_uint16("t.u16", 60_000)
    writer.add_int16("t.i16", -30_000)
    writer.add_uint32("t.u32", 4_000_000_000)
    writer.add_int32("t.i32", -2_000_000_000)
    writer.add_float32("t.f32", 0.1)
    writer.add_bool("t.bool", True)
    writer.add_string("t.str", "héllo ✓")
    writer.add_uint64("t.u64", 2**63 + 5)
    writer.add_int64("t.i64", -(2**62))
    writer.add_float64("t.f64", 1 / 3)
    writer.add_array("t.ints", [1, -2, 3])
    writer.add_key_value(
        "t.u8s", [1, 2, 255], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.UINT8
    )
    writer.add_array("t.strs", ["a", "bé", "c"])
    writer.add_array("t.floats", [0.5, -1.25])
    writer.add_array("t.bools", [True, False])
    writer.add_array("t.long_strs", [f"token-{index}" for index in range(1500)])
    writer.add_array("t.long_ints", list(range(3000)))
    writer.add_tensor("a.weight", np.ones((3, 64), dtype=np.float32))
    writer.add_tensor("b.weight", np.zeros((2, 32), dtype=np.float16))
    writer.add_tensor(
        "c.weight", np.zeros((4, 34), dtype=np.uint8), raw_dtype=gguf.GGMLQuantizationType.Q8_0
    )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _assert_matches_reader(path: Path, header: GgufHeader, data: bytes) -> None:
    """Every metadata value and tensor info equals what gguf.GGUFReader reads from the file."""
    reader = gguf.GGUFReader(path)
    fields = {key: field for key, field in reader.fields.items() if not key.startswith("GGUF.")}
    assert header.version == reader.fields["GGUF.version"].contents()
    assert list(header.metadata) == list(fields)
    for key, field in fields.items():
        value = header.metadata[key]
        if isinstance(value, GgufArray):
            assert int(value.item_type) == int(field.types[-1])
            assert value.length == len(field.data)
            expected = field.contents()
            if value.values is not None:
                assert list(value.values) == expected, key
            for index in {0, value.length // 2, value.length - 1}:
                assert header.array_item(data, key, index) == expected[index], key
        else:
            assert value == field.contents(), key
    assert header.header_size == reader.data_offset
    assert header.alignment == reader.alignment
    assert len(header.tensors) == len(reader.tensors)
    for ours, theirs in zip(header.tensors, reader.tensors, strict=True):
        assert ours.name == theirs.name
        assert list(ours.dims) == theirs.shape.tolist()
        assert ours.ggml_type == theirs.tensor_type
        assert header.header_size + ours.offset == theirs.data_offset
        assert ours.n_elements == theirs.n_elements
        assert ours.n_bytes == theirs.n_bytes
    assert header.parameter_count == sum(tensor.n_elements for tensor in reader.tensors)


def test_every_value_type_matches_gguf_reader(tmp_path: Path) -> None:
    """All twelve scalar types, short and long arrays and tensors parse as GGUFReader reads them."""
    path = _write_every_value_type(tmp_path / "all.gguf")
    data = path.read_bytes()
    header = parse_header(data)
    _assert_matches_reader(path, header, data)
    assert header.metadata["t.u64"] == 2**63 + 5
    assert header.metadata["t.bool"] is True


def test_long_arrays_keep_only_their_length(tmp_path: Path) -> None:
    """Arrays past the inline limit are skipped to their length; short ones keep their items."""
    data = _write_every_value_type(tmp_path / "all.gguf").read_bytes()
    header = parse_header(data)
    long_strs, strs = header.metadata["t.long_strs"], header.metadata["t.strs"]
    assert isinstance(long_strs, GgufArray)
    assert isinstance(strs, GgufArray)
    assert (long_strs.length, long_strs.values) == (1500, None)
    assert strs.values == ("a", "bé", "c")
    assert header.array_item(data, "t.long_strs", 1234) == "token-1234"


def test_big_endian_file_matches_gguf_reader(tmp_path: Path) -> None:
    """A big-endian GGUF v3 file is detected from its version word and parsed like GGUFReader."""
    path = _write_every_value_type(tmp_path / "be.gguf", gguf.GGUFEndian.BIG)
    data = path.read_bytes()
    header = parse_header(data)
    assert header.big_endian
    _assert_matches_reader(path, header, data)


def test_synthetic_model_matches_gguf_reader(tmp_path: Path) -> None:
    """A llama-shaped Q4_K_M file parses field for field as GGUFReader reads it."""
    path = write_gguf(tmp_path / "m.gguf", quant="Q4_K_M")
    data = path.read_bytes()
    _assert_matches_reader(path, parse_header(data), data)


def test_helpers_read_the_llama_keys(tmp_path: Path) -> None:
    """The helper properties return the architecture-prefixed values a memory estimate needs."""
    options: GgufOptions = {
        "quant": "Q5_K_M",
        "n_layers": 3,
        "n_embd": 512,
        "n_head": 8,
        "n_head_kv": 2,
        "context_length": 8192,
        "name": "helper",
        "extra_metadata": {"llama.attention.key_length": 64, "llama.attention.value_length": 64},
    }
    header = parse_header(write_gguf(tmp_path / "m.gguf", **options).read_bytes())
    assert header.architecture == "llama"
    assert header.name == "helper"
    assert header.file_type == 17
    assert header.block_count == 3
    assert header.context_length == 8192
    assert header.embedding_length == 512
    assert header.head_count == 8
    assert header.head_count_kv == 2
    assert (header.key_length, header.value_length) == (64, 64)
    assert header.arch_value("feed_forward_length") == 512
    expected = sum(tensor.n_elements for tensor in SyntheticModel(**options).tensors())
    assert header.parameter_count == expected


def test_absent_keys_give_none(tmp_path: Path) -> None:
    """Helpers return None when the file lacks the key instead of guessing a default."""
    path = write_gguf(tmp_path / "m.gguf", extra_metadata={"llama.context_length": None})
    header = parse_header(path.read_bytes())
    assert header.context_length is None
    assert header.key_length is None
    assert header.value_length is None


def test_per_layer_head_counts_are_tuples(tmp_path: Path) -> None:
    """A per-layer head_count_kv array (0 = a layer without KV cache) comes back as a tuple."""
    path = write_gguf(
        tmp_path / "m.gguf", extra_metadata={"llama.attention.head_count_kv": [2, 0, 2]}
    )
    assert parse_header(path.read_bytes()).head_count_kv == (2, 0, 2)


def test_skipped_arrays_are_read_on_demand(tmp_path: Path) -> None:
    """With nothing inlined, array_item still finds a token string and a score in the bytes."""
    data = write_gguf(tmp_path / "m.gguf").read_bytes()
    header = parse_header(data, inline_limit=0)
    tokens = header.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, GgufArray)
    assert tokens.values is None
    assert header.array_item(data, "tokenizer.ggml.tokens", 2) == "</s>"
    assert header.array_item(data, "tokenizer.ggml.tokens", 3 + 0x41) == "<0x41>"
    assert header.array_item(data, "tokenizer.ggml.scores", 7) == -7.0
    with pytest.raises(IndexError):
        header.array_item(data, "tokenizer.ggml.tokens", tokens.length)
    with pytest.raises(KeyError):
        header.array_item(data, "general.name", 0)


def _parse_or_need(data: Bytes, inline_limit: int) -> GgufHeader | NeedMoreBytes:
    try:
        return parse_header(data, inline_limit=inline_limit)
    except NeedMoreBytes as more:
        return more


@pytest.mark.parametrize("inline_limit", [0, 1024])
def test_every_truncated_prefix_asks_for_more(tmp_path: Path, inline_limit: int) -> None:
    """Each prefix short of the tensor infos' end raises NeedMoreBytes with a bound past itself."""
    data = write_gguf(tmp_path / "m.gguf", n_vocab=16, n_layers=1).read_bytes()
    full = parse_header(data, inline_limit=inline_limit)
    results = [
        _parse_or_need(data[:length], inline_limit) for length in range(full.header_size + 1)
    ]
    end = next(length for length, result in enumerate(results) if isinstance(result, GgufHeader))
    assert all(result == full for result in results[end:])
    for length, result in enumerate(results[:end]):
        assert isinstance(result, NeedMoreBytes)
        assert result.needed is not None
        assert length < result.needed <= end


def test_a_cut_string_array_asks_for_its_remaining_lengths(tmp_path: Path) -> None:
    """A prefix cut inside a skipped string array needs at least 8 bytes per token still to come."""
    data = write_gguf(tmp_path / "m.gguf", n_vocab=4000).read_bytes()
    header = parse_header(data)
    tokens = header.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, GgufArray)
    cut = tokens.offset + 100
    with pytest.raises(NeedMoreBytes) as more:
        parse_header(data[:cut])
    assert more.value.needed is not None
    assert cut + 8 * (tokens.length - 20) < more.value.needed <= header.header_size


def test_a_bytearray_can_grow_while_its_failure_is_handled(tmp_path: Path) -> None:
    """Parse errors keep no view of the buffer, so a caller can extend it and parse again."""
    data = write_gguf(tmp_path / "m.gguf").read_bytes()
    buffer = bytearray(data[:100])
    with pytest.raises(NeedMoreBytes) as more:
        parse_header(buffer)
    assert more.value.needed is not None
    buffer.extend(data[100 : more.value.needed + 4096])
    while isinstance(result := _parse_or_need(buffer, INLINE_ARRAY_LIMIT), NeedMoreBytes):
        assert result.needed is not None
        buffer.extend(data[len(buffer) : result.needed])
    assert parse_header(buffer) == parse_header(data)
    bad = bytearray(_gguf([_kv("a", 13, b"")]))
    with pytest.raises(GgufFormatError):
        parse_header(bad)
    bad.extend(b"more")
    assert bad.endswith(b"more")


@pytest.mark.parametrize(
    ("prefix", "needed"),
    [
        (b"", 8),
        (b"GG", 8),
        (b"GGUF\x03\x00\x00\x00", 16),
        (b"GGUF\x03\x00\x00\x00" + bytes(8), 24),
    ],
)
def test_short_preambles_ask_for_the_next_field(prefix: bytes, needed: int) -> None:
    """A prefix ending in the magic, version or counts asks for exactly the next field's end."""
    with pytest.raises(NeedMoreBytes) as more:
        parse_header(prefix)
    assert more.value.needed == needed


def test_version_2_parses_like_version_3(tmp_path: Path) -> None:
    """GGUF v2 has v3's layout, so patching the version word changes nothing but `version`."""
    data = write_gguf(tmp_path / "m.gguf").read_bytes()
    v2 = data[:4] + struct.pack("<I", 2) + data[8:]
    v2_header, v3_header = parse_header(v2), parse_header(data)
    assert (v2_header.version, v3_header.version) == (2, 3)
    assert v2_header.metadata == v3_header.metadata
    assert v2_header.tensors == v3_header.tensors


@pytest.mark.parametrize("version", [0, 1, 4, 768])
def test_unsupported_versions_raise(version: int) -> None:
    """Versions other than 2 and 3 (v1 used 32-bit counts) are refused with the version named."""
    with pytest.raises(GgufFormatError, match=f"version {version} is not supported"):
        parse_header(b"GGUF" + struct.pack("<IQQ", version, 0, 0))


@pytest.mark.parametrize(
    "data",
    [
        b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 1\n",
        hashlib.shake_256(b"garbage").digest(4096),
        bytes(64),
        b"GGUX" + bytes(60),
        b"ggml" + bytes(60),
    ],
    ids=["lfs-pointer", "random", "zeros", "bad-magic", "old-ggml"],
)
def test_non_gguf_bytes_raise_format_error(data: bytes) -> None:
    """Bytes that do not start with the GGUF magic raise GgufFormatError, never NeedMoreBytes."""
    with pytest.raises(GgufFormatError, match="not a GGUF file"):
        parse_header(data)


def _string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def _kv(key: str | bytes, value_type: int, payload: bytes) -> bytes:
    return _string(key) + struct.pack("<I", value_type) + payload


def _u32_kv(key: str, value: int) -> bytes:
    return _kv(key, 4, struct.pack("<I", value))


def _tensor(name: str, dims: Sequence[int], ggml_type: int = 0, offset: int = 0) -> bytes:
    return (
        _string(name)
        + struct.pack(f"<I{len(dims)}Q", len(dims), *dims)
        + struct.pack("<IQ", ggml_type, offset)
    )


def _gguf(kvs: Sequence[bytes] = (), tensors: Sequence[bytes] = ()) -> bytes:
    return (
        b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + b"".join(tensors)
    )


def _nested_array(depth: int) -> bytes:
    payload = struct.pack("<IQ", 4, 1) + struct.pack("<I", 7)
    for _ in range(depth - 1):
        payload = struct.pack("<IQ", 9, 1) + payload
    return payload


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_gguf([_kv("a", 13, b"")]), "unknown metadata value type 13"),
        (_gguf([_u32_kv("a", 1), _u32_kv("a", 2)]), "metadata key 'a' repeats"),
        (_gguf([_kv(b"\xff\xfe", 4, bytes(4))]), "metadata key at offset 24 is not valid UTF-8"),
        (_gguf([_kv("k" * 70_000, 4, bytes(4))]), "string of 70000 bytes"),
        (_gguf([_kv("a", 9, _nested_array(9))]), "nested deeper than 8"),
        (_gguf([_u32_kv("general.alignment", 48)]), "power of two, found 48"),
        (_gguf([_kv("general.alignment", 8, _string("32"))]), "power of two, found '32'"),
        (_gguf(tensors=[_tensor("t", [4]), _tensor("t", [4])]), "tensor 't' repeats"),
        (_gguf(tensors=[_tensor("t", [1, 1, 1, 1, 1])]), "5 dims"),
        (
            _gguf(tensors=[_tensor("t", [100, 2], ggml_type=12)]),
            "row length 100 is not a multiple of Q4_K",
        ),
        (_gguf(tensors=[_tensor("t", [4], offset=16)]), "offset 16 is not aligned to 32"),
    ],
    ids=[
        "value-type",
        "duplicate-key",
        "key-utf8",
        "long-key",
        "deep-nesting",
        "alignment-value",
        "alignment-type",
        "duplicate-tensor",
        "dims",
        "row-block",
        "misaligned-offset",
    ],
)
def test_malformed_headers_raise_format_error(data: bytes, message: str) -> None:
    """Each kind of malformed header raises GgufFormatError naming what is wrong."""
    with pytest.raises(GgufFormatError, match=message):
        parse_header(data)


def test_hand_built_header_edge_cases() -> None:
    """Empty arrays, a 64-byte alignment, memoryview input and unknown tensor types all parse."""
    data = _gguf(
        [_kv("empty", 9, struct.pack("<IQ", 8, 0)), _u32_kv("general.alignment", 64)],
        [_tensor("odd", [3, 5], ggml_type=99), _tensor("f", [8], offset=64)],
    )
    header = parse_header(memoryview(bytearray(data)))
    assert header.metadata["empty"] == GgufArray(GgufValueType.STRING, 0, 53, ())
    assert header.alignment == 64
    assert header.header_size == 192
    assert header.header_size >= len(data)
    odd = header.tensors[0]
    assert (odd.type_name, odd.n_bytes, odd.n_elements) == ("TYPE_99", None, 15)
    assert header.architecture is None
    assert header.parameter_count == 23


def test_ggml_type_table_matches_the_gguf_package() -> None:
    """Our ggml type ids, names and block sizes agree with gguf's GGML_QUANT_SIZES."""
    theirs = {int(kind): (kind.name, *sizes) for kind, sizes in gguf.GGML_QUANT_SIZES.items()}
    assert dict(GGML_TYPES) == theirs


@pytest.mark.parametrize(
    ("current", "needed", "expected"),
    [
        (INITIAL_WINDOW, 3 * MIB, 4 * MIB),
        (INITIAL_WINDOW, 10 * MIB, 10 * MIB),
        (INITIAL_WINDOW, None, 4 * MIB),
        (1000, 1001, INITIAL_WINDOW),
        (48 * MIB, None, MAX_WINDOW),
        (MAX_WINDOW, MAX_WINDOW + 1, None),
        (4 * MIB, 65 * MIB, None),
    ],
)
def test_next_window_doubles_up_to_the_cap(
    current: int, needed: int | None, expected: int | None
) -> None:
    """The read window at least doubles, covers `needed`, and stops at 64 MiB."""
    assert next_window(current, needed) == expected


def test_summarize_file_builds_the_hub_gguf_object(tmp_path: Path) -> None:
    """The summary has the Hub's keys: parameters, architecture, context, template, tokens, size."""
    path = write_gguf(tmp_path / "m.gguf", context_length=8192)
    header = parse_header(path.read_bytes())
    assert summarize_file(path) == {
        "total": header.parameter_count,
        "architecture": "llama",
        "context_length": 8192,
        "chat_template": header.metadata["tokenizer.chat_template"],
        "bos_token": "<s>",
        "eos_token": "</s>",
        "totalFileSize": path.stat().st_size,
    }


def test_summarize_file_leaves_out_missing_fields(tmp_path: Path) -> None:
    """Keys the file lacks are absent from the summary rather than null."""
    path = write_gguf(
        tmp_path / "m.gguf",
        extra_metadata={"tokenizer.chat_template": None, "tokenizer.ggml.bos_token_id": None},
    )
    summary = summarize_file(path)
    assert summary is not None
    assert "chat_template" not in summary
    assert "bos_token" not in summary
    assert summary["eos_token"] == "</s>"


def test_summarize_file_grows_its_window_past_two_mib(tmp_path: Path) -> None:
    """A header larger than the first 2 MiB window is still read, by growing the window."""
    template = "x" * (3 * MIB)
    path = write_gguf(tmp_path / "m.gguf", extra_metadata={"tokenizer.chat_template": template})
    summary = summarize_file(path)
    assert summary is not None
    assert summary["chat_template"] == template
    header = read_header(path)
    assert header is not None
    assert header.header_size > INITIAL_WINDOW


@pytest.mark.parametrize(
    "content",
    [b"", b"GGU", b"# README\n", b"version https://git-lfs.github.com/spec/v1\n"],
    ids=["empty", "short", "text", "lfs-pointer"],
)
def test_summarize_file_returns_none_for_non_gguf(tmp_path: Path, content: bytes) -> None:
    """Files without the GGUF magic are not GGUF: the summary is None."""
    path = tmp_path / "file"
    path.write_bytes(content)
    assert summarize_file(path) is None
    assert read_header(path) is None


def test_summarize_file_rejects_a_truncated_gguf(tmp_path: Path) -> None:
    """A GGUF file that ends inside its header raises GgufFormatError naming the file and byte."""
    path = write_gguf(tmp_path / "m.gguf")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(GgufFormatError, match=r"m\.gguf: the file ends at byte 1000"):
        summarize_file(path)


def test_summarize_file_stops_at_the_window_cap(tmp_path: Path) -> None:
    """A header that claims more than 64 MiB is refused without reading on."""
    path = tmp_path / "huge.gguf"
    path.write_bytes(_gguf([_kv("big", 8, struct.pack("<Q", 100 * MIB))]) + bytes(3 * MIB))
    with pytest.raises(GgufFormatError, match="larger than"):
        summarize_file(path)


def test_summarize_file_prefixes_format_errors_with_the_path(tmp_path: Path) -> None:
    """A malformed header's error names the file it came from."""
    path = tmp_path / "bad.gguf"
    path.write_bytes(_gguf([_kv("a", 13, b"")]))
    with pytest.raises(GgufFormatError, match=r"bad\.gguf: unknown metadata value type 13"):
        summarize_file(path)
