"""Where the bytes of a blob may already lie on this machine, before anything is downloaded.

* Hugging Face's cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`):
  `models--<org>--<name>/blobs/<sha256>` is named by the LFS SHA-256 of the file.
* Ollama's blobs (`OLLAMA_MODELS`, else `~/.ollama/models`): `blobs/sha256-<hex>`.
* Extra paths the caller knows (e.g. files a sync placed earlier).

A candidate is only a hint: `BlobStore.adopt` hashes it before it enters the store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modelsync import paths
from modelsync.sync.model import Candidate


def _home(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME")
    return Path(home) if home else Path.home()


def hf_hub_cache(environ: Mapping[str, str]) -> Path:
    """The Hugging Face hub cache dir, by the same rules as huggingface_hub."""
    explicit = environ.get("HF_HUB_CACHE") or environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    return paths.hf_home(environ) / "hub"


def ollama_models(environ: Mapping[str, str]) -> Path:
    """Ollama's models dir (`OLLAMA_MODELS`, else `~/.ollama/models`)."""
    explicit = environ.get("OLLAMA_MODELS")
    if explicit:
        return Path(explicit).expanduser()
    return _home(environ) / ".ollama" / "models"


@dataclass(frozen=True, slots=True)
class AdoptionSources:
    """The blob directories found once per run; `candidates(sha)` then costs a stat per dir."""

    hf_blob_dirs: tuple[Path, ...] = ()
    ollama_blobs: Path | None = None
    extra: Mapping[str, Sequence[Path]] = field(default_factory=dict)

    @classmethod
    def scan(
        cls, environ: Mapping[str, str], extra: Mapping[str, Sequence[Path]] | None = None
    ) -> AdoptionSources:
        """List the caches' blob dirs (one directory read each)."""
        hub = hf_hub_cache(environ)
        dirs: list[Path] = []
        try:
            with os.scandir(hub) as entries:
                dirs.extend(
                    Path(e.path) / "blobs"
                    for e in entries
                    if e.name.startswith("models--") and e.is_dir()
                )
        except OSError:
            pass
        ollama = ollama_models(environ) / "blobs"
        return cls(
            hf_blob_dirs=tuple(sorted(dirs)),
            ollama_blobs=ollama if ollama.is_dir() else None,
            extra=dict(extra or {}),
        )

    def candidates(self, sha256: str) -> list[Candidate]:
        """Existing files that claim to be `sha256`, the caller's own first."""
        found = [Candidate(p, "placed") for p in self.extra.get(sha256, ()) if p.is_file()]
        for blobs in self.hf_blob_dirs:
            path = blobs / sha256
            if path.is_file():
                found.append(Candidate(path, "huggingface"))
        if self.ollama_blobs is not None:
            path = self.ollama_blobs / f"sha256-{sha256}"
            if path.is_file():
                found.append(Candidate(path, "ollama"))
        return found
