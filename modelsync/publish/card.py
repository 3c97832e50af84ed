"""The model card: huggingface_hub's `ModelCard` with YAML metadata, a table of the files (quant,
size, sha256, bench results from `models.bench.json`) and how to get them with modelsync.

Deterministic: the same inputs give the same bytes (no dates), so the card is part of the
upload plan like any file and changes only when its content does. huggingface_hub is imported
here, lazily by `ops.publish`, never at CLI start-up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelsync.errors import UsageError
from modelsync.rules import is_sha256
from modelsync.units import human_bytes

CARD_PATH = "README.md"
BENCH_NAME = "models.bench.json"


@dataclass(frozen=True, slots=True)
class BenchLine:
    """One `models.bench.json` result for a file (BENCH_SCHEMA: the fields the card shows)."""

    pp_mean: float
    pp_std: float
    tg_mean: float
    tg_std: float
    hardware: str
    llama_cpp: str

    def text(self) -> str:
        """`pp 450.0 ± 3.0 t/s, tg 60.0 ± 1.0 t/s (hardware, llama.cpp 0.3.x)`."""
        return (
            f"pp {self.pp_mean:.1f} ± {self.pp_std:.1f} t/s, tg {self.tg_mean:.1f} ± "
            f"{self.tg_std:.1f} t/s ({self.hardware}, llama.cpp {self.llama_cpp})"
        )


@dataclass(frozen=True, slots=True)
class CardFile:
    """A row of the card's file table."""

    path: str
    size: int
    sha256: str
    quant: str | None
    bench: tuple[BenchLine, ...] = ()


@dataclass(frozen=True, slots=True)
class CardInput:
    """Everything the card says."""

    repo: str
    model: str
    """The name the snippet gives the model in `[models.NAME]`."""
    registry: str
    endpoint: str | None
    """The registry's declared endpoint (None: the Hub, or `$HF_ENDPOINT`)."""
    files: tuple[CardFile, ...]
    license: str | None = None
    base_model: str | None = None
    tags: tuple[str, ...] = ()
    quantized_by: str | None = None
    description: str | None = None
    upstream: tuple[str, str] | None = None
    """(repo, commit) a re-hosted locked model came from."""


def parse_bench(text: str, name: str) -> dict[str, tuple[BenchLine, ...]]:
    """Bench results by file sha256; unknown keys and incomplete results are ignored, a file
    that is not the schema's JSON is a usage error naming `name`."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise UsageError(
            f"{name}: not valid JSON ({err})", hint="rerun `modelsync bench`, or delete the file"
        ) from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise UsageError(
            f'{name}: expected {{"version": 1, "results": [...]}}',
            hint="rerun `modelsync bench`, or delete the file",
        )
    found: dict[str, list[BenchLine]] = {}
    for item in results:
        line = _bench_line(item)
        if line is not None:
            found.setdefault(item["sha256"], []).append(line)
    return {sha: tuple(lines) for sha, lines in found.items()}


def _bench_line(item: object) -> BenchLine | None:
    if not isinstance(item, dict) or not is_sha256(str(item.get("sha256"))):
        return None
    pp, tg = item.get("pp_tps"), item.get("tg_tps")
    try:
        assert isinstance(pp, Mapping)
        assert isinstance(tg, Mapping)
        return BenchLine(
            float(pp["mean"]),
            float(pp["std"]),
            float(tg["mean"]),
            float(tg["std"]),
            str(item["hardware"]),
            str(item["llama_cpp"]),
        )
    except (AssertionError, KeyError, TypeError, ValueError):
        return None


def render_card(card: CardInput) -> str:
    """The README.md text: YAML metadata, then the body."""
    from huggingface_hub import ModelCard, ModelCardData  # noqa: PLC0415  only when publishing

    gguf = any(f.path.lower().endswith(".gguf") for f in card.files)
    tags = sorted({*card.tags, "modelsync", *(["gguf"] if gguf else [])})
    extra: dict[str, Any] = {"quantized_by": card.quantized_by} if card.quantized_by else {}
    data = ModelCardData(
        license=card.license,
        base_model=card.base_model,
        library_name="gguf" if gguf else None,
        tags=tags,
        **extra,
    )
    content = f"---\n{data.to_yaml()}\n---\n\n{_body(card)}"
    return str(ModelCard(content))


def _body(card: CardInput) -> str:
    lines = [f"# {card.repo.split('/')[-1]}", ""]
    if card.description:
        lines += [card.description.strip(), ""]
    if card.upstream:
        repo, commit = card.upstream
        lines += [f"Re-hosted from `{repo}` at commit `{commit}`.", ""]
    lines += [
        "## Files",
        "",
        "| file | quant | size | sha256 | bench |",
        "|---|---|---|---|---|",
    ]
    for f in sorted(card.files, key=lambda f: f.path):
        bench = "<br>".join(b.text() for b in f.bench) or "-"
        lines.append(
            f"| `{f.path}` | {f.quant or '-'} | {human_bytes(f.size)} ({f.size} B) "
            f"| `{f.sha256}` | {bench} |"
        )
    lines += ["", "## Get it with modelsync", "", "```toml", *_snippet(card), "```", ""]
    lines += ["Then `modelsync lock && modelsync sync`.", ""]
    return "\n".join(lines)


def _snippet(card: CardInput) -> list[str]:
    lines = []
    scheme = "hf"
    if card.endpoint is not None:
        scheme = card.registry
        lines += [
            f"[registries.{card.registry}]",
            'type = "huggingface"',
            f"endpoint = {json.dumps(card.endpoint)}",
            "",
        ]
    return [*lines, f"[models.{card.model}]", f'source = "{scheme}://{card.repo}"']
