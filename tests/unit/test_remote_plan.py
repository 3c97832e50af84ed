"""plan_push: which blobs a push uploads, finds on the remote, or cannot give (pure)."""

from __future__ import annotations

import pytest

from modelsync.remote.plan import NeededBlob, plan_push
from modelsync.rules import blob_key

A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_each_blob_lands_in_exactly_one_state_and_duplicates_count_once() -> None:
    """On the remote with its size: present; here: upload; neither: missing; a digest two
    files share is planned once (by the first file naming it)."""
    needed = [NeededBlob(A, 10, "m/a"), NeededBlob(B, 20, "m/b"), NeededBlob(C, 30, "m/c")]
    needed.append(NeededBlob(A, 10, "n/a-again"))
    plan = plan_push(needed, local={A, B}, remote={B: 20})
    assert [b.label for b in plan.upload] == ["m/a"]
    assert [b.label for b in plan.present] == ["m/b"]
    assert [b.label for b in plan.missing] == ["m/c"]
    assert plan.bytes_to_upload == 10
    assert plan


def test_an_object_of_another_size_under_the_key_is_uploaded_over() -> None:
    """A stray object under a blob's key, of the wrong size, is not that blob."""
    plan = plan_push([NeededBlob(A, 10, "m/a")], local={A}, remote={A: 9})
    assert [b.sha256 for b in plan.upload] == [A]


def test_nothing_to_upload_is_a_falsy_plan() -> None:
    """Everything there already: the plan is falsy."""
    assert not plan_push([NeededBlob(A, 1, "m/a")], local={A}, remote={A: 1})


@pytest.mark.parametrize(
    ("prefix", "digest"), [("", "A" * 64), ("x", "a" * 63), ("../x", "a" * 64), ("a//b", "a" * 64)]
)
def test_blob_keys_are_built_only_from_a_valid_digest_and_prefix(prefix: str, digest: str) -> None:
    """An upper-case or short digest, or a prefix with `..` or an empty part, makes no key."""
    with pytest.raises(ValueError, match="not a blob digest"):
        blob_key(prefix, digest)


def test_blob_key_layout() -> None:
    """`<prefix>/sha256/<hex>`, or `sha256/<hex>` at the top of the bucket."""
    assert blob_key("fleet/blobs", A) == f"fleet/blobs/sha256/{A}"
    assert blob_key("", A) == f"sha256/{A}"
