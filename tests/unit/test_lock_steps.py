"""The pure resolution step, driven by hand: what it asks for, and what it makes of the answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelsync.gguf.header import parse_header
from modelsync.hardware.model import HardwareProfile, declared
from modelsync.lock.profiles import locked_profile, target_profiles
from modelsync.lock.steps import (
    Answer,
    Digests,
    Header,
    Listing,
    ModelOutcome,
    Steps,
    inputs_digest,
    resolution,
)
from modelsync.manifest.load import parse_manifest
from modelsync.manifest.model import ModelRequest
from modelsync.registry.errors import LockedCommitGoneError, RevisionNotFoundError
from modelsync.registry.model import RemoteFile, RepoSnapshot
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
    return resolution(request, [PROFILE], pinned)


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


PROFILES_TOML = """
[profiles.cpu]
ram = "16GiB"
[profiles.gpu]
ram = "64GiB"
vram = "24GiB"
gpus = 2
[profiles.mac]
ram = "64GiB"
vram = "48GiB"
unified = true
gpus = 2
[profiles.mac-auto]
ram = "32GB"
unified = true
[models.gemma]
source = "hf://org/Gemma-GGUF"
"""


def test_declared_profiles_keep_the_digests_of_existing_locks() -> None:
    """The manifest digest, a model's inputs digest and the [[profile]] records of declared
    profiles (a unified one declaring gpus = 2 among them) are those locks already carry.

    Expected values computed with the code before HardwareProfile became the one machine value
    (commit c9a5bc3, where ProfileRequest.canonical fed the digest): a change here makes every
    existing lock stale."""
    project = parse_manifest(PROFILES_TOML)

    def no_detection() -> HardwareProfile:
        raise AssertionError("declared profiles are not detected")

    profiles = target_profiles(project, None, no_detection)
    assert project.digest() == (
        "sha256:d2f1039b02c0304b3a98101bff3fbf02175de5c837dc2f17edd562bab3b7a7a0"
    )
    assert inputs_digest(project.models[0], profiles) == (
        "sha256:6b48575e1d0973b169274cb8c44e0393e14cf103e1bf828a1a7515ac21c9ef61"
    )
    records = [locked_profile(p) for p in profiles]
    assert [(r.name, r.fingerprint[7:15], r.vram, r.gpus, r.unified) for r in records] == [
        ("cpu", "2de280ab", 0, 0, False),
        ("gpu", "9531755b", 48 << 30, 2, False),
        ("mac", "cf3c2ca0", 0, 0, True),
        ("mac-auto", "b9c1aca7", 0, 0, True),
    ]
