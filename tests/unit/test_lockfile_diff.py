"""`lockfile.diff`: one model's entries in two locks compared (pure)."""

from __future__ import annotations

from modelsync.lockfile.diff import ChoiceChange, diff_model
from modelsync.lockfile.model import LockedFile, LockedModel

OLD, NEW = "a" * 40, "b" * 40


def entry(
    commit: str, profile: str | None, quant: str | None, files: dict[str, tuple[int, str]]
) -> LockedModel:
    return LockedModel(
        name="m",
        registry="hf",
        repo="org/repo",
        revision="main",
        commit=commit,
        profile=profile,
        quant=quant,
        reason="test",
        inputs="sha256:" + "1" * 64,
        files=tuple(LockedFile(path=p, size=s, sha256=d * 64) for p, (s, d) in files.items()),
    )


def test_same_entries_are_no_change() -> None:
    """Identical entries give a falsy change with every profile's choice unchanged."""
    same = entry(OLD, None, "Q4_K_M", {"m-Q4_K_M.gguf": (10, "1")})
    change = diff_model([same], [same])
    assert not change
    assert change.choices == (ChoiceChange(None, "Q4_K_M", "Q4_K_M", changed=False),)


def test_files_added_removed_changed_and_size_delta() -> None:
    """A new commit that swaps one file and rewrites another: each listed once, sizes summed."""
    old = entry(OLD, None, None, {"a.bin": (10, "1"), "cfg.json": (2, "2")})
    new = entry(NEW, None, None, {"b.bin": (15, "3"), "cfg.json": (3, "4")})
    change = diff_model([old], [new])
    assert change
    assert (change.added, change.removed, change.changed) == (("b.bin",), ("a.bin",), ("cfg.json",))
    assert change.size_delta == 6
    assert (change.old_commit, change.new_commit) == (OLD, NEW)


def test_a_commit_move_alone_is_a_change() -> None:
    """Only the commit moved (no locked file differs): still a change, choice unchanged."""
    files = {"m.gguf": (10, "1")}
    change = diff_model([entry(OLD, None, "Q8_0", files)], [entry(NEW, None, "Q8_0", files)])
    assert change
    assert not change.choice_changed
    assert (change.added, change.removed, change.changed, change.size_delta) == ((), (), (), 0)


def test_shared_entry_split_into_profiles_compares_each_profile() -> None:
    """One shared entry before, one per profile after: the profile whose quant changed is
    marked, the other is not, and the shared file is not reported as added or removed."""
    q4 = {"m-Q4_K_M.gguf": (10, "1")}
    old = [entry(OLD, None, "Q4_K_M", q4)]
    new = [
        entry(NEW, "gpu", "Q5_K_M", {"m-Q5_K_M.gguf": (12, "2")}),
        entry(NEW, "cpu", "Q4_K_M", q4),
    ]
    change = diff_model(old, new)
    assert change.choices == (
        ChoiceChange("cpu", "Q4_K_M", "Q4_K_M", changed=False),
        ChoiceChange("gpu", "Q4_K_M", "Q5_K_M", changed=True),
    )
    assert (change.added, change.removed) == (("m-Q5_K_M.gguf",), ())
    assert change.size_delta == 12
