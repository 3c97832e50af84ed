"""`plan_mirror`: which locked commits a mirror serves, and which locks it refuses together."""

from __future__ import annotations

import pytest

from modelsync.errors import UsageError
from modelsync.server.mirror import Pin, PinnedFile, plan_mirror

A, B = "a" * 40, "b" * 40
W1 = PinnedFile("w.gguf", 10, "1" * 64)
W2 = PinnedFile("w.gguf", 10, "2" * 64)
CFG = PinnedFile("config.json", 2, "3" * 64)


def test_two_revisions_serve_both_commits_and_files_merge() -> None:
    """Two locks of one repo at different revisions: both commits, each revision its own; two
    models of one commit: the union of their files; a commit revision adds no name."""
    repos = plan_mirror(
        [
            Pin("x.lock", "org/m", "main", A, (W1,)),
            Pin("y.lock", "org/m", "v1", B, (W2,)),
            Pin("y.lock", "org/m", "main", A, (CFG,)),
            Pin("z.lock", "org/m", B, B, (W2,)),
        ]
    )
    repo = repos["org/m"]
    assert dict(repo.refs) == {"main": A, "v1": B}
    assert list(repo.commits[A]) == ["config.json", "w.gguf"]
    assert list(repo.commits[B]) == ["w.gguf"]


def test_one_revision_at_two_commits_is_refused() -> None:
    """`main` pinned to two commits by two locks: one line naming both."""
    with pytest.raises(UsageError) as err:
        plan_mirror(
            [Pin("x.lock", "org/m", "main", A, (W1,)), Pin("y.lock", "org/m", "main", B, (W1,))]
        )
    assert err.value.message == f"x.lock pins org/m main at {A} but y.lock pins it at {B}"


def test_one_path_of_one_commit_with_two_contents_is_refused() -> None:
    """A hand-edited lock disagreeing with another on a file of the same commit."""
    with pytest.raises(UsageError) as err:
        plan_mirror(
            [Pin("x.lock", "org/m", "main", A, (W1,)), Pin("y.lock", "org/m", "main", A, (W2,))]
        )
    assert "x.lock and y.lock disagree on org/m/w.gguf" in err.value.message
