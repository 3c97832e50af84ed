"""Small synthetic GGUF files for tests and benchmarks, written with the `gguf` package.

A synthetic model is llama-shaped (token embedding, `n_layers` blocks of attention and SwiGLU
feed-forward, output norm and head) with the metadata llama.cpp writes, and tensors stored in the
ggml types of the quant's llama.cpp recipe (Q4_K_M: Q4_K, with Q6_K on half of `attn_v` and
`ffn_down` and on the output; 1-D tensors F32), so file sizes follow the quants' real order. The
weights are seeded random bytes: the same arguments always give byte-identical files.

`gguf` and numpy are dev dependencies, imported inside the functions that write files.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from modelsync.gguf.header import QUANT_FILE_TYPES

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

DEFAULT_REPO_QUANTS = ("Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")

# ggml type → (weights per block, bytes per block); a subset of GGML_QUANT_SIZES.
_BLOCKS: Mapping[str, tuple[int, int]] = {
    "F32": (1, 4),
    "F16": (1, 2),
    "BF16": (1, 2),
    "Q4_0": (32, 18),
    "Q4_1": (32, 20),
    "Q5_0": (32, 22),
    "Q5_1": (32, 24),
    "Q8_0": (32, 34),
    "Q2_K": (256, 84),
    "Q3_K": (256, 110),
    "Q4_K": (256, 144),
    "Q5_K": (256, 176),
    "Q6_K": (256, 210),
    "IQ2_XXS": (256, 66),
    "IQ2_XS": (256, 74),
    "IQ3_XXS": (256, 98),
    "IQ1_S": (256, 50),
    "IQ4_NL": (32, 18),
    "IQ3_S": (256, 110),
    "IQ2_S": (256, 82),
    "IQ4_XS": (256, 136),
    "IQ1_M": (256, 56),
}

# llama.cpp's fallback when a row is not a multiple of the block (llama-quant.cpp); then F16.
_ROW_FALLBACK: Mapping[str, str] = {
    "Q2_K": "IQ4_NL",
    "Q3_K": "IQ4_NL",
    "IQ2_XXS": "IQ4_NL",
    "IQ2_XS": "IQ4_NL",
    "IQ2_S": "IQ4_NL",
    "IQ3_XXS": "IQ4_NL",
    "IQ3_S": "IQ4_NL",
    "IQ1_S": "IQ4_NL",
    "IQ1_M": "IQ4_NL",
    "IQ4_XS": "IQ4_NL",
    "Q4_K": "Q5_0",
    "Q5_K": "Q5_1",
    "Q6_K": "Q8_0",
}


@dataclass(frozen=True, slots=True)
class _Recipe:
    """Tensor types of one quant label, simplified from llama.cpp's `llama_tensor_get_type`."""

    base: str
    output: str = "Q6_K"
    embed: str | None = None
    attn_v: str | None = None
    attn_output: str | None = None
    ffn_down: str | None = None
    more_bits: str | None = None
    """Type of `attn_v` and `ffn_down` on llama.cpp's `use_more_bits` layers (about half)."""


_RECIPES: Mapping[str, _Recipe] = {
    "F32": _Recipe("F32", output="F32"),
    "F16": _Recipe("F16", output="F16"),
    "BF16": _Recipe("BF16", output="BF16"),
    "Q8_0": _Recipe("Q8_0", output="Q8_0"),
    "Q6_K": _Recipe("Q6_K"),
    "Q5_K_M": _Recipe("Q5_K", more_bits="Q6_K"),
    "Q5_K_S": _Recipe("Q5_K"),
    "Q5_1": _Recipe("Q5_1"),
    "Q5_0": _Recipe("Q5_0"),
    "Q4_K_M": _Recipe("Q4_K", more_bits="Q6_K"),
    "Q4_K_S": _Recipe("Q4_K"),
    "Q4_1": _Recipe("Q4_1"),
    "Q4_0": _Recipe("Q4_0"),
    "IQ4_NL": _Recipe("IQ4_NL"),
    "IQ4_XS": _Recipe("IQ4_XS"),
    "Q3_K_L": _Recipe("Q3_K", attn_v="Q5_K", attn_output="Q5_K", ffn_down="Q5_K"),
    "Q3_K_M": _Recipe("Q3_K", attn_v="Q4_K", attn_output="Q4_K", ffn_down="Q4_K"),
    "Q3_K_S": _Recipe("Q3_K"),
    "IQ3_M": _Recipe("IQ3_S", attn_v="Q4_K", attn_output="Q4_K"),
    "IQ3_S": _Recipe("IQ3_S"),
    "IQ3_XS": _Recipe("IQ3_XXS", attn_v="IQ3_S", attn_output="IQ3_S"),
    "IQ3_XXS": _Recipe("IQ3_XXS", output="Q5_K", embed="IQ3_S"),
    "Q2_K": _Recipe("Q2_K", attn_v="Q3_K", attn_output="Q3_K", ffn_down="Q3_K"),
    "Q2_K_S": _Recipe("Q2_K"),
    "IQ2_M": _Recipe("IQ2_S", output="Q5_K", embed="IQ3_S", attn_v="IQ3_S"),
    "IQ2_S": _Recipe("IQ2_XS", output="Q5_K", embed="IQ3_S", attn_v="IQ3_S"),
    "IQ2_XS": _Recipe("IQ2_XS", output="Q5_K", embed="Q2_K"),
    "IQ2_XXS": _Recipe("IQ2_XXS", output="Q5_K", embed="Q2_K"),
    "IQ1_M": _Recipe("IQ1_M", output="Q5_K", embed="Q2_K"),
    "IQ1_S": _Recipe("IQ1_S", output="Q5_K", embed="Q2_K"),
}

_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}"
    "{{ ' ' + message['content'] + eos_token }}{% endif %}{% endfor %}"
)


class ModelOptions(TypedDict, total=False):
    """Keyword options of a synthetic model other than its quant and name."""

    arch: str
    n_layers: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    n_vocab: int
    context_length: int
    n_params_hint: int | None
    extra_metadata: Mapping[str, object] | None


class GgufOptions(ModelOptions, total=False):
    """Every keyword option of `write_gguf` (the fields of `SyntheticModel`)."""

    quant: str
    name: str


@dataclass(frozen=True, slots=True)
class TensorPlan:
    """One tensor to write: name, dims in GGUF order (row length first) and ggml type name."""

    name: str
    dims: tuple[int, ...]
    ggml_type: str

    @property
    def n_elements(self) -> int:
        """The product of the dims."""
        count = 1
        for dim in self.dims:
            count *= dim
        return count

    @property
    def n_bytes(self) -> int:
        """Bytes of tensor data in this ggml type."""
        block, size = _BLOCKS[self.ggml_type]
        return self.n_elements // block * size


@dataclass(frozen=True, slots=True)
class MetadataEntry:
    """One metadata value with the GGUF type it is written as."""

    value: object
    value_type: str
    """A `gguf.GGUFValueType` member name."""
    item_type: str | None = None


@dataclass(frozen=True, slots=True)
class SyntheticModel:
    """A llama-shaped model: its defaults give a 1.4 M-parameter file of ~1 MB at Q4_K_M.

    `n_params_hint`, when given, sets the layer count so the parameter count comes close to it.
    `extra_metadata` adds or replaces keys (Python types map to GGUF types: bool, int → INT32 or
    64-bit, float → FLOAT32, str, non-empty list/tuple → ARRAY); a None value removes a key.
    """

    arch: str = "llama"
    quant: str = "Q4_K_M"
    n_layers: int = 2
    n_embd: int = 256
    n_ff: int = 512
    n_head: int = 4
    n_head_kv: int = 2
    n_vocab: int = 512
    context_length: int = 4096
    n_params_hint: int | None = None
    name: str = "tiny-llama"
    extra_metadata: Mapping[str, object] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if self.quant not in _RECIPES:
            raise ValueError(f"unknown quant {self.quant!r}; known: {', '.join(sorted(_RECIPES))}")
        if self.n_embd % self.n_head or self.n_head % self.n_head_kv:
            raise ValueError(
                f"n_embd {self.n_embd} must divide by n_head {self.n_head}, "
                f"and n_head by n_head_kv {self.n_head_kv}"
            )
        if self.n_vocab < 3:
            raise ValueError(f"n_vocab must be at least 3 (unk, bos, eos), got {self.n_vocab}")

    @property
    def block_count(self) -> int:
        """Layers written: `n_layers`, or the count that brings the parameters near the hint."""
        if self.n_params_hint is None:
            return self.n_layers
        fixed = 2 * self.n_embd * self.n_vocab + self.n_embd
        return max(1, round((self.n_params_hint - fixed) / self._layer_parameters()))

    @property
    def head_dim(self) -> int:
        """Size of one attention head."""
        return self.n_embd // self.n_head

    def tensors(self) -> tuple[TensorPlan, ...]:
        """The tensors in llama.cpp's order, typed by the quant's recipe."""
        recipe = _RECIPES[self.quant]
        plans = [
            self._plan(
                "token_embd.weight", (self.n_embd, self.n_vocab), recipe.embed or recipe.base
            )
        ]
        for layer in range(self.block_count):
            plans.extend(self._layer(layer, recipe))
        plans.append(self._plan("output_norm.weight", (self.n_embd,), "F32"))
        plans.append(self._plan("output.weight", (self.n_embd, self.n_vocab), recipe.output))
        return tuple(plans)

    def metadata(self) -> dict[str, MetadataEntry]:
        """Metadata in llama.cpp's order, after `general.architecture` (which the writer adds)."""
        arch = self.arch
        params = sum(tensor.n_elements for tensor in self.tensors())
        metadata = {
            "general.type": MetadataEntry("model", "STRING"),
            "general.name": MetadataEntry(self.name, "STRING"),
            "general.size_label": MetadataEntry(_size_label(params), "STRING"),
            f"{arch}.vocab_size": MetadataEntry(self.n_vocab, "UINT32"),
            f"{arch}.context_length": MetadataEntry(self.context_length, "UINT32"),
            f"{arch}.embedding_length": MetadataEntry(self.n_embd, "UINT32"),
            f"{arch}.block_count": MetadataEntry(self.block_count, "UINT32"),
            f"{arch}.feed_forward_length": MetadataEntry(self.n_ff, "UINT32"),
            f"{arch}.rope.dimension_count": MetadataEntry(self.head_dim, "UINT32"),
            f"{arch}.attention.head_count": MetadataEntry(self.n_head, "UINT32"),
            f"{arch}.attention.head_count_kv": MetadataEntry(self.n_head_kv, "UINT32"),
            f"{arch}.attention.layer_norm_rms_epsilon": MetadataEntry(1e-5, "FLOAT32"),
            f"{arch}.rope.freq_base": MetadataEntry(10000.0, "FLOAT32"),
            **_tokenizer_metadata(self.n_vocab),
            "general.quantization_version": MetadataEntry(2, "UINT32"),
            "general.file_type": MetadataEntry(QUANT_FILE_TYPES[self.quant], "UINT32"),
        }
        return _merge_metadata(metadata, self.extra_metadata)

    @property
    def seed(self) -> str:
        """What the weights' random bytes derive from: equal models give equal bytes."""
        return f"{self.arch}/{self.name}/{self.quant}"

    def _layer_parameters(self) -> int:
        kv_dim = self.n_head_kv * self.head_dim
        return (
            2 * self.n_embd
            + 2 * self.n_embd**2
            + 2 * self.n_embd * kv_dim
            + 3 * self.n_embd * self.n_ff
        )

    def _layer(self, layer: int, recipe: _Recipe) -> list[TensorPlan]:
        more = recipe.more_bits if _use_more_bits(layer, self.block_count) else None
        kv_dim = self.n_head_kv * self.head_dim
        embd, ff, base = self.n_embd, self.n_ff, recipe.base
        specs: list[tuple[str, tuple[int, ...], str]] = [
            ("attn_norm", (embd,), "F32"),
            ("attn_q", (embd, embd), base),
            ("attn_k", (embd, kv_dim), base),
            ("attn_v", (embd, kv_dim), more or recipe.attn_v or base),
            ("attn_output", (embd, embd), recipe.attn_output or base),
            ("ffn_norm", (embd,), "F32"),
            ("ffn_gate", (embd, ff), base),
            ("ffn_up", (embd, ff), base),
            ("ffn_down", (ff, embd), more or recipe.ffn_down or base),
        ]
        return [self._plan(f"blk.{layer}.{name}.weight", dims, kind) for name, dims, kind in specs]

    @staticmethod
    def _plan(name: str, dims: tuple[int, ...], ggml_type: str) -> TensorPlan:
        return TensorPlan(name, dims, _fit_row(ggml_type, dims[0]))


def write_gguf(path: Path, **options: Unpack[GgufOptions]) -> Path:
    """Write one synthetic GGUF model (options: the fields of `SyntheticModel`); returns `path`."""
    model = SyntheticModel(**options)
    _write_file(path, model.arch, model.metadata(), model.tensors(), model.seed)
    return path


def write_split_gguf(
    directory: Path,
    stem: str,
    quant: str = "Q8_0",
    n_shards: int = 2,
    **options: Unpack[ModelOptions],
) -> list[Path]:
    """Write a model as llama.cpp shards `{stem}-{quant}-0000i-of-0000n.gguf`, returned in order.

    Shard 1 holds all metadata; every shard has `split.no` (0-based), `split.count` and
    `split.tensors.count`, and a contiguous run of the tensors, as `llama-gguf-split` writes them.
    """
    model = SyntheticModel(quant=quant, name=stem, **options)
    tensors = model.tensors()
    if not 1 <= n_shards <= len(tensors):
        raise ValueError(f"n_shards must be between 1 and {len(tensors)} tensors, got {n_shards}")
    paths = []
    for index, shard in enumerate(_split_evenly(tensors, n_shards)):
        split = {
            "split.no": MetadataEntry(index, "UINT16"),
            "split.count": MetadataEntry(n_shards, "UINT16"),
            "split.tensors.count": MetadataEntry(len(tensors), "INT32"),
        }
        metadata = {**model.metadata(), **split} if index == 0 else split
        path = directory / f"{stem}-{quant}-{index + 1:05d}-of-{n_shards:05d}.gguf"
        _write_file(path, model.arch if index == 0 else None, metadata, shard, model.seed)
        paths.append(path)
    return paths


def write_mmproj(
    path: Path,
    *,
    n_embd: int = 128,
    n_layers: int = 1,
    text_n_embd: int = 256,
    image_size: int = 224,
    patch_size: int = 14,
    projector_type: str = "gemma3",
) -> Path:
    """Write a small F16 vision projector (`general.architecture` = `clip`); returns `path`."""
    n_ff = 4 * n_embd
    n_patches = (image_size // patch_size) ** 2
    tensors = [
        TensorPlan("v.patch_embd.weight", (patch_size, patch_size, 3, n_embd), "F16"),
        TensorPlan("v.patch_embd.bias", (n_embd,), "F32"),
        TensorPlan("v.position_embd.weight", (n_embd, n_patches), "F16"),
    ]
    for layer in range(n_layers):
        prefix = f"v.blk.{layer}."
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            tensors.append(TensorPlan(f"{prefix}{name}.weight", (n_embd, n_embd), "F16"))
            tensors.append(TensorPlan(f"{prefix}{name}.bias", (n_embd,), "F32"))
        for name in ("ln1", "ln2"):
            tensors.append(TensorPlan(f"{prefix}{name}.weight", (n_embd,), "F32"))
            tensors.append(TensorPlan(f"{prefix}{name}.bias", (n_embd,), "F32"))
        tensors.append(TensorPlan(f"{prefix}ffn_up.weight", (n_embd, n_ff), "F16"))
        tensors.append(TensorPlan(f"{prefix}ffn_down.weight", (n_ff, n_embd), "F16"))
    tensors.append(TensorPlan("v.post_ln.weight", (n_embd,), "F32"))
    tensors.append(TensorPlan("mm.input_projection.weight", (n_embd, text_n_embd), "F16"))
    metadata = {
        "general.type": MetadataEntry("mmproj", "STRING"),
        "general.name": MetadataEntry(path.stem, "STRING"),
        "general.file_type": MetadataEntry(QUANT_FILE_TYPES["F16"], "UINT32"),
        "clip.has_vision_encoder": MetadataEntry(True, "BOOL"),
        "clip.projector_type": MetadataEntry(projector_type, "STRING"),
        "clip.use_gelu": MetadataEntry(True, "BOOL"),
        "clip.vision.image_size": MetadataEntry(image_size, "UINT32"),
        "clip.vision.patch_size": MetadataEntry(patch_size, "UINT32"),
        "clip.vision.embedding_length": MetadataEntry(n_embd, "UINT32"),
        "clip.vision.feed_forward_length": MetadataEntry(n_ff, "UINT32"),
        "clip.vision.projection_dim": MetadataEntry(text_n_embd, "UINT32"),
        "clip.vision.block_count": MetadataEntry(n_layers, "UINT32"),
        "clip.vision.attention.head_count": MetadataEntry(max(1, n_embd // 64), "UINT32"),
        "clip.vision.attention.layer_norm_epsilon": MetadataEntry(1e-6, "FLOAT32"),
        "clip.vision.image_mean": MetadataEntry([0.5, 0.5, 0.5], "ARRAY", "FLOAT32"),
        "clip.vision.image_std": MetadataEntry([0.5, 0.5, 0.5], "ARRAY", "FLOAT32"),
    }
    _write_file(path, "clip", metadata, tensors, f"mmproj/{path.name}")
    return path


def write_imatrix(
    path: Path,
    *,
    model: SyntheticModel | None = None,
    chunks: int = 64,
    dataset: str = "calibration.txt",
) -> Path:
    """Write an importance matrix for `model`'s block weights; returns `path`.

    A `path` ending in `.gguf` gets llama.cpp's GGUF imatrix layout, any other name the legacy
    binary `imatrix.dat` layout.
    """
    entries = [
        (tensor.name, tensor.dims[0])
        for tensor in (model or SyntheticModel()).tensors()
        if tensor.name.startswith("blk.") and len(tensor.dims) == 2
    ]
    if path.name.endswith(".gguf"):
        _write_imatrix_gguf(path, entries, chunks, dataset)
    else:
        _write_imatrix_legacy(path, entries, chunks, dataset)
    return path


def make_gguf_repo(
    directory: Path,
    stem: str = "Tiny-Llama",
    quants: Sequence[str] = DEFAULT_REPO_QUANTS,
    *,
    split_quant: str = "F16",
    n_shards: int = 2,
    **options: Unpack[ModelOptions],
) -> list[Path]:
    """Write a typical GGUF repo into `directory`; returns every file written, sorted.

    One `{stem}-{quant}.gguf` per quant, `split_quant` as `n_shards` llama.cpp shards,
    `mmproj-{stem}-F16.gguf`, `imatrix.dat`, `README.md` with YAML front matter, `config.json`.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = [
        write_gguf(directory / f"{stem}-{quant}.gguf", quant=quant, name=stem, **options)
        for quant in quants
    ]
    paths += write_split_gguf(directory, stem, split_quant, n_shards, **options)
    model = SyntheticModel(name=stem, **options)
    n_embd = model.n_embd
    paths.append(write_mmproj(directory / f"mmproj-{stem}-F16.gguf", text_n_embd=n_embd))
    paths.append(write_imatrix(directory / "imatrix.dat", model=model))
    paths.append(_write_text(directory / "README.md", _readme(stem, paths)))
    paths.append(_write_text(directory / "config.json", _config_json(model)))
    return sorted(paths)


def _write_file(
    path: Path,
    arch: str | None,
    metadata: Mapping[str, MetadataEntry],
    tensors: Sequence[TensorPlan],
    seed: str,
) -> None:
    """Write one GGUF file; `arch` None leaves out `general.architecture` (later split shards)."""
    import gguf  # noqa: PLC0415  dev dependency, kept out of the runtime import graph

    writer = gguf.GGUFWriter(path, arch or "")  # an empty architecture is not written
    for key, kv in metadata.items():
        item_type = gguf.GGUFValueType[kv.item_type] if kv.item_type else None
        writer.add_key_value(key, kv.value, gguf.GGUFValueType[kv.value_type], sub_type=item_type)
    for tensor in tensors:
        data = _tensor_bytes(tensor, seed)
        writer.add_tensor(tensor.name, data, raw_dtype=gguf.GGMLQuantizationType[tensor.ggml_type])
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()


def _tensor_bytes(tensor: TensorPlan, seed: str) -> npt.NDArray[np.uint8]:
    """Seeded random bytes shaped as the writer expects (rows of bytes); norms are ones."""
    import numpy as np  # noqa: PLC0415  dev dependency, kept out of the runtime import graph

    block, size = _BLOCKS[tensor.ggml_type]
    shape = (*reversed(tensor.dims[1:]), tensor.dims[0] // block * size)
    if len(tensor.dims) == 1 and tensor.ggml_type == "F32":
        return np.ones(tensor.dims, dtype=np.float32).view(np.uint8)
    digest = hashlib.sha256(f"{seed}/{tensor.name}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return np.frombuffer(rng.bytes(tensor.n_bytes), dtype=np.uint8).reshape(shape)


def _write_imatrix_gguf(
    path: Path, entries: Sequence[tuple[str, int]], chunks: int, dataset: str
) -> None:
    tensors = []
    for name, n_values in entries:
        tensors.append(TensorPlan(f"{name}.in_sum2", (n_values, 1), "F32"))
        tensors.append(TensorPlan(f"{name}.counts", (1, 1), "F32"))
    metadata = {
        "general.type": MetadataEntry("imatrix", "STRING"),
        "imatrix.datasets": MetadataEntry([dataset], "ARRAY", "STRING"),
        "imatrix.chunk_count": MetadataEntry(chunks, "UINT32"),
        "imatrix.chunk_size": MetadataEntry(512, "UINT32"),
    }
    _write_file(path, None, metadata, tensors, f"imatrix/{path.name}")


def _write_imatrix_legacy(
    path: Path, entries: Sequence[tuple[str, int]], chunks: int, dataset: str
) -> None:
    """Write llama.cpp's `save_imatrix_legacy` layout.

    int32 n; per entry int32 name length, name, int32 ncall, int32 nval, nval float32; then
    int32 last chunk, int32 dataset length, dataset.
    """
    out = bytearray(struct.pack("<i", len(entries)))
    for index, (name, n_values) in enumerate(entries):
        encoded = name.encode()
        out += struct.pack(f"<i{len(encoded)}sii", len(encoded), encoded, chunks, n_values)
        out += struct.pack(f"<{n_values}f", *(1.0 + (index + i) % 7 for i in range(n_values)))
    encoded_dataset = dataset.encode()
    out += struct.pack(f"<ii{len(encoded_dataset)}s", chunks, len(encoded_dataset), encoded_dataset)
    path.write_bytes(bytes(out))


def _tokenizer_metadata(n_vocab: int) -> dict[str, MetadataEntry]:
    """A SentencePiece-style vocabulary: unk, bos, eos, the 256 byte tokens, then word pieces."""
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{byte:02X}>" for byte in range(256))]
    tokens = tokens[:n_vocab] + [f"\u2581t{index}" for index in range(len(tokens), n_vocab)]
    token_types = [2, 3, 3, *(6 if token.startswith("<0x") else 1 for token in tokens[3:])]
    scores = [0.0, 0.0, 0.0, *(-float(index) for index in range(3, n_vocab))]
    return {
        "tokenizer.ggml.model": MetadataEntry("llama", "STRING"),
        "tokenizer.ggml.tokens": MetadataEntry(tokens, "ARRAY", "STRING"),
        "tokenizer.ggml.scores": MetadataEntry(scores, "ARRAY", "FLOAT32"),
        "tokenizer.ggml.token_type": MetadataEntry(token_types, "ARRAY", "INT32"),
        "tokenizer.ggml.bos_token_id": MetadataEntry(1, "UINT32"),
        "tokenizer.ggml.eos_token_id": MetadataEntry(2, "UINT32"),
        "tokenizer.ggml.unknown_token_id": MetadataEntry(0, "UINT32"),
        "tokenizer.ggml.add_bos_token": MetadataEntry(True, "BOOL"),
        "tokenizer.ggml.add_eos_token": MetadataEntry(False, "BOOL"),
        "tokenizer.chat_template": MetadataEntry(_CHAT_TEMPLATE, "STRING"),
    }


def _merge_metadata(
    base: dict[str, MetadataEntry], extra: Mapping[str, object] | None
) -> dict[str, MetadataEntry]:
    merged = dict(base)
    for key, value in (extra or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _kv_of(key, value)
    return merged


def _kv_of(key: str, value: object) -> MetadataEntry:
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError(f"extra_metadata[{key!r}]: GGUF arrays written here need an item")
        item_type = _scalar_type(key, value[0])
        return MetadataEntry(list(value), "ARRAY", item_type)
    return MetadataEntry(value, _scalar_type(key, value))


def _scalar_type(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return "INT32"
        return "UINT64" if value >= 0 else "INT64"
    if isinstance(value, float):
        return "FLOAT32"
    if isinstance(value, str):
        return "STRING"
    raise TypeError(f"extra_metadata[{key!r}]: cannot store a {type(value).__name__} in GGUF")


def _fit_row(ggml_type: str, row: int) -> str:
    """llama.cpp's type for a row length its block does not divide (Gemma's 640 → Q5_0)."""
    while row % _BLOCKS[ggml_type][0]:
        ggml_type = _ROW_FALLBACK.get(ggml_type, "F16")
    return ggml_type


def _use_more_bits(layer: int, n_layers: int) -> bool:
    """llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third."""
    eighth = n_layers // 8
    return layer < eighth or layer >= 7 * n_layers // 8 or (layer - eighth) % 3 == 2


def _split_evenly(items: Sequence[TensorPlan], parts: int) -> list[Sequence[TensorPlan]]:
    size, extra = divmod(len(items), parts)
    bounds = [index * size + min(index, extra) for index in range(parts + 1)]
    return [items[start:end] for start, end in itertools.pairwise(bounds)]


def _size_label(params: int) -> str:
    return f"{params / 1e9:.1f}B" if params >= 10**9 else f"{params / 1e6:.1f}M"


def _readme(stem: str, files: Sequence[Path]) -> str:
    rows = "\n".join(f"| {path.name} | {path.stat().st_size} |" for path in sorted(files))
    return (
        "---\n"
        f"base_model: example/{stem}\n"
        "license: apache-2.0\n"
        "library_name: gguf\n"
        "pipeline_tag: text-generation\n"
        "quantized_by: modelsync\n"
        "tags:\n"
        "- gguf\n"
        "- llama.cpp\n"
        "---\n\n"
        f"# {stem} GGUF\n\n"
        "Synthetic quantizations written by `modelsync.testing.gguf_files` for tests.\n\n"
        "| File | Bytes |\n|---|---|\n"
        f"{rows}\n"
    )


def _config_json(model: SyntheticModel) -> str:
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": model.arch,
        "hidden_size": model.n_embd,
        "intermediate_size": model.n_ff,
        "num_hidden_layers": model.block_count,
        "num_attention_heads": model.n_head,
        "num_key_value_heads": model.n_head_kv,
        "max_position_embeddings": model.context_length,
        "vocab_size": model.n_vocab,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
