"""An idle run stays light: `--help`, a no-op `sync` and `status` do not import the network stack
or rich (the speed issue's "instant when idle", checked by module names, never by timings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.cli import CliRunner

# Runs the CLI, then writes the top-level packages this process loaded to the file in argv[1].
WRAPPER = """
import json, sys
from modelsync.cli.main import main
code = main(sys.argv[2:])
loaded = sorted({name.split(".")[0] for name, mod in sys.modules.items() if mod is not None})
with open(sys.argv[1], "w") as out:
    json.dump({"exit_code": code, "modules": loaded}, out)
"""

HEAVY = {"aiohttp", "rich", "pydantic", "tomlkit", "structlog", "asyncio"}
IDLE_NEVER = {*HEAVY, "filelock", "tomllib"}


def loaded_by(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, set[str]]:
    """Run `modelsync ARGS` in a fresh interpreter; its exit code and the packages it loaded."""
    record = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-c", WRAPPER, str(record), *args],
        env={**os.environ, **env},
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    found = json.loads(record.read_text())
    return found["exit_code"], set(found["modules"])


@pytest.fixture
def env(tiny_project: dict[str, str], cli_env: dict[str, str]) -> dict[str, str]:
    """The tiny project's environment with the isolated store (tests/fixtures/projects.py)."""
    return {**cli_env, **tiny_project}


def test_help_loads_none_of_the_heavy_packages(tmp_path: Path, env: dict[str, str]) -> None:
    """`modelsync --help` builds the whole parser without structlog, asyncio, pydantic, tomlkit,
    rich or aiohttp."""
    code, modules = loaded_by(tmp_path, env, "--help")
    assert code == 0
    assert "modelsync" in modules
    assert modules & HEAVY == set()


def test_a_no_op_sync_and_status_load_no_network_stack_and_no_rich(
    tmp_path: Path, env: dict[str, str], run_cli_process: CliRunner
) -> None:
    """The first sync downloads (so it loads aiohttp, proving the check sees imports); a second
    sync with nothing to do, and `status`, load no aiohttp, rich, tomlkit (the manifest is read
    with tomllib) or filelock (no store lock is taken), nor pydantic (the lock and the manifest
    are read by schema.py's fast reader), structlog (events go straight to the console) or
    asyncio (no event loop when there is nothing to await), nor tomllib (the first sync kept
    both files' parse in the store: toml_cache.py)."""
    assert run_cli_process("lock", env=env).exit_code == 0
    code, first = loaded_by(tmp_path, env, "sync")
    assert code == 0
    assert "aiohttp" in first
    for args in (("sync",), ("status",), ("-q", "sync")):
        code, modules = loaded_by(tmp_path, env, *args)
        assert code == 0, args
        assert modules & {"aiohttp", "rich", "tomlkit", "filelock", "tomllib", *HEAVY} == set(), (
            args
        )
