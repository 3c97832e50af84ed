"""Tree listings and paths-info of one commit, and the JSON of their entries: pure functions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from posixpath import dirname

from modelsync.server import gitobj
from modelsync.server.model import Commit, FileEntry, iso_z


@dataclass(frozen=True, slots=True)
class FolderEntry:
    """A folder of a commit's tree, with its git tree id."""

    path: str
    oid: str


TreeItem = FileEntry | FolderEntry


def _parents(path: str) -> Iterable[str]:
    """Every folder above `path`, up to and including the root `""`."""
    while path:
        path = dirname(path)
        yield path


def folder_oids(files: Mapping[str, FileEntry]) -> dict[str, str]:
    """Git tree id of every folder of the tree, keyed by path (`""` is the root)."""
    children: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
    folders = {""}
    for entry in files.values():
        children[dirname(entry.path)].append((entry.path.rsplit("/", 1)[-1], entry.blob_id, False))
        folders.update(_parents(entry.path))
    oids: dict[str, str] = {}
    for folder in sorted(folders, key=lambda p: p.count("/") + bool(p), reverse=True):
        oids[folder] = gitobj.tree_oid(children[folder])
        if folder:
            children[dirname(folder)].append((folder.rsplit("/", 1)[-1], oids[folder], True))
    return oids


def list_folder(
    files: Mapping[str, FileEntry], folder: str, *, recursive: bool
) -> list[TreeItem] | None:
    """Entries under `folder` (direct children, or all descendants), sorted by path.

    `None` when `folder` is not a folder of this tree (a missing path, or a file).
    """
    oids = folder_oids(files)
    if folder not in oids:
        return None
    prefix = f"{folder}/" if folder else ""
    items: list[TreeItem] = []
    for path, oid in oids.items():
        if path.startswith(prefix) and path != folder and (recursive or dirname(path) == folder):
            items.append(FolderEntry(path, oid))
    for path, entry in files.items():
        if path.startswith(prefix) and (recursive or dirname(path) == folder):
            items.append(entry)
    return sorted(items, key=lambda item: item.path)


def paths_info(files: Mapping[str, FileEntry], paths: Iterable[str]) -> list[TreeItem]:
    """The entries of the given paths, files or folders, skipping missing ones."""
    oids = folder_oids(files)
    items: list[TreeItem] = []
    for path in dict.fromkeys(raw.strip("/") for raw in paths):
        if path in files:
            items.append(files[path])
        elif path and path in oids:
            items.append(FolderEntry(path, oids[path]))
    return items


def last_commits(history: Sequence[Commit], paths: Iterable[str]) -> dict[str, Commit]:
    """For each path, the newest commit of `history` (newest first) that changed it."""
    wanted = set(paths)
    found: dict[str, Commit] = {}
    for index, commit in enumerate(history):
        if not wanted:
            break
        parent_files = history[index + 1].files if index + 1 < len(history) else {}
        changed = {
            path
            for path in commit.files.keys() | parent_files.keys()
            if path not in commit.files
            or path not in parent_files
            or not commit.files[path].same_content(parent_files[path])
        }
        touched = changed | {folder for path in changed for folder in _parents(path)}
        for path in wanted & touched:
            found[path] = commit
        wanted -= touched
    return found


def item_json(item: TreeItem, last_commit: Commit | None = None) -> dict[str, object]:
    """A tree / paths-info entry as the client parses it (the tree's `lfs` uses `oid`)."""
    data: dict[str, object]
    if isinstance(item, FolderEntry):
        data = {"type": "directory", "oid": item.oid, "size": 0, "path": item.path}
    else:
        data = {"type": "file", "oid": item.blob_id, "size": item.size, "path": item.path}
        if item.lfs:
            data["lfs"] = {"oid": item.sha256, "size": item.size, "pointerSize": len(item.pointer)}
    if last_commit is not None:
        data["lastCommit"] = {
            "id": last_commit.id,
            "title": last_commit.title,
            "date": iso_z(last_commit.date),
        }
    return data
