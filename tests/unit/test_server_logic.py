"""The server's pure logic with plain values: ranges, git ids, LFS rule, listing, signing, parsing.

These would sit in tests/unit; they live beside the server's HTTP tests so the whole server is
covered by the `test_server_*` files.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from types import MappingProxyType

import pytest
from multidict import MultiDict

from modelsync.errors import UsageError
from modelsync.server import gitobj, listing, names, signing, treeview
from modelsync.server.auth import TokenInfo, load_tokens_file
from modelsync.server.card import CardError, card_tags, parse_front_matter
from modelsync.server.hub_errors import BadRequestError, RangeNotSatisfiableError
from modelsync.server.model import AddBlob, AddBytes, Commit, DeleteFolder, DeletePath, FileEntry
from modelsync.server.ranges import ByteRange, parse_range
from modelsync.server.upload import CommitHeader, parse_commit_line


def _entry(path: str, data: bytes, *, lfs: bool = False) -> FileEntry:
    return FileEntry(
        path=path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        git_sha1=gitobj.git_blob_oid(data),
        lfs=lfs,
    )


def _commit(files: list[FileEntry], parent: str | None = None, title: str = "t") -> Commit:
    return Commit.build(
        repo_id="org/x",
        parent=parent,
        title=title,
        message="",
        author="a",
        date=0,
        files={e.path: e for e in files},
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", ByteRange(0, 9, 100)),
        ("bytes=90-", ByteRange(90, 99, 100)),
        ("bytes=90-500", ByteRange(90, 99, 100)),
        ("bytes=-10", ByteRange(90, 99, 100)),
        ("bytes=-1000", ByteRange(0, 99, 100)),
        ("bytes=5-4", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=abc", None),
        ("bytes=-", None),
    ],
)
def test_parse_range_spans(header: str | None, expected: ByteRange | None) -> None:
    """Single satisfiable spans parse; malformed, multi-span and other units mean the whole file."""
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-", 0)]
)
def test_parse_range_unsatisfiable(header: str, size: int) -> None:
    """A span starting at or past the end, or an empty suffix, is a 416 naming the size."""
    with pytest.raises(RangeNotSatisfiableError) as caught:
        parse_range(header, size)
    assert caught.value.headers["Content-Range"] == f"bytes */{size}"


def test_byte_range_content_range() -> None:
    """A span renders the Content-Range of a 206 and knows its length."""
    span = ByteRange(10485760, 26214399, 26214400)
    assert span.content_range == "bytes 10485760-26214399/26214400"
    assert span.length == 15728640


def test_git_ids_match_git() -> None:
    """Blob and tree ids are git's own (values from `git hash-object` / `git write-tree`)."""
    assert gitobj.git_blob_oid(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert gitobj.git_blob_oid(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert gitobj.tree_oid([]) == "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    files = {e.path: e for e in (_entry("hello.txt", b"hello\n"), _entry("sub/a.bin", b"x"))}
    oids = treeview.folder_oids(files)
    assert oids["sub"] == "2ab26d8de0587944365b3c461f2730618ae0df97"
    assert oids[""] == "24300a780f11b59578c0f6dbb00066bd5388bf1a"


def test_lfs_pointer_size_matches_the_hub() -> None:
    """The pointer of a 9-digit file is 134 bytes, the Hub's `pointerSize` for such files."""
    pointer = gitobj.lfs_pointer("a" * 64, 123_456_789)
    assert len(pointer) == 134
    assert pointer.startswith(b"version https://git-lfs.github.com/spec/v1\noid sha256:")


@pytest.mark.parametrize(
    ("path", "size", "head", "expected"),
    [
        ("model.gguf", 10, b"GGUF", True),
        ("Weights.SafeTensors", 10, b"{}", True),
        ("README.md", 100, b"# hi", False),
        ("big.txt", gitobj.LFS_SIZE_THRESHOLD + 1, b"text", True),
        ("blob.dat", 5, b"ab\0cd", True),
        ("empty.bin", 0, b"", False),
    ],
)
def test_lfs_rule(path: str, size: int, head: bytes, expected: bool) -> None:
    """LFS by suffix, by size over 10 MiB, or by a NUL byte; empty files never are."""
    assert gitobj.is_lfs(path, size, head) is expected


def test_commit_id_is_stable_and_content_addressed() -> None:
    """The same tree, parent and text give the same id; any change gives another."""
    files = [_entry("a.txt", b"a"), _entry("b.gguf", b"b", lfs=True)]
    first = _commit(files)
    assert first.id == _commit(list(reversed(files))).id
    assert len(first.id) == 40
    assert _commit(files, title="other").id != first.id
    assert _commit(files, parent=first.id).id != first.id
    assert _commit([*files, _entry("c", b"")]).id != first.id
    assert first.same_tree({e.path: e for e in files})
    assert not first.same_tree({"a.txt": files[0]})


def test_entry_ids_for_regular_and_lfs_files() -> None:
    """LFS entries use the pointer's blob id in trees and SHA-256 as ETag; regular ones git ids."""
    regular = _entry("r.txt", b"text")
    lfs = _entry("w.gguf", b"weights", lfs=True)
    assert regular.blob_id == regular.etag == gitobj.git_blob_oid(b"text")
    assert lfs.blob_id == gitobj.git_blob_oid(lfs.pointer)
    assert lfs.etag == hashlib.sha256(b"weights").hexdigest()


def test_list_folder_and_paths_info() -> None:
    """Listings give direct children or all descendants; unknown folders and files are None."""
    files = {
        e.path: e for e in (_entry("a.txt", b"a"), _entry("d/b.txt", b"b"), _entry("d/e/c", b"c"))
    }
    top = treeview.list_folder(files, "", recursive=False)
    assert top is not None
    assert [i.path for i in top] == ["a.txt", "d"]
    everything = treeview.list_folder(files, "", recursive=True)
    assert everything is not None
    assert [i.path for i in everything] == ["a.txt", "d", "d/b.txt", "d/e", "d/e/c"]
    assert treeview.list_folder(files, "missing", recursive=True) is None
    assert treeview.list_folder(files, "a.txt", recursive=True) is None
    infos = treeview.paths_info(files, ["d", "a.txt", "nope", "d/"])
    assert [i.path for i in infos] == ["d", "a.txt"]
    folder = treeview.item_json(infos[0])
    assert folder["type"] == "directory"
    assert folder["size"] == 0


def test_last_commits_finds_the_newest_change() -> None:
    """Each path maps to the newest commit that changed it or anything under it."""
    first = _commit([_entry("a", b"1"), _entry("d/b", b"1")])
    second = _commit([_entry("a", b"2"), _entry("d/b", b"1")], parent=first.id)
    found = treeview.last_commits([second, first], ["a", "d", "d/b"])
    assert found["a"] is second
    assert found["d"] is first
    assert found["d/b"] is first


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("a/b.txt", True),
        ("ünï/côde.gguf", True),
        ("../etc/passwd", False),
        ("a/../b", False),
        ("/abs", False),
        ("a//b", False),
        ("a/./b", False),
        ("a\\b", False),
        ("nul\0byte", False),
        ("", False),
    ],
)
def test_repo_path_check(path: str, ok: bool) -> None:
    """Only relative paths without dot segments, backslashes, empty parts or controls pass."""
    assert names.is_repo_path(path) is ok


@pytest.mark.parametrize(
    ("repo_id", "ok"),
    [
        ("org/Tiny-GGUF", True),
        ("org/a.b_c", True),
        ("api/models", False),
        ("org/-x", False),
        ("org/a--b", False),
        ("org/a..b", False),
        ("org", False),
        ("a/b/c", False),
    ],
)
def test_repo_id_check(repo_id: str, ok: bool) -> None:
    """Repository ids follow the Hub's naming rules and avoid the server's own prefixes."""
    assert names.is_repo_id(repo_id) is ok


def _row(
    repo_id: str,
    downloads: int,
    likes: int,
    *,
    tags: frozenset[str] = frozenset(),
    parameters: int | None = None,
) -> listing.ModelRow:
    return listing.ModelRow(
        repo_id,
        downloads,
        likes,
        created_at=0,
        last_modified=0,
        tags=tags,
        gated=False,
        parameters=parameters,
        pipeline_tag=None,
    )


def test_select_models_filters_and_sorts_descending() -> None:
    """Search, author, tag filters and parameter bounds filter; sorting is descending, id ties."""
    rows = [
        _row("org/a-GGUF", 5, 1, tags=frozenset({"gguf"}), parameters=1_000_000_000),
        _row("org/b-GGUF", 9, 0, tags=frozenset({"gguf"}), parameters=7_000_000_000),
        _row("other/c", 9, 3),
    ]
    query = listing.parse_model_query(MultiDict([("sort", "downloads")]))
    assert [r.repo_id for r in listing.select_models(rows, query)] == [
        "org/b-GGUF",
        "other/c",
        "org/a-GGUF",
    ]
    query = listing.parse_model_query(
        MultiDict([("search", "gguf"), ("author", "ORG"), ("filter", "gguf"), ("sort", "likes")])
    )
    assert [r.repo_id for r in listing.select_models(rows, query)] == ["org/a-GGUF", "org/b-GGUF"]
    query = listing.parse_model_query(MultiDict([("num_parameters", "min:2B,max:8b")]))
    assert [r.repo_id for r in listing.select_models(rows, query)] == ["org/b-GGUF"]


def test_model_query_rejects_bad_values() -> None:
    """Bad sort keys, limits, cursors, booleans and parameter counts are 400s, not 500s."""
    for pairs in (
        [("sort", "size")],
        [("limit", "x")],
        [("limit", "0")],
        [("cursor", "-1")],
        [("gated", "maybe")],
        [("num_parameters", "min:lots")],
        [("num_parameters", "6B")],
    ):
        with pytest.raises(BadRequestError):
            listing.parse_model_query(MultiDict(pairs))


def test_expand_values_accept_repeats_commas_and_brackets() -> None:
    """`expand` arrives repeated, as `expand[]`, or comma-separated; order kept, no duplicates."""
    query = MultiDict([("expand", "gguf"), ("expand", "sha,gguf"), ("expand[]", "formatted")])
    assert listing.expand_values(query) == ("gguf", "sha", "formatted")


def test_pages() -> None:
    """Page size honours the configured size and a smaller limit; the last page has no next."""
    assert listing.page_size(None, 1000) == 1000
    assert listing.page_size(10, 1000) == 10
    assert listing.page_size(5000, 2) == 2
    assert listing.next_offset(5, 0, 2) == 2
    assert listing.next_offset(5, 4, 2) is None


def test_signed_urls_verify_and_expire() -> None:
    """A signature covers path, params and expiry; tampering or time passing breaks it."""
    key = b"k" * 32
    query = signing.sign(key, "/cdn/abc", {"repo": "org/x", "path": "a b.gguf"}, expires=1000)
    assert signing.verify(key, "/cdn/abc", query, now=999)
    assert not signing.verify(key, "/cdn/abc", query, now=1001)
    assert not signing.verify(key, "/cdn/abd", query, now=999)
    assert not signing.verify(key, "/cdn/abc", {**query, "repo": "org/y"}, now=999)
    assert not signing.verify(b"x" * 32, "/cdn/abc", query, now=999)
    assert not signing.verify(
        key, "/cdn/abc", {k: v for k, v in query.items() if k != "sig"}, now=0
    )


def test_parse_commit_lines() -> None:
    """Header, base64 files, LFS files and deletions parse; malformed lines are 400s."""
    header = parse_commit_line(
        {"key": "header", "value": {"summary": "s", "description": "d", "parentCommit": "a" * 40}}
    )
    assert header == CommitHeader("s", "d", "a" * 40)
    content = base64.b64encode(b"hi").decode()
    assert parse_commit_line({"key": "file", "value": {"path": "x", "content": content}}) == (
        AddBytes("x", b"hi")
    )
    lfs = {"path": "w.gguf", "algo": "sha256", "oid": "b" * 64, "size": 3}
    assert parse_commit_line({"key": "lfsFile", "value": lfs}) == AddBlob(
        "w.gguf", "b" * 64, lfs=True, size=3
    )
    assert parse_commit_line({"key": "deletedFile", "value": {"path": "x"}}) == DeletePath("x")
    assert parse_commit_line({"key": "deletedFolder", "value": {"path": "d"}}) == DeleteFolder("d")
    bad_lines: list[object] = [
        [],
        {"key": "file", "value": {"path": "x", "content": "!!"}},
        {"key": "lfsFile", "value": {"path": "x", "oid": "short"}},
        {"key": "header", "value": {"summary": "s", "parentCommit": "main"}},
        {"key": "copyFile", "value": {"path": "x"}},
    ]
    for bad in bad_lines:
        with pytest.raises(BadRequestError):
            parse_commit_line(bad)


def test_front_matter() -> None:
    """Card data comes from the leading YAML block; its tags, license and library become tags."""
    card = parse_front_matter("---\nlicense: mit\ntags: [a, b]\nlibrary_name: gguf\n---\n# x\n")
    assert card == {"license": "mit", "tags": ["a", "b"], "library_name": "gguf"}
    assert card_tags(card) == ["a", "b", "gguf", "license:mit"]
    assert parse_front_matter("# no metadata\n") is None
    with pytest.raises(CardError):
        parse_front_matter("---\n- a list\n---\n")


def test_tokens_file(tmp_path: Path) -> None:
    """`USER ROLE TOKEN [ORGS]` lines load; comments and blank lines are skipped."""
    path = tmp_path / "tokens"
    path.write_text("# users\n\nalice write tok-a org1,org2\nbob read tok-b\n")
    assert load_tokens_file(path) == {
        "tok-a": TokenInfo("alice", "write", ("org1", "org2")),
        "tok-b": TokenInfo("bob", "read"),
    }


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("alice admin secret-token-1\n", "role must be"),
        ("alice secret-token-1\n", "expected 'USER ROLE TOKEN"),
        ("al/ice read secret-token-1\n", "invalid user"),
        ("a read secret-token-1\nb read secret-token-1\n", "already listed"),
    ],
)
def test_tokens_file_errors_name_the_line_not_the_token(
    tmp_path: Path, text: str, fragment: str
) -> None:
    """Malformed lines raise a UsageError with file and line, never the token itself."""
    path = tmp_path / "tokens"
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        load_tokens_file(path)
    message = caught.value.one_line()
    assert fragment in message
    assert f"{path}:" in message
    assert "secret-token-1" not in message


def test_commit_files_are_read_only_views() -> None:
    """A commit's file table cannot be changed through the value."""
    commit = _commit([_entry("a", b"a")])
    assert isinstance(commit.files, MappingProxyType)
    with pytest.raises(TypeError):
        commit.files["b"] = _entry("b", b"b")  # type: ignore[index]  # proving it raises
