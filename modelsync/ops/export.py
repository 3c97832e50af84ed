"""`modelsync export --ollama NAME`: hand a locked GGUF model to a local Ollama, bytes not copied.

Ollama's models folder (`OLLAMA_MODELS`, else `~/.ollama/models`) gets the model's blobs as
`blobs/sha256-<hex>`, hardlinked from the store (a copy where the folder is on another
filesystem), a config blob, and a manifest at `manifests/registry.ollama.ai/<ns>/<model>/<tag>`:
schema 2, `application/vnd.docker.distribution.manifest.v2+json`, the format `ollama pull` and
`ollama create` write (ollama `manifest/manifest.go`, read at commit fb30760), so
`ollama list` shows it as NAME. The plan is made first (pure), then applied; every file is
written under a temporary name and renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelsync import atomic
from modelsync.errors import IntegrityError, UsageError
from modelsync.gguf.summary import read_header
from modelsync.lockfile.model import LockedModel
from modelsync.log import get_logger
from modelsync.ops import project as proj
from modelsync.registry.ollama_format import (
    CONFIG_MEDIA_TYPE,
    MODEL,
    Layer,
    config_blob,
    manifest_bytes,
    media_type_of,
    model_file,
)
from modelsync.rules import OLLAMA_NAMESPACE, OLLAMA_TAG, is_ollama_repo, is_ollama_tag
from modelsync.store.blobs import BlobStore
from modelsync.store.layout import StoreLayout
from modelsync.store.state import open_state
from modelsync.sync.adopt import ollama_models

log = get_logger(__name__)

OLLAMA_HOST = "registry.ollama.ai"
"""The host folder of names without one: `ollama list` shows them without it."""


@dataclass(frozen=True, slots=True)
class ExportRequest(proj.ProjectRequest):
    """What to export (`models`: at most one name) and as which Ollama name."""

    ollama: str = ""


@dataclass(frozen=True, slots=True)
class BlobCopy:
    """One blob to put into Ollama's folder: from the store (`source`) or as bytes (`data`)."""

    sha256: str
    size: int
    media_type: str
    source: Path | None = None
    data: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """Blobs and the manifest that make `name` an Ollama model."""

    model: str
    name: str
    """`ns/model:tag` as Ollama shows it (`library/` left out)."""
    blobs: tuple[BlobCopy, ...]
    manifest_path: Path
    manifest: bytes


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What `export --ollama` did: blobs linked, copied, already there; the manifest written."""

    plan: ExportPlan
    linked: int
    copied: int
    present: int
    written: int


def ollama_name(text: str) -> tuple[str, str]:
    """`[ns/]model[:tag]` → (`ns/model`, tag), with Ollama's defaults; UsageError if invalid."""
    repo, _, tag = text.partition(":")
    repo = repo if "/" in repo else f"{OLLAMA_NAMESPACE}/{repo}"
    tag = tag or OLLAMA_TAG
    if not is_ollama_repo(repo) or not is_ollama_tag(tag):
        raise UsageError(
            f"--ollama {text!r}: not an Ollama model name",
            hint='use letters, digits, "_", "-" and ".", like "gemma" or "team/gemma:1b"',
        )
    return repo, tag


def model_path_of(entry: LockedModel, kind: str) -> str:
    """The locked file that is the model layer: an Ollama tag's `<model>-<tag>.gguf`, else the
    one GGUF file that is not a projector; UsageError when there is not exactly one."""
    if kind == "ollama" and entry.repo is not None and entry.revision is not None:
        return model_file(entry.repo, entry.revision)
    ggufs = [
        f.path
        for f in entry.files
        if f.path.lower().endswith(".gguf") and media_type_of(f.path, "") is None
    ]
    if len(ggufs) != 1:
        raise UsageError(
            f"models.{entry.name}: Ollama takes one GGUF model file, the lock has "
            f"{len(ggufs)} ({', '.join(ggufs) or 'none'})",
            hint="export a model locked as a single GGUF file (a split one must be merged)",
        )
    return ggufs[0]


def plan_export(
    entry: LockedModel,
    kind: str,
    name: str,
    *,
    models_dir: Path,
    blob_paths: Mapping[str, Path],
    config: bytes,
) -> ExportPlan:
    """The blobs and manifest for one locked model (`kind`: its registry's type); pure."""
    repo, tag = ollama_name(name)
    model_path = model_path_of(entry, kind)
    layers: list[BlobCopy] = []
    for file in entry.files:
        media_type = media_type_of(file.path, model_path)
        if media_type is None:
            continue
        layers.append(BlobCopy(file.sha256, file.size, media_type, source=blob_paths[file.sha256]))
    layers.sort(key=lambda b: (b.media_type != MODEL, b.media_type, b.sha256))
    digest = hashlib.sha256(config).hexdigest()
    config_copy = BlobCopy(digest, len(config), CONFIG_MEDIA_TYPE, data=config)
    document = manifest_bytes(_layer(config_copy), [_layer(b) for b in layers])
    shown = f"{repo.removeprefix(OLLAMA_NAMESPACE + '/')}:{tag}"
    return ExportPlan(
        model=entry.name,
        name=shown,
        blobs=(*layers, config_copy),
        manifest_path=models_dir / "manifests" / OLLAMA_HOST / repo / tag,
        manifest=document,
    )


def _layer(blob: BlobCopy) -> Layer:
    return Layer(mediaType=blob.media_type, digest=f"sha256:{blob.sha256}", size=blob.size)


def export_ollama(request: ExportRequest) -> ExportReport:
    """Plan from the lock and the store, then write blobs and manifest into Ollama's folder."""
    loaded = proj.load(request.manifest, request.environ)
    if loaded.lock is None:
        raise proj.no_lock_error(loaded.lock_path)
    ctx = proj.context_for(loaded, loaded.lock, request)
    if len(ctx.models) != 1:
        names = ", ".join(m.name for m in ctx.models)
        raise UsageError(
            f"export --ollama exports one model; the lock has {names}",
            hint="name it with --model NAME",
        )
    (entry,) = ctx.models
    layout = StoreLayout(request.store)
    with open_state(layout.state_path) as state:
        blobs = BlobStore(layout, state)
        for file in entry.files:
            check_blob(blobs, entry.name, file.path, file.sha256, file.size)
        paths = {f.sha256: blobs.path(f.sha256) for f in entry.files}
    kind = ctx.sources[entry.registry].kind
    model_path = model_path_of(entry, kind)
    header = read_header(paths[next(f.sha256 for f in entry.files if f.path == model_path)])
    family = header.architecture if header is not None else None
    quant = entry.quant or (header.quant if header is not None else None)
    models_dir = ollama_models(request.environ)
    plan = plan_export(
        entry,
        kind,
        request.ollama,
        models_dir=models_dir,
        blob_paths=paths,
        config=config_blob(family, quant),
    )
    return apply_export(plan, models_dir)


def check_blob(blobs: BlobStore, model: str, path: str, sha256: str, size: int) -> None:
    """UsageError when the store lacks the blob, IntegrityError when it does not match."""
    st = blobs.stat(sha256)
    if st is None:
        raise UsageError(
            f"models.{model}: {path} is not in the store ({blobs.path(sha256)})",
            hint="run `modelsync sync` first",
        )
    if st.st_size != size or (not blobs.trusted(sha256, st) and blobs.hash(sha256, st) != sha256):
        raise IntegrityError(
            f"models.{model}: the store's blob of {path} ({blobs.path(sha256)}) does not match "
            f"the lock (sha256 {sha256}, {size} bytes)",
            hint="run `modelsync sync --repair`",
        )


def apply_export(plan: ExportPlan, models_dir: Path) -> ExportReport:
    """Put each blob in place (hardlink, else copy; kept where the same size already is),
    then the manifest, each under a temporary name renamed into place."""
    blob_dir = models_dir / "blobs"
    blob_dir.mkdir(parents=True, exist_ok=True)
    linked = copied = present = written = 0
    for blob in plan.blobs:
        target = blob_dir / f"sha256-{blob.sha256}"
        with contextlib.suppress(FileNotFoundError):
            if target.stat().st_size == blob.size:
                present += 1
                continue
        if blob.data is not None:
            atomic.write_bytes(target, blob.data)
            written += 1
        elif blob.source is not None and atomic.hardlink(blob.source, target):
            linked += 1
        elif blob.source is not None:
            atomic.copy_file(blob.source, target)
            copied += 1
    atomic.write_bytes(plan.manifest_path, plan.manifest)
    log.info(
        "export.ollama",
        model=plan.model,
        name=plan.name,
        manifest=str(plan.manifest_path),
        linked=linked,
        copied=copied,
        present=present,
    )
    return ExportReport(plan, linked, copied, present, written)
