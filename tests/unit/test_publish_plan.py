"""publish.plan (pure): local files versus the remote listing → add / replace / delete /
unchanged; and the bench results the card shows."""

from __future__ import annotations

import hashlib
import json

import pytest

from modelsync.errors import UsageError
from modelsync.publish.card import parse_bench
from modelsync.publish.plan import (
    LocalFile,
    RemoteFile,
    git_blob_id,
    needs_git_id,
    plan_upload,
)

A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_missing_repository_adds_everything_sorted() -> None:
    """No listing (the repo does not exist): every file is added, in path order."""
    plan = plan_upload("t/x", [LocalFile("z.gguf", 3, A), LocalFile("a.gguf", 5, B)], None)
    assert not plan.exists
    assert [f.path for f in plan.add] == ["a.gguf", "z.gguf"]
    assert plan.upload_bytes == 8
    assert plan


def test_compares_lfs_by_sha256_and_keeps_extras_unless_asked() -> None:
    """Same size and LFS sha256: unchanged; another digest or size: replace; a remote file
    nobody publishes is kept and named, deleted only with delete-extra; .gitattributes never."""
    local = [LocalFile("same.gguf", 10, A), LocalFile("new.gguf", 10, B), LocalFile("d.gguf", 4, C)]
    remote = [
        RemoteFile(".gitattributes", 100, None, "f" * 40),
        RemoteFile("same.gguf", 10, A),
        RemoteFile("d.gguf", 10, C),
        RemoteFile("old.gguf", 7, B),
    ]
    plan = plan_upload("t/x", local, remote, head="1" * 40)
    assert [f.path for f in plan.replace] == ["d.gguf"]
    assert [f.path for f in plan.add] == ["new.gguf"]
    assert [f.path for f in plan.unchanged] == ["same.gguf"]
    assert [d.path for d in plan.extra] == ["old.gguf"]
    assert plan.delete == ()
    pruned = plan_upload("t/x", local, remote, head="1" * 40, delete_extra=True)
    assert [d.path for d in pruned.delete] == ["old.gguf"]
    assert pruned.extra == ()
    assert pruned.head == "1" * 40


def test_regular_remote_files_compare_by_git_blob_id() -> None:
    """A regular (non-LFS) remote file is the same only when the local git blob id matches;
    without one computed it is replaced."""
    text = b"# card\n"
    blob = git_blob_id(text)
    card = LocalFile("README.md", len(text), hashlib.sha256(text).hexdigest(), content=text)
    remote = [RemoteFile("README.md", len(text), None, blob)]
    assert needs_git_id(card, remote)
    assert plan_upload("t/x", [card], remote).replace == (card,)
    known = LocalFile(card.path, card.size, card.sha256, content=text, git_id=blob)
    up_to_date = plan_upload("t/x", [known], remote)
    assert not up_to_date
    assert up_to_date.unchanged == (known,)


def test_git_blob_id_matches_git() -> None:
    """`git hash-object` of "hello\\n" is ce013625030ba8dba906f756967f9e9ca394464a."""
    assert git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_bench_results_by_sha256_ignoring_unknown_keys_and_incomplete_rows() -> None:
    """Results are grouped by file sha256; unknown keys are ignored, a row missing the
    measured values is skipped, and a file that is not the schema is a usage error."""
    row = {
        "sha256": A,
        "hardware": "hw",
        "llama_cpp": "0.3.1",
        "pp_tps": {"mean": 1.0, "std": 0.5},
        "tg_tps": {"mean": 2.0, "std": 0.25},
        "new_field": [1],
    }
    text = json.dumps({"version": 1, "results": [row, {"sha256": B}]})
    found = parse_bench(text, "models.bench.json")
    assert list(found) == [A]
    assert found[A][0].text() == "pp 1.0 ± 0.5 t/s, tg 2.0 ± 0.2 t/s (hw, llama.cpp 0.3.1)"
    with pytest.raises(UsageError, match=r"models.bench.json: not valid JSON"):
        parse_bench("{", "models.bench.json")
    with pytest.raises(UsageError, match=r'expected \{"version": 1, "results": \[...\]\}'):
        parse_bench("[]", "models.bench.json")
