"""How Ollama names and describes a model (pure): its manifest JSON, the media types of its
layers, and the file each layer becomes in a lock.

An Ollama model is a Docker/OCI image manifest (schema 2,
`application/vnd.docker.distribution.manifest.v2+json`): a config blob (JSON: `model_format`,
`model_family`, `file_type`, …) and layers, each a `sha256:` digest, a size and a media type
(`application/vnd.ollama.image.model` is the GGUF file). Blobs live at
`<models>/blobs/sha256-<hex>`, manifests at `<models>/manifests/<host>/<ns>/<model>/<tag>`
(ollama `manifest/paths.go`, `types/model/name.go`). A manifest's digest is the SHA-256 of its
bytes, as served.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pydantic

from modelsync.rules import is_prefixed_digest

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
MODEL = "application/vnd.ollama.image.model"
PROJECTOR = "application/vnd.ollama.image.projector"
TENSOR = "application/vnd.ollama.image.tensor"
MAX_MANIFEST_BYTES = 4 << 20
"""Real manifests are a few hundred bytes; anything this large is not one."""

# Media type → the file name it is locked as (`{stem}` is `<model>-<tag>`); a second layer of
# the same type gets `-2`, `-3`, … before the extension, in manifest order.
_NAMES = {
    MODEL: "{stem}.gguf",
    PROJECTOR: "mmproj-{stem}.gguf",
    "application/vnd.ollama.image.adapter": "adapter-{stem}.gguf",
    "application/vnd.ollama.image.template": "template",
    "application/vnd.ollama.image.system": "system",
    "application/vnd.ollama.image.params": "params",
    "application/vnd.ollama.image.license": "license",
    "application/vnd.ollama.image.messages": "messages",
    CONFIG_MEDIA_TYPE: "config.json",
}


class Layer(pydantic.BaseModel):
    """One blob of a manifest: media type, `sha256:<hex>` digest, size."""

    model_config = pydantic.ConfigDict(populate_by_name=True)

    media_type: str = pydantic.Field(alias="mediaType")
    digest: str
    size: int = pydantic.Field(ge=0)

    @pydantic.field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not is_prefixed_digest(value):
            raise ValueError('expected "sha256:" and 64 lowercase hex digits')
        return value

    @property
    def sha256(self) -> str:
        """The digest's 64 hex digits."""
        return self.digest.removeprefix("sha256:")


class OllamaManifest(pydantic.BaseModel):
    """A manifest as the registry serves it (and as `ollama pull` writes it to disk)."""

    model_config = pydantic.ConfigDict(populate_by_name=True)

    schema_version: int = pydantic.Field(alias="schemaVersion")
    media_type: str = pydantic.Field(default=MANIFEST_MEDIA_TYPE, alias="mediaType")
    config: Layer
    layers: list[Layer]


@dataclass(frozen=True, slots=True)
class LayerFile:
    """A layer as a locked file: its path in the model folder, size, SHA-256, media type."""

    path: str
    size: int
    sha256: str
    media_type: str


@dataclass(frozen=True, slots=True)
class Layout:
    """The files of a manifest, and the media types nobody here knows (left out)."""

    files: tuple[LayerFile, ...]
    unknown: tuple[str, ...] = ()


def model_file(repo: str, tag: str) -> str:
    """The model layer's file name: `<model>-<tag>.gguf` (what llama.cpp users expect)."""
    return _NAMES[MODEL].format(stem=f"{repo.rsplit('/', 1)[-1]}-{tag}")


def layout(repo: str, tag: str, manifest: OllamaManifest) -> Layout:
    """Every layer and the config as files, in manifest order; raises ValueError (the reason)
    for a model that is not one GGUF file."""
    stem = f"{repo.rsplit('/', 1)[-1]}-{tag}"
    types = [layer.media_type for layer in manifest.layers]
    if TENSOR in types:
        raise ValueError("it is a safetensors model (tensor layers), not a GGUF file")
    if types.count(MODEL) != 1:
        raise ValueError(f"it has {types.count(MODEL)} model layers, expected one GGUF file")
    files: list[LayerFile] = []
    unknown: list[str] = []
    seen: dict[str, int] = {}
    for layer in (*manifest.layers, manifest.config):
        pattern = _NAMES.get(layer.media_type)
        if pattern is None:
            unknown.append(layer.media_type)
            continue
        count = seen[layer.media_type] = seen.get(layer.media_type, 0) + 1
        name = pattern.format(stem=stem)
        if count > 1:
            base, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
            name = f"{base}-{count}{dot}{ext}"
        files.append(LayerFile(name, layer.size, layer.sha256, layer.media_type))
    return Layout(tuple(files), tuple(sorted(set(unknown))))


def media_type_of(path: str, model_path: str) -> str | None:
    """The media type a locked file is handed to Ollama as: `model_path` is the model layer;
    `mmproj*.gguf` a projector; the names `layout` gives the rest; None: not handed over."""
    if path == model_path:
        return MODEL
    name = path.rsplit("/", 1)[-1]
    if name.startswith("mmproj") and name.endswith(".gguf"):
        return PROJECTOR
    for media_type, pattern in _NAMES.items():
        if media_type in (MODEL, PROJECTOR, CONFIG_MEDIA_TYPE) or "{stem}" in pattern:
            continue
        base = pattern
        if name == base or (name.startswith(f"{base}-") and name[len(base) + 1 :].isdigit()):
            return media_type
    return None


def config_blob(family: str | None, file_type: str | None) -> bytes:
    """The config blob of an exported model: what `ollama list`/`show` read (format, family,
    quantization), as compact JSON with sorted keys (the same inputs give the same digest)."""
    config: dict[str, object] = {"model_format": "gguf", "rootfs": {"type": "layers"}}
    if family:
        config["model_family"] = family
        config["model_families"] = [family]
    if file_type:
        config["file_type"] = file_type
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def manifest_bytes(config: Layer, layers: Sequence[Layer]) -> bytes:
    """A schema-2 manifest as Ollama writes one (`manifest.WriteManifest`)."""
    document = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config.model_dump(by_alias=True),
        "layers": [layer.model_dump(by_alias=True) for layer in layers],
    }
    return json.dumps(document, separators=(",", ":")).encode() + b"\n"
