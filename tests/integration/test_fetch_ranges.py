"""Parallel byte ranges against the project's server: redirect resolved once, no token to the
CDN, signed URLs refreshed when they expire, and `sync --connections` end to end."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from pathlib import Path

from modelsync.fetch.download import Fetcher, FetchItem, FetchResult, fetch_blob
from modelsync.net.retry import RetryPolicy
from modelsync.net.session import Credentials, create_session
from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubFactory, HubRepoFactory, HubTokens


def fetch(
    hub: ServerHandle,
    url: str,
    data: bytes,
    store: Path,
    *,
    part: int,
    token: str = "",
    connections: int = 2,
    solo_probe: tuple[int, float] | None = None,
) -> FetchResult:
    async def main() -> FetchResult:
        async with create_session() as session:
            fetcher = Fetcher(
                session=session,
                layout=StoreLayout(store),
                credentials=Credentials({hub.endpoint: token}),
                policy=RetryPolicy(attempts=4, base_delay=0.01, jitter=0.0),
                connections=connections,
                part_size=part,
                fsync=False,
                solo_probe=solo_probe,
            )
            sha = hashlib.sha256(data).hexdigest()
            return await fetch_blob(fetcher, FetchItem(url, len(data), sha, "m/big.bin"))

    return asyncio.run(main())


def test_pieces_go_to_the_cdn_once_resolved_without_the_token(
    hub: ServerHandle, hub_repo: HubRepoFactory, hub_tokens: HubTokens, tmp_path: Path
) -> None:
    """One resolve, then every piece to the CDN with a Range and no Authorization (the pieces
    are large enough for the direct receive path)."""
    data = os.urandom(16 << 20)
    ref = hub_repo("org/big", {"big.bin": data}, private=True)
    url = f"{hub.endpoint}/org/big/resolve/{ref.commit}/big.bin"
    store = tmp_path / "store"
    fetch(hub, url, data, store, part=4 << 20, token=hub_tokens.writer)
    assert StoreLayout(store).blob_path(hashlib.sha256(data).hexdigest()).read_bytes() == data
    counters = hub.repos.counters
    assert counters.requests("resolve") == 1
    cdn = counters.request_log("cdn_file")
    assert len(cdn) == 2
    assert all("range" in r.header_names and "authorization" not in r.header_names for r in cdn)


def test_an_expired_signed_url_is_resolved_again(hub_factory: HubFactory, tmp_path: Path) -> None:
    """Pieces asked for after the CDN URL expired get a 403, resolve again and finish (a
    URL may expire at once: its expiry is a whole second)."""
    hub = hub_factory(signed_url_ttl_s=1, rate_cap=256 << 10)
    data = os.urandom(1 << 20)
    ref = HubRepoFactory(hub)("org/big", {"big.bin": data})
    url = f"{hub.endpoint}/org/big/resolve/{ref.commit}/big.bin"
    result = fetch(hub, url, data, tmp_path / "store", part=8 << 10)
    assert result.received == len(data)
    assert hub.repos.counters.requests("resolve") >= 2


def test_sync_connections_flag(run_cli: CliRunner) -> None:
    """`--connections 0` is a usage error naming the flag."""
    result = run_cli("sync", "--connections", "0")
    assert result.exit_code == 2
    assert "--connections" in result.stderr


def test_sync_fetches_a_large_file_over_the_connections_asked_for(
    run_cli: CliRunner, hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """`sync --connections 3` of a 48 MiB file (three pieces of 16 MiB) sends three ranges to
    the CDN; `--connections 1` of the same file one stream without a range."""
    data = os.urandom(48 << 20)
    hub_repo("org/big", {"big.bin": data})
    Path("models.toml").write_text('[models.big]\nsource = "hf://org/big"\ninclude = ["*"]\n')
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }
    assert run_cli("lock", env=env).exit_code == 0
    counters = hub.repos.counters
    for connections, ranges in ((3, 3), (1, 0)):
        shutil.rmtree("models", ignore_errors=True)  # nothing placed to adopt from
        before = len(counters.request_log("cdn_file"))
        store = tmp_path / f"store-{connections}"
        result = run_cli("--store", str(store), "sync", "--connections", str(connections), env=env)
        assert result.exit_code == 0, result.stderr
        assert Path("models/big/big.bin").read_bytes() == data
        cdn = counters.request_log("cdn_file")[before:]
        assert sum("range" in r.header_names for r in cdn) == ranges
        assert len(cdn) == max(ranges, 1)


def test_a_fast_first_piece_keeps_one_stream_and_a_capped_one_splits(
    hub_factory: HubFactory, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """With a probe (sync's default without --connections): where the first piece brings its
    bytes fast, the file continues on that one stream (two CDN requests, one after the other:
    the first piece, then the rest from where it ended); where each connection is capped, the
    other pieces go out in parallel as before. The windows are generous so a loaded machine
    cannot flip either verdict."""
    data = os.urandom(12 << 20)
    part = 4 << 20
    ref = hub_repo("org/big", {"big.bin": data})  # in the shared root: servers started now see it
    fast = hub_factory()
    url = f"{fast.endpoint}/org/big/resolve/{ref.commit}/big.bin"
    done = fetch(
        fast, url, data, tmp_path / "fast", part=part, connections=3, solo_probe=(2 << 20, 5.0)
    )
    assert done.attempts == 1  # going on as one stream is no retry
    sha = hashlib.sha256(data).hexdigest()
    assert StoreLayout(tmp_path / "fast").blob_path(sha).read_bytes() == data
    cdn = fast.repos.counters.request_log("cdn_file")
    assert len(cdn) == 2  # the first piece, then one stream for the rest
    fast.close()
    capped = hub_factory(rate_cap=2 << 20)  # 2 MiB/s per connection
    url = f"{capped.endpoint}/org/big/resolve/{ref.commit}/big.bin"
    store = tmp_path / "capped"
    fetch(capped, url, data, store, part=part, connections=3, solo_probe=(2 << 20, 0.2))
    assert StoreLayout(store).blob_path(sha).read_bytes() == data
    assert len(capped.repos.counters.request_log("cdn_file")) == 3  # three pieces at once
