"""What changes in one model's locked entries between two locks (pure): the commit, the files
added, removed and changed, the size delta, and per profile whether the choice changed.

`outdated` compares the lock with the model resolved at the upstream commit; `lock --upgrade`
compares the lock it replaces with the one it writes. Both go through `diff_model`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelsync.lockfile.model import LockedModel


@dataclass(frozen=True, slots=True)
class ChoiceChange:
    """What one profile uses before and after (`-` for the entry every profile shares)."""

    profile: str | None
    old: str
    new: str
    changed: bool


@dataclass(frozen=True, slots=True)
class ModelChange:
    """One model's entries before and after; falsy when nothing differs."""

    name: str
    old_commit: str | None
    new_commit: str | None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    """Paths in both whose size or SHA-256 differ."""
    size_delta: int = 0
    choices: tuple[ChoiceChange, ...] = ()

    def __bool__(self) -> bool:
        return (
            self.old_commit != self.new_commit
            or bool(self.added or self.removed or self.changed)
            or any(c.changed for c in self.choices)
        )

    @property
    def choice_changed(self) -> bool:
        """Whether some profile would use other files."""
        return any(c.changed for c in self.choices)


def label(entry: LockedModel) -> str:
    """How a choice reads in one word: its quantization, else its files' count."""
    return entry.quant or f"{len(entry.files)} files"


def diff_model(old: Sequence[LockedModel], new: Sequence[LockedModel]) -> ModelChange:
    """Compare one model's entries (one shared, or one per profile) in two locks."""
    assert old
    assert new
    before = {f.path: (f.size, f.sha256) for e in old for f in e.files}
    after = {f.path: (f.size, f.sha256) for e in new for f in e.files}
    named = sorted({e.profile for e in (*old, *new) if e.profile is not None})
    profiles: list[str | None] = [*named] or [None]
    choices = []
    for profile in profiles:
        was, now = _entry(old, profile), _entry(new, profile)
        paths_was = [f.path for f in was.files]
        paths_now = [f.path for f in now.files]
        changed = (was.quant, paths_was) != (now.quant, paths_now)
        choices.append(ChoiceChange(profile, label(was), label(now), changed))
    return ModelChange(
        name=old[0].name,
        old_commit=old[0].commit,
        new_commit=new[0].commit,
        added=tuple(sorted(after.keys() - before.keys())),
        removed=tuple(sorted(before.keys() - after.keys())),
        changed=tuple(sorted(p for p in before.keys() & after.keys() if before[p] != after[p])),
        size_delta=sum(s for s, _ in after.values()) - sum(s for s, _ in before.values()),
        choices=tuple(choices),
    )


def _entry(entries: Sequence[LockedModel], profile: str | None) -> LockedModel:
    """The entry a profile uses: its own, else the shared one (as `Lockfile.for_profile`)."""
    own = next((e for e in entries if e.profile == profile), None)
    shared = next((e for e in entries if e.profile is None), None)
    return own or shared or entries[0]
