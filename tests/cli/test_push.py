"""`modelsync push` and sync through a blob remote, against moto's S3 server as a real process
(tests/fixtures/s3.py) and the local hub as the registry."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from modelsync.testing.s3_server import free_port
from tests.fixtures.cli import CliResult, CliRunner
from tests.fixtures.projects import TINY_WEIGHTS
from tests.fixtures.s3 import S3Bucket

WEIGHTS_SHA = hashlib.sha256(TINY_WEIGHTS).hexdigest()
CONFIG_SHA = hashlib.sha256(b"{}").hexdigest()


def weights_key(prefix: str = "fleet") -> str:
    return f"{prefix}/sha256/{WEIGHTS_SHA}"


def second_machine(tmp_path: Path, name: str = "m2") -> tuple[Path, Path]:
    """A copy of the project (models.toml and models.lock) and an empty store: another host."""
    folder = tmp_path / name
    folder.mkdir()
    for file in ("models.toml", "models.lock"):
        shutil.copy(file, folder / file)
    return folder / "models.toml", tmp_path / f"store-{name}"


def registry_down(env: dict[str, str]) -> dict[str, str]:
    """The same environment with the registry on a port nothing listens on."""
    return {**env, "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"}


def events(result: CliResult, name: str) -> list[dict[str, object]]:
    return [e for e in result.json_lines() if e.get("event") == name]


def test_push_uploads_each_blob_under_its_digest_and_a_second_push_uploads_nothing(
    pushed_project: dict[str, str], s3_bucket: S3Bucket, run_cli: CliRunner
) -> None:
    """push sends every blob the lock needs to `<prefix>/sha256/<hex>`, with the stored bytes;
    run again, it finds them there and sends nothing."""
    first = run_cli("push", "--json", env=pushed_project)
    assert first.exit_code == 0, first.stdout
    report = events(first, "report")[0]
    assert report["bytes_sent"] == len(TINY_WEIGHTS) + 2
    assert s3_bucket.objects() == {
        weights_key(): len(TINY_WEIGHTS),
        f"fleet/sha256/{CONFIG_SHA}": 2,
    }
    assert s3_bucket.get(weights_key()) == TINY_WEIGHTS

    again = run_cli("push", env=pushed_project)
    assert again.exit_code == 0
    assert "pushed to team" in again.stdout
    assert "0 blobs (0 B" in again.stdout
    assert "2 already there" in again.stdout


def test_sync_from_the_remote_with_the_registry_down(
    pushed_project: dict[str, str], run_cli: CliRunner, tmp_path: Path
) -> None:
    """A second machine syncs the same lock from the remote alone: the registry's port is
    closed, the files are placed, each fetch names the remote."""
    assert run_cli("push", env=pushed_project).exit_code == 0
    manifest, store = second_machine(tmp_path)
    result = run_cli(
        "-m",
        str(manifest),
        "--store",
        str(store),
        "sync",
        "--json",
        env=registry_down(pushed_project),
    )
    assert result.exit_code == 0, result.stdout
    assert (manifest.parent / "models" / "tiny" / "weights.bin").read_bytes() == TINY_WEIGHTS
    assert {e["remote"] for e in events(result, "fetch.done")} == {"team"}


def test_a_blob_the_remote_lacks_comes_from_the_registry(
    pushed_project: dict[str, str], s3_bucket: S3Bucket, run_cli: CliRunner, tmp_path: Path
) -> None:
    """With one of two blobs missing on the remote, that one comes from the registry, quietly
    (a debug event), the other from the remote."""
    assert run_cli("push", env=pushed_project).exit_code == 0
    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=weights_key())
    manifest, store = second_machine(tmp_path)
    result = run_cli(
        "-m", str(manifest), "--store", str(store), "-v", "sync", "--json", env=pushed_project
    )
    assert result.exit_code == 0, result.stdout
    done = {e["file"]: e.get("remote") for e in events(result, "fetch.done")}
    assert done == {"tiny/weights.bin": None, "tiny/config.json": "team"}
    assert [e["file"] for e in events(result, "remote.missing")] == ["tiny/weights.bin"]
    assert not events(result, "remote.unavailable")


def test_a_large_blob_goes_multipart_and_reads_back_whole(
    pushed_project: dict[str, str], s3_bucket: S3Bucket, run_cli: CliRunner
) -> None:
    """A blob larger than `--part-size` is uploaded in parts and completes as one object."""
    result = run_cli("push", "--part-size", "0.002", "--jobs", "2", env=pushed_project)
    assert result.exit_code == 0, result.stderr
    assert s3_bucket.get(weights_key()) == TINY_WEIGHTS
    assert not s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads")


def test_a_killed_push_is_resumed_from_its_uploaded_parts(
    pushed_project: dict[str, str], s3_bucket: S3Bucket, run_cli: CliRunner
) -> None:
    """An open multipart upload with its first part sent (what a push killed mid-blob
    leaves) is continued: that part is kept, only the rest is sent."""
    part = 2097  # int(0.002 MiB)
    key = weights_key()
    client = s3_bucket.client
    upload = client.create_multipart_upload(
        Bucket=s3_bucket.name, Key=key, ChecksumAlgorithm="SHA256"
    )
    client.upload_part(
        Bucket=s3_bucket.name,
        Key=key,
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=TINY_WEIGHTS[:part],
        ChecksumAlgorithm="SHA256",
    )
    assert key not in s3_bucket.objects()  # an unfinished upload is not an object
    result = run_cli("push", "--json", "--part-size", "0.002", env=pushed_project)
    assert result.exit_code == 0, result.stdout
    uploads = {u["file"]: u for u in events(result, "report")[0]["upload"]}  # type: ignore[attr-defined]
    assert uploads["tiny/weights.bin"]["parts_reused"] == 1
    assert uploads["tiny/weights.bin"]["sent"] == len(TINY_WEIGHTS) - part
    assert s3_bucket.get(key) == TINY_WEIGHTS
    assert events(result, "remote.upload_resumed")


def test_dry_run_lists_the_uploads_and_sends_nothing(
    pushed_project: dict[str, str], s3_bucket: S3Bucket, run_cli: CliRunner
) -> None:
    """`push --dry-run` names what it would upload; the bucket stays empty."""
    result = run_cli("push", "--dry-run", env=pushed_project)
    assert result.exit_code == 0
    assert "would push to team" in result.stdout
    assert "tiny/weights.bin" in result.stdout
    assert s3_bucket.objects() == {}


def test_blobs_this_store_lacks_are_reported_and_exit_3(
    pushed_project: dict[str, str], s3_bucket: S3Bucket, run_cli: CliRunner, tmp_path: Path
) -> None:
    """A store without the lock's blobs pushes nothing and says to sync first (exit 3)."""
    result = run_cli("--store", str(tmp_path / "empty-store"), "push", env=pushed_project)
    assert result.exit_code == 3
    assert "missing  tiny/weights.bin" in result.stdout
    assert "run `modelsync sync`" in result.stdout
    assert s3_bucket.objects() == {}


def test_adding_or_removing_a_remote_leaves_the_lock_fresh(
    tiny_project: dict[str, str], s3_bucket: S3Bucket, run_cli: CliRunner
) -> None:
    """Remotes say where bytes may come from, not what the lock pins: `lock --check` stays 0
    when one is added or removed."""
    assert run_cli("lock", env=tiny_project).exit_code == 0
    manifest = Path("models.toml")
    plain = manifest.read_text()
    manifest.write_text(plain + s3_bucket.remote_toml())
    assert run_cli("lock", "--check", env=tiny_project).exit_code == 0
    manifest.write_text(plain)
    assert run_cli("lock", "--check", env=tiny_project).exit_code == 0


def test_push_without_a_remote_is_a_usage_error(
    tiny_project: dict[str, str], run_cli: CliRunner
) -> None:
    """push with no `[remotes.*]` (or an unknown `--remote`) exits 2 naming the fix."""
    assert run_cli("lock", env=tiny_project).exit_code == 0
    result = run_cli("push", env=tiny_project)
    assert result.exit_code == 2
    assert "no [remotes.NAME] declared" in result.stderr


def test_offline_sync_does_not_use_the_remote(
    pushed_project: dict[str, str], run_cli: CliRunner, tmp_path: Path
) -> None:
    """Remotes are network: `--offline` with blobs only the remote holds exits 5 naming them,
    and neither the remote nor the registry is asked."""
    assert run_cli("push", env=pushed_project).exit_code == 0
    manifest, store = second_machine(tmp_path)
    result = run_cli(
        "-m", str(manifest), "--store", str(store), "--offline", "sync", env=pushed_project
    )
    assert result.exit_code == 5
    assert "--offline" in result.stderr
    assert "remote" not in result.stderr
    assert not (manifest.parent / "models" / "tiny" / "weights.bin").exists()
