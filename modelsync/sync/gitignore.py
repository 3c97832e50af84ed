"""`<target>/.gitignore` on the first sync into a target: `git add .` must not stage gigabytes.

Written (`*`, atomically) when sync first places files in a target dir (no placement record
there yet), unless a `.gitignore` is already there (never overwritten) or git tracks files in
that folder (the user keeps it in git on purpose). Git is asked only when it is installed and
the folder is in a work tree; otherwise the file is written. `settings.gitignore = false` turns
it off. The placement record, `status`, `verify` and `gc` only ever look at the paths the lock
and the record name, so this file is never taken for a stray.
"""

from __future__ import annotations

import os
from pathlib import Path

from modelsync import atomic
from modelsync.log import get_logger
from modelsync.sync.placed import RECORD_DIR

log = get_logger(__name__)

NAME = ".gitignore"
TEXT = (
    "# Written by `modelsync sync`: model files do not belong in git (the lock pins them).\n"
    "# Keep it, edit it, or set `gitignore = false` under [settings] in models.toml.\n"
    "*\n"
)
GIT_TIMEOUT_S = 10.0


def git_tracks_files_in(folder: Path, *, timeout: float = GIT_TIMEOUT_S) -> bool:
    """Whether git tracks any file under `folder`; False outside a work tree or without git."""
    import subprocess  # noqa: PLC0415 - only when a first sync writes the file

    try:
        done = subprocess.run(  # noqa: S603  a fixed command, no shell
            ["git", "-C", str(folder), "ls-files", "-z", "--", "."],  # noqa: S607  git from PATH
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and bool(done.stdout)


def ignore_first_sync(target_root: Path) -> bool:
    """Write `<target_root>/.gitignore` if this is the first sync there and nothing speaks
    against it (see the module docstring); returns whether it was written."""
    path = target_root / NAME
    if (target_root / RECORD_DIR).exists() or os.path.lexists(path):
        return False
    if git_tracks_files_in(target_root):
        log.info("sync.gitignore_skipped", target=str(target_root), reason="git tracks files there")
        return False
    try:
        atomic.write_text(path, TEXT)
    except OSError as err:  # the placements matter; this file is a courtesy
        log.warning("sync.gitignore_failed", path=str(path), error=err.strerror or str(err))
        return False
    log.info("sync.gitignore_written", path=str(path))
    return True
