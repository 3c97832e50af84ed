"""Review of `export --bundle FOLDER` run again over a damaged bundle: the README's remedy
("export again on the connected machine and import again") must repair it, so a blob file of
the right size but other bytes is not taken as already there."""

from __future__ import annotations

import socket
from pathlib import Path

from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

WEIGHTS = bytes(range(256)) * 400
MANIFEST = '[models.tiny]\nsource = "hf://org/tiny"\ninclude = ["*"]\n'


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_export_again_repairs_a_damaged_folder_bundle(
    hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path, run_cli: CliRunner
) -> None:
    """A bundle blob swapped for same-sized other bytes is refused by `import` (exit 4); the
    next `export` into that folder writes it again, and `import` then admits it (exit 0)."""
    hub_repo("org/tiny", {"weights.bin": WEIGHTS})
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "models.toml").write_text(MANIFEST)
    env_a = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
        "MODELSYNC_STORE": str(tmp_path / "store-a"),
    }
    assert run_cli("-m", "a", "sync", env=env_a).exit_code == 0
    bundle = tmp_path / "usb" / "models"
    assert run_cli("-m", "a", "export", "--bundle", str(bundle), env=env_a).exit_code == 0
    (blob,) = (bundle / "blobs" / "sha256").iterdir()
    damaged = bytearray(blob.read_bytes())
    damaged[7] ^= 0xFF
    blob.unlink()  # a new file, as a bad copy to the disk would be
    blob.write_bytes(bytes(damaged))
    env_b = {
        **env_a,
        "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
        "MODELSYNC_STORE": str(tmp_path / "store-b"),
    }
    assert run_cli("import", str(bundle), env=env_b).exit_code == 4
    again = run_cli("-m", "a", "export", "--bundle", str(bundle), env=env_a)
    assert again.exit_code == 0, again.stderr
    assert blob.read_bytes() == WEIGHTS
    fixed = run_cli("import", str(bundle), env=env_b)
    assert fixed.exit_code == 0, fixed.stderr
