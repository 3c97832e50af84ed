"""What the server derives from a commit's files: model card data and the GGUF summary, cached."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from modelsync.gguf.summary import summarize_file
from modelsync.log import get_logger
from modelsync.server.card import MAX_CARD_BYTES, CardError, parse_front_matter
from modelsync.server.info import RepoView
from modelsync.server.model import Commit, FileEntry, Repo
from modelsync.server.source import Repos

log = get_logger(__name__)

Summarizer = Callable[[Path], Mapping[str, object] | None]
_LATER_SHARD = re.compile(r"-(\d{5})-of-\d{5}\.gguf$", re.IGNORECASE)


def load_summarizer() -> Summarizer:
    """The GGUF summariser the server uses (`modelsync.gguf.summary.summarize_file`)."""
    return summarize_file


def summary_file(commit: Commit) -> FileEntry | None:
    """The GGUF file the repository summary describes: the largest, first shards only."""
    ggufs = []
    for entry in commit.files.values():
        shard = _LATER_SHARD.search(entry.path)
        if entry.path.lower().endswith(".gguf") and (shard is None or shard.group(1) == "00001"):
            ggufs.append(entry)
    return min(ggufs, key=lambda e: (-e.size, e.path), default=None)


class RepoMeta:
    """Card data and GGUF summaries per blob, computed once (blobs never change)."""

    def __init__(self, store: Repos, summarizer: Summarizer | None) -> None:
        self._store = store
        self._summarizer = summarizer
        self._lock = threading.Lock()
        self._cards: dict[str, Mapping[str, object] | None] = {}
        self._ggufs: dict[str, Mapping[str, object] | None] = {}

    def view(self, repo: Repo, commit: Commit) -> RepoView:
        """A `RepoView` of the repository at `commit` (reads files on a cache miss)."""
        return RepoView(
            repo=repo,
            commit=commit,
            card=self.card(commit),
            gguf=self.gguf(commit),
            used_storage=self._store.used_storage(repo.repo_id),
        )

    def card(self, commit: Commit) -> Mapping[str, object] | None:
        """The README's front matter, `None` without README or front matter (or if malformed)."""
        readme = commit.files.get("README.md")
        if readme is None or readme.size > MAX_CARD_BYTES:
            return None
        with self._lock:
            if readme.sha256 in self._cards:
                return self._cards[readme.sha256]
        path = self._store.local_blob(readme.sha256)
        if path is None:  # not here yet (a mirror without it): no card, and nothing cached
            return None
        text = path.read_bytes().decode("utf-8", "replace")
        try:
            card: Mapping[str, object] | None = parse_front_matter(text)
        except CardError as exc:
            log.warning("card.invalid", sha256=readme.sha256, error=str(exc))
            card = None
        with self._lock:
            self._cards[readme.sha256] = card
        return card

    def gguf(self, commit: Commit) -> Mapping[str, object] | None:
        """The GGUF summary of the repository at `commit`, if it has GGUF files."""
        entry = summary_file(commit)
        if entry is None or self._summarizer is None:
            return None
        with self._lock:
            if entry.sha256 in self._ggufs:
                return self._ggufs[entry.sha256]
        path = self._store.local_blob(entry.sha256)
        if path is None:  # not here yet: asked again once it is
            return None
        try:
            summary = self._summarizer(path)
        except Exception:  # a malformed file must not break model_info for the whole repo
            log.warning("gguf.summary_failed", path=entry.path, sha256=entry.sha256, exc_info=True)
            summary = None
        with self._lock:
            self._ggufs[entry.sha256] = summary
        return summary
