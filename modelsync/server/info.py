"""The JSON of a model as `model_info` and `list_models` read it: pure functions of a `RepoView`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from modelsync.server.card import card_tags
from modelsync.server.listing import ModelRow
from modelsync.server.model import Commit, FileEntry, Repo, iso_z


@dataclass(frozen=True, slots=True)
class RepoView:
    """A repository at one commit, with what the server derived from its files."""

    repo: Repo
    commit: Commit
    card: Mapping[str, object] | None = None
    gguf: Mapping[str, object] | None = None
    used_storage: int = 0

    @property
    def has_gguf(self) -> bool:
        """Whether any file of the commit is a GGUF file."""
        return any(path.lower().endswith(".gguf") for path in self.commit.files)

    @property
    def tags(self) -> list[str]:
        """Operator tags, card tags and `gguf` for GGUF repositories, deduplicated in order."""
        tags = [*self.repo.settings.tags, *card_tags(self.card or {})]
        if self.has_gguf:
            tags.append("gguf")
        return list(dict.fromkeys(tags))

    @property
    def parameters(self) -> int | None:
        """Parameter count from the GGUF summary (`gguf.total`), if known."""
        total = (self.gguf or {}).get("total")
        return total if isinstance(total, int) and not isinstance(total, bool) else None

    def card_str(self, key: str) -> str | None:
        """A string field of the card data, if present."""
        value = (self.card or {}).get(key)
        return value if isinstance(value, str) else None

    def row(self) -> ModelRow:
        """The listing row of this repository."""
        settings = self.repo.settings
        return ModelRow(
            repo_id=self.repo.repo_id,
            downloads=settings.downloads,
            likes=settings.likes,
            created_at=self.repo.created_at,
            last_modified=self.commit.date,
            tags=frozenset(self.tags),
            gated=settings.gated is not False,
            parameters=self.parameters,
            pipeline_tag=self.card_str("pipeline_tag"),
        )


def sibling_json(entry: FileEntry, *, blobs: bool) -> dict[str, object]:
    """One `siblings[]` item; with `blobs`, size, git blob id and (LFS files) `lfs.sha256`."""
    data: dict[str, object] = {"rfilename": entry.path}
    if blobs:
        data["size"] = entry.size
        data["blobId"] = entry.blob_id
        if entry.lfs:
            data["lfs"] = {
                "sha256": entry.sha256,
                "size": entry.size,
                "pointerSize": len(entry.pointer),
            }
    return data


_FIELDS: dict[str, Callable[[RepoView, bool], object]] = {
    "id": lambda v, _: v.repo.repo_id,
    "modelId": lambda v, _: v.repo.repo_id,
    "author": lambda v, _: v.repo.namespace,
    "sha": lambda v, _: v.commit.id,
    "lastModified": lambda v, _: iso_z(v.commit.date),
    "createdAt": lambda v, _: iso_z(v.repo.created_at),
    "private": lambda v, _: v.repo.settings.private,
    "gated": lambda v, _: v.repo.settings.gated,
    "disabled": lambda v, _: False,
    "downloads": lambda v, _: v.repo.settings.downloads,
    "downloadsAllTime": lambda v, _: v.repo.settings.downloads,
    "likes": lambda v, _: v.repo.settings.likes,
    "trendingScore": lambda v, _: v.repo.settings.likes,
    "tags": lambda v, _: v.tags,
    "library_name": lambda v, _: v.card_str("library_name"),
    "pipeline_tag": lambda v, _: v.card_str("pipeline_tag"),
    "cardData": lambda v, _: dict(v.card) if v.card is not None else None,
    "gguf": lambda v, _: dict(v.gguf) if v.gguf is not None else None,
    "siblings": lambda v, blobs: [sibling_json(e, blobs=blobs) for e in v.commit.files.values()],
    "spaces": lambda v, _: [],
    "usedStorage": lambda v, _: v.used_storage,
}

INFO_FIELDS = (
    "id", "modelId", "author", "sha", "lastModified", "createdAt", "private", "gated", "disabled",
    "downloads", "likes", "tags", "library_name", "pipeline_tag", "cardData", "gguf", "siblings",
    "spaces", "usedStorage",
)  # fmt: skip
"""What `GET /api/models/{repo}` answers without `expand`."""

LIST_FIELDS = (
    "id", "modelId", "likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag",
    "library_name", "createdAt",
)  # fmt: skip
"""What a `GET /api/models` item holds by default."""

FULL_LIST_FIELDS = (*LIST_FIELDS, "author", "sha", "lastModified", "gated", "disabled", "siblings")
"""What a `GET /api/models` item holds with `full=true`."""


def model_json(view: RepoView, fields: Iterable[str], *, blobs: bool = False) -> dict[str, object]:
    """The model object with `id` plus the given fields; unknown and empty fields are left out."""
    data: dict[str, object] = {"id": view.repo.repo_id}
    for name in fields:
        build = _FIELDS.get(name)
        value = build(view, blobs) if build is not None else None
        if value is not None:
            data[name] = value
    return data
