"""The bundle index: which blobs a bundle of a lock carries, its bytes, and strict reading."""

from __future__ import annotations

import hashlib

import pytest

from modelsync.bundle.model import (
    BundleBlob,
    check_listing,
    make_index,
    member_kind,
    parse_index,
    render_index,
)
from modelsync.errors import ExitCode, IntegrityError, UsageError
from modelsync.lockfile.model import LockedFile, LockedModel, LockedProfile, Lockfile
from modelsync.ops.bundle import bundle_models


def entry(name: str, profile: str | None, *paths: str) -> LockedModel:
    files = tuple(
        LockedFile(path=p, size=len(p), sha256=hashlib.sha256(p.encode()).hexdigest())
        for p in paths
    )
    return LockedModel(
        name=name,
        registry="hf",
        repo="org/repo",
        commit="c" * 40,
        profile=profile,
        reason="r",
        inputs="sha256:" + "2" * 64,
        files=files,
    )


def profile(name: str) -> LockedProfile:
    return LockedProfile(name=name, source="declared", fingerprint="sha256:" + "3" * 64, ram=1)


LOCK = Lockfile(
    version=1,
    manifest_digest="sha256:" + "1" * 64,
    profiles=(profile("gpu"), profile("pi")),
    models=(
        entry("llm", "gpu", "m-Q8_0.gguf", "config.json"),
        entry("llm", "pi", "m-Q4_K_M.gguf", "config.json"),
        entry("embed", None, "e.gguf"),
    ),
)


def digest(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()


def test_a_bundle_carries_every_profile_unless_one_is_named() -> None:
    """By default every profile's files travel (each blob once); `--profile` carries the
    files that profile syncs; `--model` narrows to that model."""
    everything = make_index(b"lock", bundle_models(LOCK, (), None))
    paths = ["m-Q8_0.gguf", "m-Q4_K_M.gguf", "config.json", "e.gguf"]
    assert [b.sha256 for b in everything.blobs] == sorted(digest(p) for p in paths)
    pi = make_index(b"lock", bundle_models(LOCK, (), "pi"))
    assert {b.sha256 for b in pi.blobs} == {digest(p) for p in paths if p != "m-Q8_0.gguf"}
    embed = make_index(b"lock", bundle_models(LOCK, ("embed",), None))
    assert [b.sha256 for b in embed.blobs] == [digest("e.gguf")]


def test_unknown_model_or_profile_is_a_usage_error() -> None:
    """A `--model` or `--profile` the lock lacks exits 2, listing what it has."""
    with pytest.raises(UsageError, match=r"--model nope: not in models\.lock"):
        bundle_models(LOCK, ("nope",), None)
    with pytest.raises(UsageError, match=r"--profile big: models\.lock has no such profile"):
        bundle_models(LOCK, (), "big")


def test_index_bytes_are_deterministic_and_read_back() -> None:
    """The same entries in any order give the same bytes; parsing gives the index back."""
    one = render_index(make_index(b"lock", LOCK.models))
    two = render_index(make_index(b"lock", tuple(reversed(LOCK.models))))
    assert one == two
    index = parse_index(one, "bundle.json")
    assert index.lock == BundleBlob(sha256=hashlib.sha256(b"lock").hexdigest(), size=4)
    assert index == make_index(b"lock", LOCK.models)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b'{"format": "modelsync-bundle", "version": 1, "lock": {}, "blobs": []}', "lock.sha256"),
        (b'{"format": "other", "version": 1}', "format"),
        (
            b'{"format": "modelsync-bundle", "version": 0, "lock": {"sha256": "'
            + b"a" * 64
            + b'", "size": 1}, "blobs": []}',
            "version",
        ),
        (
            b'{"format": "modelsync-bundle", "version": 1, "lock": {"sha256": "'
            + b"A" * 64
            + b'", "size": 1}, "blobs": []}',
            "lock.sha256",
        ),
    ],
)
def test_a_damaged_index_is_an_integrity_error(text: bytes, problem: str) -> None:
    """Missing keys, another format, a bad version or digest: exit 4 naming the field."""
    with pytest.raises(IntegrityError) as caught:
        parse_index(text, "b/bundle.json")
    assert caught.value.exit_code == ExitCode.INTEGRITY
    assert caught.value.message.startswith(f"b/bundle.json: damaged bundle index: {problem}")


def test_a_newer_index_asks_for_an_upgrade() -> None:
    """An index written by a newer format version is a usage error saying to upgrade."""
    with pytest.raises(UsageError, match="bundle format version 2 is newer"):
        parse_index(b'{"version": 2}', "bundle.json")


def test_listing_keeps_only_what_the_lock_pins_at_its_size() -> None:
    """Blobs the lock pins at the listed size are kept; others are refused with the reason."""
    pinned = BundleBlob(sha256=digest("e.gguf"), size=len("e.gguf"))
    wrong = BundleBlob(sha256=digest("config.json"), size=5)
    stranger = BundleBlob(sha256="f" * 64, size=1)
    index = make_index(b"lock", ()).model_copy(update={"blobs": (pinned, wrong, stranger)})
    wanted, refused = check_listing(index, LOCK)
    assert wanted == [pinned]
    assert {r.name: r.reason for r in refused} == {
        wrong.sha256: "bundle.json says 5 bytes, its models.lock pins 11",
        stranger.sha256: "listed in bundle.json but not in its models.lock",
    }


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("bundle.json", "index"),
        ("models.lock", "lock"),
        ("blobs/sha256/" + "a" * 64, "blob"),
        ("blobs/sha256/" + "A" * 64, None),
        ("./bundle.json", None),
        ("blobs/sha256/../../" + "a" * 64, None),
        ("/blobs/sha256/" + "a" * 64, None),
        ("x/blobs/sha256/" + "a" * 64, None),
    ],
)
def test_only_a_bundles_own_names_are_read(name: str, kind: str | None) -> None:
    """Member names are matched exactly: no `./`, `..`, absolute or nested variants."""
    assert member_kind(name) == kind
