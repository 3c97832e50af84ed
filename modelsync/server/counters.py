"""What the server did: requests per route, bytes sent per file, and an event log (thread-safe).

Tests read these to assert behaviour ("the second sync sent 0 bytes", "that commit was a no-op").
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass

from modelsync.server.model import Event

MAX_RECORDS = 10_000


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as seen by the server: route, method and header names (never values)."""

    route: str
    method: str
    header_names: frozenset[str]


class Counters:
    """Request and byte counters plus an append-only in-memory event log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._bytes: Counter[tuple[str, str]] = Counter()
        self._events: list[Event] = []
        self._records: deque[RequestRecord] = deque(maxlen=MAX_RECORDS)

    def record_request(
        self, route: str, method: str = "GET", header_names: Iterable[str] = ()
    ) -> None:
        """Count one request to a named route (e.g. `resolve`, `model_info`, `cdn_file`)."""
        record = RequestRecord(route, method, frozenset(n.lower() for n in header_names))
        with self._lock:
            self._requests[route] += 1
            self._records.append(record)

    def record_bytes(self, repo_id: str, path: str, count: int) -> None:
        """Count the body bytes of an answer for one file of one repository, as it starts."""
        with self._lock:
            self._bytes[(repo_id, path)] += count

    def record_event(self, event: Event) -> None:
        """Append an event (e.g. `commit.created`, `commit.noop`, `lfs.stored`)."""
        with self._lock:
            self._events.append(event)

    def requests(self, route: str | None = None) -> int:
        """Requests to one route, or to all routes."""
        with self._lock:
            return self._requests[route] if route else sum(self._requests.values())

    def request_log(self, route: str | None = None) -> list[RequestRecord]:
        """The latest requests (up to 10,000), optionally of one route only."""
        with self._lock:
            return [r for r in self._records if route is None or r.route == route]

    def bytes_sent(self, repo_id: str | None = None, path: str | None = None) -> int:
        """File bytes sent: of one file, of one repository, or in total."""
        with self._lock:
            return sum(
                count
                for (repo, file), count in self._bytes.items()
                if (repo_id is None or repo == repo_id) and (path is None or file == path)
            )

    def events(self, name: str | None = None, repo_id: str | None = None) -> list[Event]:
        """Events so far, optionally only of one name and/or repository."""
        with self._lock:
            return [
                e
                for e in self._events
                if (name is None or e.name == name) and (repo_id is None or e.repo_id == repo_id)
            ]
