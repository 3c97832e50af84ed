"""A bucket whose listing lies: an object under a blob's key with the right size and other
bytes. Plain `push` compares sizes only (one listing), so it would skip that blob forever;
`push --check` reads the objects back and replaces the bad ones."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.cli.test_push import CONFIG_SHA, WEIGHTS_SHA, events, second_machine, weights_key
from tests.fixtures.cli import CliRunner
from tests.fixtures.projects import TINY_WEIGHTS
from tests.fixtures.s3 import S3Bucket


def test_push_check_replaces_an_object_whose_bytes_are_not_the_blob(
    pushed_project: dict[str, str], s3_bucket: S3Bucket, run_cli: CliRunner, tmp_path: Path
) -> None:
    """The sync that meets the bad object names `push --check`; plain push leaves it (same
    size); `push --check` reads every object, uploads the blob over the bad one only (exit 0),
    and the next machine's sync takes it from the remote without a warning."""
    assert run_cli("push", env=pushed_project).exit_code == 0
    s3_bucket.put(weights_key(), b"X" * len(TINY_WEIGHTS))
    manifest, store = second_machine(tmp_path)
    sync = run_cli("-m", str(manifest), "--store", str(store), "sync", env=pushed_project)
    assert sync.exit_code == 0
    assert "modelsync push --check" in sync.stderr

    plain = run_cli("push", env=pushed_project)
    assert "0 blobs" in plain.stdout
    checked = run_cli("push", "--check", "--json", env=pushed_project)
    assert checked.exit_code == 0, checked.stderr
    report = events(checked, "report")[0]
    assert [u["sha256"] for u in report["upload"]] == [WEIGHTS_SHA]  # type: ignore[attr-defined]
    assert [e["blob"] for e in events(checked, "push.replacing")] == [WEIGHTS_SHA]
    assert s3_bucket.get(weights_key()) == TINY_WEIGHTS

    manifest, store = second_machine(tmp_path, "m3")
    again = run_cli(
        "-m", str(manifest), "--store", str(store), "sync", "--json", env=pushed_project
    )
    assert again.exit_code == 0
    assert not events(again, "remote.corrupt")
    assert {e.get("remote") for e in events(again, "fetch.done")} == {"team"}


def test_an_object_of_another_size_is_one_corrupt_file_not_a_remote_down(
    pushed_project: dict[str, str], s3_bucket: S3Bucket, run_cli: CliRunner, tmp_path: Path
) -> None:
    """A shorter object under one blob's key (a stray upload) is that file's problem: it is
    named in a `remote.corrupt` warning with both sizes and fetched from the registry, while
    the remote still serves the next file; it is not taken for a remote that is down."""
    assert run_cli("push", env=pushed_project).exit_code == 0
    s3_bucket.put(f"fleet/sha256/{CONFIG_SHA}", b"{")  # config.json is fetched first
    manifest, store = second_machine(tmp_path)
    human = run_cli("-m", str(manifest), "--store", str(store), "sync", env=pushed_project)
    assert "tiny/config.json has the wrong size (size 1 instead of 2)" in human.stderr
    shutil.rmtree(manifest.parent / "models")  # nothing to adopt from for the next machine
    manifest, store = second_machine(tmp_path, "m3")
    result = run_cli(
        "-m",
        str(manifest),
        "--store",
        str(store),
        "sync",
        "--jobs",
        "1",
        "--json",
        env=pushed_project,
    )
    assert result.exit_code == 0, result.stdout
    assert not events(result, "remote.unavailable")
    [corrupt] = events(result, "remote.corrupt")
    assert corrupt["file"] == "tiny/config.json"
    assert "size 1 instead of 2" in str(corrupt["actual"])
    done = {e["file"]: e.get("remote") for e in events(result, "fetch.done")}
    assert done == {"tiny/config.json": None, "tiny/weights.bin": "team"}
