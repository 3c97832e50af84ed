"""The pure resolution step, driven by hand: what it asks for, and what it makes of the answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelsync.gguf.header import parse_header
from modelsync.hardware.model import declared
from modelsync.lock.steps import (
    Answer,
    Digests,
    Header,
    Listing,
    ModelOutcome,
    Steps,
    resolution,
)
from modelsync.manifest.load import parse_manifest
from modelsync.manifest.model import ModelRequest
from modelsync.registry.errors import LockedCommitGoneError, RevisionNotFoundError
from modelsync.registry.model import RemoteFile, RepoSnapshot
from modelsync.sync.desired import machine_of
from modelsync.testing.gguf_files import write_gguf

COMMIT = "0123456789abcdef0123456789abcdef01234567"
PINNED = "89abcdef0123456789abcdef0123456789abcdef"
SHA = {"Q4_K_M": "a" * 64, "Q8_0": "b" * 64}
PROFILE = declared("gpu", ram=32 << 30, vram=24 << 30)


def model(text: str = "") -> ModelRequest:
    """The one model of a manifest on org/Tiny-GGUF."""
    project = parse_manifest(f'[models.tiny]\nsource = "hf://org/Tiny-GGUF"\n{text}')
    return project.models[0]


def steps(request: ModelRequest, pinned: str | None = None) -> Steps:
    return resolution(request, [PROFILE], [machine_of(PROFILE)], pinned)


def snapshot(files: tuple[RemoteFile, ...]) -> RepoSnapshot:
    return RepoSnapshot("hf", "org/Tiny-GGUF", "main", COMMIT, files)


def finish(flow: Steps, answer: Answer) -> ModelOutcome:
    with pytest.raises(StopIteration) as done:
        flow.send(answer)
    outcome = done.value.value
    assert isinstance(outcome, ModelOutcome)
    return outcome


def test_asks_for_the_listing_then_one_header_then_nothing_more(tmp_path: Path) -> None:
    """Listing first (at the revision), then the header of the smallest candidate; LFS digests
    come from the listing, so no digest is asked for, and the best that fits is locked."""
    header = parse_header(write_gguf(tmp_path / "t.gguf", quant="Q4_K_M").read_bytes())
    files = tuple(
        RemoteFile(f"Tiny-{q}.gguf", size, SHA[q], lfs=True)
        for q, size in (("Q4_K_M", 1000), ("Q8_0", 2000))
    )
    flow = steps(model())
    assert next(flow) == Listing("org/Tiny-GGUF", "main")
    found = snapshot(files)
    assert flow.send(found) == Header(found, "Tiny-Q4_K_M.gguf")
    outcome = finish(flow, header)
    [entry] = outcome.entries
    assert (entry.commit, entry.quant) == (COMMIT, "Q8_0")
    assert [(f.path, f.sha256) for f in entry.files] == [("Tiny-Q8_0.gguf", SHA["Q8_0"])]


def test_files_without_a_listed_digest_are_asked_for_together() -> None:
    """Globs select non-GGUF files: no header is read; files without an LFS digest are asked
    for in one `Digests` need and their answers land in the entry."""
    files = (RemoteFile("config.json", 2, None), RemoteFile("w.bin", 9, "c" * 64, lfs=True))
    flow = steps(model('include = ["*"]'))
    next(flow)
    found = snapshot(files)
    assert flow.send(found) == Digests(found, (files[0],))
    outcome = finish(flow, {"config.json": "d" * 64})
    assert [(f.path, f.sha256) for f in outcome.entries[0].files] == [
        ("config.json", "d" * 64),
        ("w.bin", "c" * 64),
    ]


def test_a_vanished_locked_commit_is_the_remotes_fault() -> None:
    """The listing at a pinned commit failing with 'no such revision' becomes exit 5 naming
    the commit; without a pin the registry's own error stands."""
    flow = steps(model(), pinned=PINNED)
    assert next(flow) == Listing("org/Tiny-GGUF", PINNED)
    gone = RevisionNotFoundError("hf:org/Tiny-GGUF has no revision", hint="fix it")
    with pytest.raises(LockedCommitGoneError) as caught:
        flow.throw(gone)
    assert caught.value.exit_code == 5
    assert caught.value.one_line() == (
        f"hf:org/Tiny-GGUF no longer has the locked commit {PINNED}; "
        "run `modelsync lock --upgrade-model tiny` to pin a current one"
    )
    unpinned = steps(model())
    next(unpinned)
    with pytest.raises(RevisionNotFoundError):
        unpinned.throw(gone)
