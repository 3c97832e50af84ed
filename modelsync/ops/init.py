"""`modelsync init`: write a commented models.toml to start from."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from modelsync import atomic
from modelsync.errors import UsageError


@dataclass(frozen=True, slots=True)
class InitReport:
    """What `init` wrote."""

    path: Path
    replaced: bool


def template_text() -> str:
    """The commented starting manifest shipped with the package (also models.toml.example)."""
    return resources.files("modelsync.templates").joinpath("models.toml").read_text("utf-8")


def init_manifest(path: Path, *, force: bool) -> InitReport:
    """Write the template to `path`; refuse to replace an existing file unless `force`."""
    exists = path.exists()
    if exists and not force:
        raise UsageError(
            f"{path}: already exists; nothing was written",
            hint="pass --force to replace it, or edit it by hand",
        )
    if path.is_dir():
        raise UsageError(f"{path}: is a directory", hint="pass -m PATH/models.toml")
    atomic.write_text(path, template_text())
    return InitReport(path=path, replaced=exists)
