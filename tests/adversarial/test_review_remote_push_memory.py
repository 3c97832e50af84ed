"""`modelsync push` streams each multipart part from the blob file: its memory does not grow
with `--part-size` (before, each part was read whole into memory, so `--part-size 5000
--jobs 4` needed some 20 GiB).

Measured without timing: the peak RSS of a real `push` child (getrusage RUSAGE_CHILDREN),
pushing a blob of one PART-byte part and a little more, against the peak of the same
command's `--dry-run` (same imports, client and listing, no upload)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cli.test_push import events
from tests.fixtures.cli import CliResult, CliRunner
from tests.fixtures.hub import HubRepoFactory
from tests.fixtures.s3 import S3Bucket

PART_MIB = 32
PART = PART_MIB << 20
BIG = b"m" * (PART + 4096)  # two parts: PART bytes, then 4 KiB
GROWTH_BOUND = PART // 3  # reading the part whole grows RSS by PART at least


# The child is started by a small Python in between: Linux carries a process's peak RSS
# across exec, so a child forked straight from pytest would start at pytest's peak.
MEASURE = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
)


def push_peak(args: list[str], env: dict[str, str], folder: Path) -> tuple[CliResult, int]:
    """Run `modelsync ARGS` as a child; its result and peak RSS in bytes (Linux: KiB)."""
    err = folder / "stderr"
    with err.open("w") as stderr:
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, sys.executable, "-m", "modelsync", *args],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=60,
            check=False,
        )
    *lines, peak = done.stdout.splitlines()
    return CliResult(done.returncode, "\n".join(lines), err.read_text()), int(peak) << 10


def test_a_push_of_one_large_part_does_not_hold_the_part_in_memory(
    hub_repo: HubRepoFactory,
    tiny_project: dict[str, str],
    s3_bucket: S3Bucket,
    run_cli: CliRunner,
    tmp_path: Path,
) -> None:
    """A blob pushed as a PART-byte part plus a small one: the push's peak RSS stays within
    PART/3 of its dry run's, and the object reads back as the blob."""
    hub_repo("org/tiny", {"weights.bin": BIG})
    manifest = Path("models.toml")
    manifest.write_text(manifest.read_text() + s3_bucket.remote_toml())
    env = {**tiny_project, **s3_bucket.env}  # the store: run_cli's, in os.environ
    assert run_cli("sync", env=env).exit_code == 0
    push = ["push", "--part-size", str(PART_MIB), "--jobs", "1", "--json"]

    dry, dry_peak = push_peak([*push, "--dry-run"], env, tmp_path)
    assert dry.exit_code == 0, dry.stderr
    result, peak = push_peak(push, env, tmp_path)
    assert result.exit_code == 0, result.stderr
    [upload] = [u for u in events(result, "report")[0]["upload"] if u["size"] == len(BIG)]  # type: ignore[attr-defined]
    assert upload["sent"] == len(BIG)
    key = f"fleet/sha256/{upload['sha256']}"
    assert s3_bucket.objects()[key] == len(BIG)
    assert peak - dry_peak < GROWTH_BOUND, (peak >> 20, dry_peak >> 20)


def test_a_part_size_below_the_s3_minimum_is_used_with_one_warning(
    pushed_project: dict[str, str], s3_bucket: S3Bucket, run_cli: CliRunner
) -> None:
    """`--part-size` under S3's 5 MiB is accepted (S3-compatible servers may take it) with one
    warning naming the rule, as AWS refuses such an upload only once every part is sent; a
    part size at the minimum warns of nothing."""
    small = run_cli("push", "--part-size", "0.002", env=pushed_project)
    assert small.exit_code == 0, small.stderr
    warned = [line for line in small.stderr.splitlines() if "below S3's minimum part" in line]
    assert len(warned) == 1, small.stderr
    assert "5.0 MiB" in warned[0]
    assert "--part-size 5 or more" in warned[0]
    assert len(s3_bucket.objects()) == 2

    s3_bucket.client.delete_objects(
        Bucket=s3_bucket.name, Delete={"Objects": [{"Key": k} for k in s3_bucket.objects()]}
    )
    usual = run_cli("push", "--part-size", "5", env=pushed_project)
    assert usual.exit_code == 0, usual.stderr
    assert "below S3's minimum part" not in usual.stderr
    assert len(s3_bucket.objects()) == 2
