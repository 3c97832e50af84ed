"""`modelsync serve` as a real process: starts, answers the Hub API, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.fixtures.cli import CliRunner


def test_serve_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The server lists a repo folder, serves its file, needs the token to write, exits 0."""
    root = tmp_path / "hub"
    (root / "org" / "tiny").mkdir(parents=True)
    (root / "org" / "tiny" / "weights.gguf").write_bytes(b"GGUF" + bytes(100))
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("# user role token\ntester write hf_servetesttokenabcdefgh\n")
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelsync",
            "--json",
            "serve",
            "--root",
            str(root),
            "--port",
            "0",
            "--tokens-file",
            str(tokens),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MODELSYNC_STORE": str(tmp_path / "store")},
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        endpoint = ""
        for line in proc.stdout:
            event = json.loads(line)
            if event.get("command") == "serve":
                endpoint = event["endpoint"]
                break
        assert endpoint.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{endpoint}/api/models?search=tiny") as answer:  # noqa: S310
            assert [m["id"] for m in json.load(answer)] == ["org/tiny"]
        url = f"{endpoint}/org/tiny/resolve/main/weights.gguf"
        with urllib.request.urlopen(url) as answer:  # noqa: S310
            assert answer.read() == b"GGUF" + bytes(100)
            assert len(answer.headers["X-Repo-Commit"]) == 40
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert "hf_servetesttokenabcdefgh" not in proc.stderr.read()


def test_serve_refuses_a_missing_root(run_cli: CliRunner, tmp_path: Path) -> None:
    """A --root that is not a directory is a usage error naming it."""
    result = run_cli("serve", "--root", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert f"--root {tmp_path / 'nope'}: not a directory" in result.stderr


def test_serve_refuses_a_malformed_tokens_file(run_cli: CliRunner, tmp_path: Path) -> None:
    """A bad tokens line exits 2 naming file and line, never echoing the token."""
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("alice admin hf_secretsecretsecret\n")
    result = run_cli("serve", "--root", str(tmp_path), "--tokens-file", str(tokens))
    assert result.exit_code == 2
    assert f"{tokens}:1: role must be 'read' or 'write'" in result.stderr
    assert "hf_secretsecretsecret" not in result.stderr
