"""ServerConfig: what `modelsync serve` and the test fixtures choose about a server."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelsync.server.auth import TokenInfo
from modelsync.server.source import Repos


@dataclass(frozen=True)
class ServerConfig:
    """Where repositories live, where to listen, who may do what.

    `root` holds `<namespace>/<name>/...` folders (imported at start) and the server state in
    `<root>/.hub/` (never served); `source` instead serves repositories from elsewhere, read
    only (`serve --lock`: `mirror.LockedRepos`). With `cdn_host` (a different host name, e.g.
    `127.0.0.2`), a second site serves LFS bytes through signed, expiring URLs: resolve answers
    LFS files with a 302 there, and LFS upload URLs point there too.
    """

    root: Path | None = None
    source: Repos | None = None
    """Read-only repositories served instead of `root`'s folders (exactly one of the two)."""
    require_token: bool = False
    """Every request needs one of `tokens` (a private mirror); else anonymous callers read
    public repositories."""
    host: str = "127.0.0.1"
    port: int = 0
    cdn_host: str | None = None
    cdn_port: int = 0
    tokens: Mapping[str, TokenInfo] = field(default_factory=dict)
    public_url: str | None = None
    """Base of absolute URLs (Link, commitUrl, ...); default `http://<host>:<bound port>`."""
    cdn_public_url: str | None = None
    """Base of CDN URLs; default `http://<cdn_host>:<bound cdn port>`."""
    page_size: int = 1000
    """Items per page of listings (models, tree, commits); tests lower it to exercise paging."""
    signed_url_ttl_s: int = 3600
    """How long CDN download and LFS upload URLs stay valid."""
    ollama_root: Path | None = None
    """An Ollama models folder (`manifests/`, `blobs/`) served as an Ollama registry at `/v2/`."""
    ollama_private: bool = False
    """The Ollama registry answers only requests with a valid token (a private registry)."""
    rescan_on_start: bool = True
    """Import every `<root>/<namespace>/<name>` folder when the server starts."""
    rescan_ttl_s: float | None = 1.0
    """While running, a request first picks up the folders (or `source`'s locks) added or
    changed since the last look, if that was longer ago than this (None: at start only)."""
    clock: Callable[[], float] = time.time
    """Dates of new repositories and commits (`createdAt`, `lastModified`): fixtures set it to
    give repositories the dates a search test sorts on."""
    rate_cap: int | None = None
    """Test control, off by default: file bytes per second per response (each on its own
    connection), as a CDN caps one stream."""
    first_byte_delay_s: float = 0.0
    """Test control, off by default: seconds before a file answer's headers (WAN latency)."""

    def __repr__(self) -> str:
        # Tokens never appear in logs or tracebacks, not even through a repr.
        return (
            f"ServerConfig(root={self.root!r}, source={self.source!r}, host={self.host!r}, "
            f"port={self.port!r}, "
            f"cdn_host={self.cdn_host!r}, cdn_port={self.cdn_port!r}, tokens=<{len(self.tokens)}>)"
        )
