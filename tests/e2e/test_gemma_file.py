"""The real Gemma 3 270M Q4_K_M file: pinned digest, and the header values modelsync relies on."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from modelsync.gguf import read_header, summarize_file
from tests.fixtures.models import GEMMA_SHA256, GEMMA_SIZE, GemmaFile

pytestmark = pytest.mark.slow


def test_gemma_file_matches_the_pinned_digest(gemma_gguf: GemmaFile) -> None:
    """The assembled file has the design's size and SHA-256, recomputed here from the bytes."""
    with gemma_gguf.path.open("rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    assert (gemma_gguf.size, gemma_gguf.sha256) == (GEMMA_SIZE, GEMMA_SHA256)
    assert gemma_gguf.path.stat().st_size == GEMMA_SIZE
    assert digest == GEMMA_SHA256


def test_gemma_summary_is_the_hub_gguf_object(gemma_gguf: GemmaFile) -> None:
    """summarize_file gives gemma3, 268.1 M parameters, a 32k context and the bos/eos strings."""
    assert summarize_file(gemma_gguf.path) == {
        "total": 268_098_176,
        "architecture": "gemma3",
        "context_length": 32768,
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "totalFileSize": GEMMA_SIZE,
    }


def test_gemma_header_gives_the_memory_estimate_inputs(gemma_gguf: GemmaFile) -> None:
    """The header holds the measured values of hardware-and-quants.md sections 2 and 5."""
    header = read_header(gemma_gguf.path)
    assert header is not None
    assert (header.version, len(header.metadata), len(header.tensors)) == (3, 33, 236)
    assert (header.block_count, header.embedding_length, header.file_type) == (18, 640, 15)
    assert (header.head_count, header.head_count_kv) == (4, 1)
    assert (header.key_length, header.value_length) == (256, 256)
    assert header.arch_value("attention.sliding_window") == 512
    assert header.header_size == 6_525_120
    data_end = max(tensor.offset + (tensor.n_bytes or 0) for tensor in header.tensors)
    assert header.header_size + data_end == GEMMA_SIZE
    types = Counter(tensor.type_name for tensor in header.tensors)
    assert types == {"F32": 109, "Q5_0": 81, "Q4_K": 27, "Q8_0": 10, "Q6_K": 9}
    embedding = next(tensor for tensor in header.tensors if tensor.name == "token_embd.weight")
    assert (embedding.dims, embedding.type_name) == ((640, 262_144), "Q8_0")
