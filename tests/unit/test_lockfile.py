"""models.lock: deterministic rendering, strict parsing (file:line:key), freshness, no-op writes."""

from __future__ import annotations

import hashlib
import os
import tomllib
from pathlib import Path

import pytest

from modelsync.errors import ExitCode, LockfileError
from modelsync.lockfile.freshness import Origin, freshness, reusable
from modelsync.lockfile.io import read_lock, write_lock
from modelsync.lockfile.model import LockedFile, LockedModel, LockedProfile, Lockfile
from modelsync.lockfile.render import HEADER, parse_lock, render_lock, toml_string

DIGEST = "sha256:" + "1" * 64
COMMIT = "c" * 40


def model(name: str, profile: str | None = None, *paths: str) -> LockedModel:
    files = tuple(
        LockedFile(path=p, size=len(p), sha256=hashlib.sha256(p.encode()).hexdigest())
        for p in paths
    )
    return LockedModel(
        name=name,
        registry="hf",
        repo="org/repo",
        revision="main",
        commit=COMMIT,
        profile=profile,
        quant="Q4_K_M",
        context=8192,
        memory=123,
        reason='Q4_K_M: "quoted" reason \\ with a backslash',
        inputs="sha256:" + "2" * 64,
        files=files or (LockedFile(path="m.gguf", size=1, sha256="a" * 64),),
    )


def lock(*models: LockedModel) -> Lockfile:
    return Lockfile(
        version=1,
        manifest_digest=DIGEST,
        profiles=(
            LockedProfile(name="laptop", source="declared", fingerprint=DIGEST, ram=16 << 30),
            LockedProfile(name="gpu", source="declared", fingerprint=DIGEST, ram=1, vram=2, gpus=1),
        ),
        models=models,
    )


def test_render_is_deterministic_and_sorted() -> None:
    """Entry order in the value does not change the bytes: models, profiles and files are sorted."""
    a = lock(model("b", None, "z.gguf", "a.gguf"), model("a", "laptop"), model("a", "gpu"))
    b = lock(model("a", "gpu"), model("b", None, "a.gguf", "z.gguf"), model("a", "laptop"))
    text = render_lock(a)
    assert text == render_lock(b)
    assert text.startswith(HEADER)
    data = tomllib.loads(text)
    assert [(m["name"], m.get("profile")) for m in data["model"]] == [
        ("a", "gpu"),
        ("a", "laptop"),
        ("b", None),
    ]
    assert [f["path"] for f in data["model"][2]["file"]] == ["a.gguf", "z.gguf"]
    assert [p["name"] for p in data["profile"]] == ["gpu", "laptop"]


def test_render_parse_round_trip() -> None:
    """Parsing the rendered text gives back the same lock, byte for byte when rendered again."""
    original = lock(model("a", None, "x/y.gguf"), model("c", "gpu"))
    text = render_lock(original)
    parsed = parse_lock(text)
    assert parsed == original
    assert render_lock(parsed) == text


def test_key_order_is_fixed() -> None:
    """Model keys appear in the documented order, files after them."""
    text = render_lock(lock(model("a")))
    block = text.split("[[model]]\n", 1)[1]
    keys = [line.split(" = ")[0] for line in block.splitlines() if " = " in line]
    assert keys[:12] == [
        "name",
        "registry",
        "repo",
        "revision",
        "commit",
        "quant",
        "context",
        "memory",
        "reason",
        "inputs",
        "path",
        "size",
    ]


@pytest.mark.parametrize("value", ['a"b', "back\\slash", "tab\there", "nl\nx", "é 🦙", "\x7f"])
def test_toml_strings_round_trip(value: str) -> None:
    """Any text survives rendering as a TOML string."""
    assert tomllib.loads(f"k = {toml_string(value)}")["k"] == value


def test_newer_version_is_refused() -> None:
    """A lock from a newer format is refused with the way out, never misread."""
    text = render_lock(lock(model("a"))).replace("version = 1", "version = 2")
    with pytest.raises(LockfileError) as caught:
        parse_lock(text)
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.one_line().startswith(
        "models.lock: lock format version 2 is newer than this modelsync reads (1)"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('sha256 = "' + "a" * 64, 'sha256 = "' + "A" * 64, ":35: model.file.sha256: expected 64"),
        ('path = "m.gguf"', 'path = "../etc/passwd"', ":33: model.file.path: unsafe path"),
        ('commit = "' + COMMIT, 'commit = "' + "z" * 40, ":25: model.commit: expected a 40-hex"),
        (
            'repo = "org/repo"',
            'url = "https://u:p@host/x.gguf"',
            ":23: model.url: expected an http",
        ),
        ('quant = "Q4_K_M"', "quant = 4", ":26: model.quant: Input should be a valid string"),
        ('quant = "Q4_K_M"', 'colour = "red"', ":26: model.colour: Extra inputs"),
    ],
)
def test_bad_values_name_line_and_key(old: str, new: str, expected: str) -> None:
    """Every bad field is one line naming models.lock, the line and the key, with the fix."""
    text = render_lock(lock(model("a")))
    assert old in text
    with pytest.raises(LockfileError) as caught:
        parse_lock(text.replace(old, new, 1))
    line = caught.value.one_line()
    assert line.startswith("models.lock" + expected), line
    assert line.endswith("run `modelsync lock` to regenerate it (or restore it from git)")


def test_malformed_toml_names_the_line() -> None:
    """Broken TOML in the lock names its line."""
    with pytest.raises(LockfileError, match=r"^models.lock:3: invalid TOML"):
        parse_lock('version = 1\nmanifest-digest = "x"\n[[model]\n')


ORIGIN = Origin(registry="hf", repo="org/repo", revision="main")
PROFILES = ("gpu", "laptop")


def test_freshness() -> None:
    """Fresh only when the lock exists, matches the manifest digest, and covers every model."""
    current = lock(model("a"), model("b"))
    both = {"a": ORIGIN, "b": ORIGIN}
    assert not freshness(None, DIGEST, {"a": ORIGIN}, PROFILES)
    assert freshness(None, DIGEST, {"a": ORIGIN}, PROFILES).reason == "there is no lock"
    stale = freshness(current, "sha256:" + "9" * 64, both, PROFILES)
    assert not stale
    assert stale.reason == "models.toml changed since the lock was written"
    assert freshness(current, DIGEST, both, PROFILES)
    lacking = freshness(current, DIGEST, {**both, "c": ORIGIN}, PROFILES)
    assert lacking.reason == "the lock lacks c"


@pytest.mark.parametrize(
    ("origin", "field"),
    [
        (Origin(registry="corp", repo="org/repo", revision="main"), "registry"),
        (Origin(registry="hf", repo="org/other", revision="main"), "repo"),
        (Origin(registry="hf", repo="org/repo", revision="v2"), "revision"),
        (Origin(registry="hf", url="https://x/m.gguf"), "url"),
    ],
)
def test_an_entry_must_repeat_its_manifest_origin(origin: Origin, field: str) -> None:
    """An entry whose registry, repo/url or revision differs from the manifest's is stale and is
    never reused, even with the right digests."""
    current = lock(model("a"))
    verdict = freshness(current, DIGEST, {"a": origin}, PROFILES)
    assert not verdict
    assert verdict.reason == f"model a: the lock's {field} differs from models.toml"
    assert not reusable(current, "a", "sha256:" + "2" * 64, origin)


def test_a_url_entry_must_carry_the_pinned_digest() -> None:
    """A URL model's locked file must have the SHA-256 models.toml pins."""
    url = LockedModel(
        name="u",
        registry="url",
        url="https://x/u.gguf",
        reason="pinned",
        inputs="sha256:" + "2" * 64,
        files=(LockedFile(path="u.gguf", size=1, sha256="a" * 64),),
    )
    current = lock(url)
    pinned = Origin("url", url="https://x/u.gguf", sha256="a" * 64)
    assert freshness(current, DIGEST, {"u": pinned}, PROFILES)
    other = Origin("url", url="https://x/u.gguf", sha256="b" * 64)
    stale = freshness(current, DIGEST, {"u": other}, PROFILES)
    assert stale.reason == "model u: the lock's sha256 differs from models.toml"


def test_an_undeclared_profile_is_stale() -> None:
    """An entry for, or a declared lock profile of, a profile models.toml lacks is stale."""
    current = lock(model("a", "gpu"), model("a", "laptop"))
    assert freshness(current, DIGEST, {"a": ORIGIN}, PROFILES)
    entry = freshness(current, DIGEST, {"a": ORIGIN}, ("gpu",))
    assert entry.reason == "model a: the lock's profile laptop is not declared"
    shared = freshness(lock(model("a")), DIGEST, {"a": ORIGIN}, ("gpu",))
    assert shared.reason == "the lock declares profile laptop"


def test_reusable_needs_equal_inputs() -> None:
    """Locked entries are reused only when their inputs digest matches."""
    current = lock(model("a"))
    assert reusable(current, "a", "sha256:" + "2" * 64, ORIGIN)
    assert not reusable(current, "a", "sha256:" + "3" * 64, ORIGIN)
    assert not reusable(current, "b", "sha256:" + "2" * 64, ORIGIN)
    assert not reusable(None, "a", "sha256:" + "2" * 64, ORIGIN)


def test_write_lock_skips_identical_bytes(tmp_path: Path) -> None:
    """Writing the same text again does not touch the file (its mtime stays)."""
    path = tmp_path / "models.lock"
    text = render_lock(lock(model("a")))
    assert write_lock(path, text)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert not write_lock(path, text)
    assert path.stat().st_mtime_ns == 1_000_000_000
    assert write_lock(path, text.replace("Q4_K_M", "Q5_K_M"))
    assert path.stat().st_mtime_ns != 1_000_000_000
    assert read_lock(path) is not None
    assert read_lock(tmp_path / "absent.lock") is None


def test_unknown_profile_field_and_duplicates_are_refused() -> None:
    """A model locked twice for one profile is an error."""
    with pytest.raises(ValueError, match="locked twice"):
        lock(model("a", "gpu"), model("a", "gpu"))
