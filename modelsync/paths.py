"""Default locations (the store, from `--store`, `MODELSYNC_STORE` or the platform cache dir),
and opening a file below a folder without following links."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

STORE_ENV = "MODELSYNC_STORE"
MANIFEST_NAME = "models.toml"
LOCK_NAME = "models.lock"


def default_store(environ: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """`MODELSYNC_STORE` if set, else the user cache dir (e.g. `~/.cache/modelsync`)."""
    env = os.environ if environ is None else environ
    configured = env.get(STORE_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs  # noqa: PLC0415 - not needed with MODELSYNC_STORE or for --help

    return Path(platformdirs.user_cache_dir("modelsync", appauthor=False))


def lock_path_for(manifest: Path) -> Path:
    """The lock is always the manifest's sibling `models.lock`."""
    return manifest.with_name(LOCK_NAME)


def hf_home(environ: Mapping[str, str]) -> Path:
    """Hugging Face's home, as huggingface_hub finds it: `HF_HOME`, else
    `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface` (`HOME` from `environ`)."""
    explicit = environ.get("HF_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = environ.get("XDG_CACHE_HOME")
    home = environ.get("HOME")
    cache = Path(xdg).expanduser() if xdg else (Path(home) if home else Path.home()) / ".cache"
    return cache / "huggingface"


def existing_part(path: Path) -> Path:
    """`path` resolved, or its nearest existing parent: the folder that holds it once made."""
    found = Path(os.path.realpath(path))
    while not found.exists() and found != found.parent:
        found = found.parent
    return found


def open_below(dir_fd: int, parts: Sequence[str]) -> int:
    """The fd of `parts` (folders…, file) below the folder `dir_fd`, opened read-only without
    following a symlink at any level: a folder or file swapped for a link after it was listed
    is never read through (OSError: ELOOP or ENOTDIR). Non-blocking, so a FIFO never hangs;
    the caller checks that it is a regular file."""
    *folders, leaf = parts
    opened: list[int] = []
    try:
        at = dir_fd
        for part in folders:
            at = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=at)
            opened.append(at)
        return os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=at)
    finally:
        for folder in opened:
            os.close(folder)
