"""The one error tree of modelsync, and the exit code of each branch.

Only `modelsync.cli.main` turns these into exit codes; everything below raises.

    ModelsyncError (1: internal)
    ├── UsageError (2)                 bad flags, bad input, a command not built yet
    │   ├── ManifestError (2)          models.toml: file, line, key, fix
    │   ├── LockfileError (2)          models.lock: file, line, fix
    │   ├── NoVariantFitsError (2)          nothing in the repo fits the profile
    │   └── NotImplementedYetError (2)      the command exists but is not built; never pretend
    ├── StaleError (3)                 lock stale versus manifest, drift on disk, upstream moved
    ├── IntegrityError (4)             size or SHA-256 mismatch that survived one re-fetch
    ├── RemoteError (5)                network, 5xx after retries, 401/403, 404 of a locked commit
    │   └── AuthError (5)              missing or refused credentials; names the env var to set
    └── BusyError (6)                  another run holds the store or project lock (--no-wait)

Every message is one line: what (file, field, model, path, URL without credentials), expected
versus found, and the command or edit that fixes it.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes: the contract of design.md section 2."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    STALE = 3
    INTEGRITY = 4
    REMOTE = 5
    BUSY = 6


class ModelsyncError(Exception):
    """Base of every error modelsync raises on purpose; a bare one is an internal error."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and its fix, on one line, as printed by the CLI."""
        text = " ".join(self.message.split())
        if self.hint:
            text = f"{text}; {' '.join(self.hint.split())}"
        return text


class UsageError(ModelsyncError):
    """Bad flags or bad input: the user must change the command or a file."""

    exit_code = ExitCode.USAGE


class ManifestError(UsageError):
    """models.toml is malformed or says something impossible."""


class LockfileError(UsageError):
    """models.lock is missing where required, malformed or from an unknown version."""


class NoVariantFitsError(UsageError):
    """No candidate of a model fits the hardware profile."""


class NotImplementedYetError(UsageError):
    """The command is part of the surface but not built yet; it says so instead of pretending."""


class StaleError(ModelsyncError):
    """The lock is stale versus the manifest, the disk drifted, or upstream moved."""

    exit_code = ExitCode.STALE


class IntegrityError(ModelsyncError):
    """Bytes whose size or SHA-256 differ from what the lock pins."""

    exit_code = ExitCode.INTEGRITY


class RemoteError(ModelsyncError):
    """A registry or download host is unreachable or refused; safe for cron to retry later."""

    exit_code = ExitCode.REMOTE


class AuthError(RemoteError):
    """Credentials are missing or refused."""


class BusyError(ModelsyncError):
    """Another run holds the store or project lock and waiting was not allowed."""

    exit_code = ExitCode.BUSY
