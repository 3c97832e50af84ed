"""Fetch one pinned file into a store with modelsync's transfer engine; print the result as JSON.

    python benchmarks/fetch_driver.py URL SIZE SHA256 STORE

The whole process is what the benchmark times: interpreter start-up, imports, one session, the
download with its SHA-256 check, and the atomic rename into the blob store.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from modelsync.fetch.download import Fetcher, FetchItem, FetchResult, fetch_all
from modelsync.fetch.session import create_session
from modelsync.log import configure
from modelsync.store.layout import StoreLayout


async def fetch(url: str, size: int, sha256: str, store: Path) -> FetchResult:
    """Download one file as `sync` will."""
    async with create_session() as session:
        fetcher = Fetcher(session=session, layout=StoreLayout(store))
        [result] = await fetch_all(fetcher, [FetchItem(url, size, sha256, Path(url).name)])
        return result


def main() -> None:
    """Entry point."""
    url, size, sha256, store = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    configure(json=True, verbosity=-1, stream=sys.stderr)
    result = asyncio.run(fetch(url, size, sha256, store))
    print(json.dumps({"received": result.received, "resumed_from": result.resumed_from}))


if __name__ == "__main__":
    main()
