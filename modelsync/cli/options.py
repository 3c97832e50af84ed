"""Global options, accepted before or after the command name (`modelsync --json sync` and
`modelsync sync --json` mean the same)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from modelsync import paths


@dataclass(frozen=True, slots=True)
class GlobalOptions:
    """What every command receives besides its own flags."""

    manifest_flag: Path | None
    """`-m` as given; None: find models.toml from the current folder up."""
    store: Path
    json: bool
    verbosity: int
    offline: bool
    progress: bool
    wait: bool
    wait_timeout: float | None
    """`--wait-timeout S`: wait at most S seconds for a busy lock, then exit 6."""

    @property
    def manifest(self) -> Path:
        """The manifest to work on (ManifestError naming the folders searched if none)."""
        from modelsync.manifest.load import manifest_path  # noqa: PLC0415  tomlkit, pydantic

        return manifest_path(self.manifest_flag)

    @property
    def new_manifest(self) -> Path:
        """Where `init` writes: `-m` (a folder means its models.toml), else the current folder,
        never a parent's."""
        from modelsync.manifest.load import manifest_path  # noqa: PLC0415  tomlkit, pydantic

        return manifest_path(self.manifest_flag or Path())

    @property
    def lock(self) -> Path:
        """`models.lock` beside the manifest."""
        return paths.lock_path_for(self.manifest)


def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Add the global flags; subparsers suppress defaults so they never override the root's."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument(
        "-m",
        "--manifest",
        type=Path,
        default=default(None),
        metavar="PATH",
        help="the models.toml to use, or its folder (default: the nearest models.toml in this "
        "folder or a parent; the lock is its sibling models.lock)",
    )
    group.add_argument(
        "--store",
        type=Path,
        default=default(None),
        metavar="PATH",
        help=f"blob store (default: ${paths.STORE_ENV}, else the platform cache dir)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="one JSON object per line on stdout: events and the final report",
    )
    group.add_argument(
        "-v", "--verbose", action="count", default=default(0), help="more detail; tracebacks"
    )
    group.add_argument(
        "-q", "--quiet", action="count", default=default(0), help="warnings and errors only"
    )
    group.add_argument(
        "--offline",
        action="store_true",
        default=default(False),
        help="no network at all (also from HF_HUB_OFFLINE=1)",
    )
    group.add_argument(
        "--no-progress",
        action="store_true",
        default=default(False),
        help="no progress bars (they appear only on a TTY anyway)",
    )
    group.add_argument(
        "--no-wait",
        action="store_true",
        default=default(False),
        help="exit 6 instead of waiting when another run holds the store or project lock",
    )
    group.add_argument(
        "--wait-timeout",
        type=seconds,
        default=default(None),
        metavar="SECONDS",
        help="wait at most this long for another run's lock, then exit 6 (default: no limit)",
    )


def seconds(text: str) -> float:
    """A non-negative number of seconds (argparse turns the ValueError into a usage error)."""
    value = float(text)
    if not value >= 0:  # also refuses nan
        raise ValueError(text)
    return value


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1 (`--jobs`, `--connections`)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def global_options(ns: argparse.Namespace, environ: dict[str, str] | None = None) -> GlobalOptions:
    """Collect the parsed global flags, applying environment fallbacks."""
    env = dict(os.environ) if environ is None else environ
    store = ns.store if ns.store is not None else paths.default_store(env)
    return GlobalOptions(
        manifest_flag=ns.manifest,
        store=store,
        json=ns.json,
        verbosity=ns.verbose - ns.quiet,
        offline=ns.offline or _truthy(env.get("HF_HUB_OFFLINE")),
        progress=not ns.no_progress,
        wait=not ns.no_wait,
        wait_timeout=ns.wait_timeout,
    )
