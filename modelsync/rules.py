"""The shared rules of what is safe and well-formed (pure, imports nothing of modelsync).

One copy of each rule, used by the manifest, the lock, the registry client and the server:
names that become folders, paths that become files, digest and commit forms, Hub endpoints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

DEFAULT_HUB_ENDPOINT = "https://huggingface.co"
HF_ENDPOINT_ENV = "HF_ENDPOINT"

MAX_PATH_LENGTH = 1024
"""Longer paths are refused everywhere (the server's limit; no real repository comes close)."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_REPO_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_PREFIXED = re.compile(r"sha256:[0-9a-f]{64}")
_DRIVE = re.compile(r"[A-Za-z]:")


def is_safe_name(name: str) -> bool:
    """A model, registry or profile name, one folder under the target dir: letters, digits,
    `.`, `_`, `-`, starting with a letter or digit, at most 96 characters."""
    return _NAME.fullmatch(name) is not None


def is_repo_part(part: str) -> bool:
    """A namespace or repository name as the Hub allows it: letters, digits, `.`, `_`, `-`, at
    most 96, starting and ending with a letter or digit, no `..` and no `--` (the Hub cache's
    separator)."""
    return _REPO_PART.fullmatch(part) is not None and ".." not in part and "--" not in part


def is_safe_path(path: str) -> bool:
    """A relative POSIX path inside a repository: not empty, not absolute, no drive letter, no
    backslash, no control character (NUL included), no empty, `.` or `..` segment."""
    return (
        0 < len(path) <= MAX_PATH_LENGTH
        and not path.startswith("/")
        and "\\" not in path
        and not any(ord(c) < 0x20 or c == "\x7f" for c in path)
        and _DRIVE.match(path) is None
        and all(part not in ("", ".", "..") for part in path.split("/"))
    )


def is_sha256(value: str) -> bool:
    """64 lowercase hex digits."""
    return _SHA256.fullmatch(value) is not None


def is_commit_id(value: str) -> bool:
    """A full 40-hex (lowercase) git commit id."""
    return _COMMIT.fullmatch(value) is not None


def is_prefixed_digest(value: str) -> bool:
    """`sha256:` and 64 lowercase hex digits (manifest digests, inputs, fingerprints)."""
    return _PREFIXED.fullmatch(value) is not None


def hub_endpoint(declared: str | None, environ: Mapping[str, str]) -> str:
    """A Hub-compatible registry's endpoint: the declared one, else `$HF_ENDPOINT`, else the Hub;
    without a trailing slash."""
    return (declared or environ.get(HF_ENDPOINT_ENV) or DEFAULT_HUB_ENDPOINT).rstrip("/")


def endpoint_key(url: str) -> str:
    """`scheme://host:port/path` with the host lower-cased, the default port explicit and no
    trailing slash: two spellings of one endpoint give one key."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}{parts.path.rstrip('/')}"
