"""GGUF file names → candidates: quantization labels, shard groups, files to leave out.

Rules from notes/hardware-and-quants.md section 1 (llama.cpp `common/download.cpp`,
huggingface.js `parseGGUFQuantLabel`): upper-case the name, find every known label, keep the
last; `UD-` and `i1-` prefixes are part of the label; a folder name is a label too. Shards
`<prefix>-00001-of-00003.gguf` form one candidate when the group is complete.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from modelsync.resolve.model import Catalog, RepoFile, Skipped, Variant
from modelsync.resolve.quants import ARM_REPACKS, BASE_LABELS, rank

_LABELS = sorted(BASE_LABELS | ARM_REPACKS, key=lambda s: (-len(s), s))
_LABEL = re.compile(
    r"(?<![A-Z0-9])(?:(UD)-|(I1)-)?(" + "|".join(map(re.escape, _LABELS)) + r")(?![A-Z0-9])"
)
_SHARD = re.compile(r"^(.+)-(\d{5})-of-(\d{5})$", re.IGNORECASE)
_DRAFTER_PREFIXES = ("mtp-", "eagle3-", "dflash-", "dspark-")


def parse_label(name: str) -> str | None:
    """The quantization label of a file or folder name (`Qwen3-4B-UD-Q2_K_XL` → `UD-Q2_K_XL`)."""
    matches = list(_LABEL.finditer(name.upper()))
    if not matches:
        return None
    last = matches[-1]
    prefix = "UD-" if last.group(1) else "i1-" if last.group(2) else ""
    return prefix + last.group(3)


def label_of_path(path: str) -> str | None:
    """The label of the file name, else of the nearest folder that has one."""
    parts = path.split("/")
    name = parts[-1]
    stem = name[: -len(".gguf")] if name.lower().endswith(".gguf") else name
    shard = _SHARD.match(stem)
    label = parse_label(shard.group(1) if shard else stem)
    if label is not None:
        return label
    for folder in reversed(parts[:-1]):
        label = parse_label(folder)
        if label is not None:
            return label
    return None


def shard_of(path: str) -> tuple[str, int, int] | None:
    """`(prefix path, index, total)` for `…-00002-of-00003.gguf`, else None."""
    if not path.lower().endswith(".gguf"):
        return None
    match = _SHARD.match(path[: -len(".gguf")])
    if match is None:
        return None
    return match.group(1), int(match.group(2)), int(match.group(3))


def skip_reason(path: str) -> str | None:
    """Why a file is no candidate (None if it is): not GGUF, mmproj, imatrix, drafter, repack."""
    lower = path.lower()
    name = lower.rsplit("/", 1)[-1]
    if not name.endswith(".gguf"):
        return "not a GGUF file"
    if "mmproj" in name:
        return "vision projector (mmproj)"
    if "imatrix" in name:
        return "importance matrix"
    if name.startswith(_DRAFTER_PREFIXES) or "/mtp/" in f"/{lower}":
        return "draft model"
    label = label_of_path(path)
    if label is not None and label in ARM_REPACKS:
        return f"{label} is an ARM repack llama.cpp no longer loads"
    return None


def catalog(files: Iterable[RepoFile]) -> Catalog:
    """Group a listing into candidates, best quality first; other `.gguf` files are `skipped`."""
    singles: list[Variant] = []
    groups: dict[tuple[str, int], dict[int, RepoFile]] = defaultdict(dict)
    skipped: list[Skipped] = []
    for file in sorted(files, key=lambda f: f.path):
        reason = skip_reason(file.path)
        if reason is not None:
            if reason != "not a GGUF file":
                skipped.append(Skipped(file.path, reason))
            continue
        shard = shard_of(file.path)
        if shard is None:
            singles.append(Variant(label_of_path(file.path), (file,)))
        else:
            prefix, index, total = shard
            groups[(prefix, total)][index] = file
    variants = list(singles)
    for (_prefix, total), shards in sorted(groups.items()):
        if sorted(shards) != list(range(1, total + 1)):
            missing = sorted(set(range(1, total + 1)) - set(shards))
            skipped.extend(
                Skipped(f.path, f"incomplete split: shard(s) {missing} of {total} missing")
                for f in shards.values()
            )
            continue
        ordered = tuple(shards[i] for i in range(1, total + 1))
        variants.append(Variant(label_of_path(ordered[0].path), ordered))
    variants.sort(key=_quality_order)
    return Catalog(tuple(variants), tuple(sorted(skipped, key=lambda s: s.path)))


def _quality_order(variant: Variant) -> tuple[float, int, str]:
    value = rank(variant.label) if variant.label else None
    return (-(value if value is not None else -1.0), variant.size, variant.first)


def pinned_file(files: Iterable[RepoFile], path: str) -> Variant | None:
    """The candidate a pinned path names: its whole shard group, or the one file as it is."""
    listing = {f.path: f for f in files}
    if path not in listing:
        return None
    shard = shard_of(path)
    if shard is not None:
        prefix, _, total = shard
        group = [listing.get(f"{prefix}-{i:05d}-of-{total:05d}.gguf") for i in range(1, total + 1)]
        if all(group):
            return Variant(label_of_path(path), tuple(f for f in group if f is not None))
    if skip_reason(path) is None:
        return Variant(label_of_path(path), (listing[path],))
    return Variant(label_of_path(path), (listing[path],), kind="file")
