"""The command surface of design.md section 2: every command exists, usage errors exit 2."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from modelsync import __version__
from modelsync.cli.commands import COMMANDS
from modelsync.ops.init import template_text
from tests.fixtures.cli import CliRunner

DESIGN_COMMANDS = {
    "init": ["--force"],
    "lock": ["--check", "--upgrade", "--upgrade-model", "--profile", "--explain"],
    "sync": [
        "--frozen",
        "--locked",
        "--dry-run",
        "--model",
        "--profile",
        "--jobs",
        "--link",
        "--repair",
    ],
    "status": [],
    "verify": ["--full", "--model"],
    "outdated": ["--model"],
    "bench": [
        "--model",
        "--profile",
        "--n-prompt",
        "--n-gen",
        "--ctx",
        "--gpu-layers",
        "--repetitions",
        "--timeout",
        "--force",
    ],
    "publish": ["--dry-run", "--target"],
    "push": ["--remote", "--model", "--dry-run"],
    "gc": ["--dry-run"],
    "search": [
        "--author",
        "--quant",
        "--params",
        "--sort",
        "--limit",
        "--gated",
        "--files",
        "--add",
    ],
    "hw": ["--model"],
    "store": [],
    "export": ["--ollama", "--bundle", "--dry-run"],
    "import": ["BUNDLE"],
    "serve": ["--host", "--port"],
}
GLOBAL_FLAGS = [
    "--manifest",
    "--store",
    "--json",
    "--verbose",
    "--quiet",
    "--offline",
    "--no-progress",
    "--no-wait",
    "--wait-timeout",
]


def test_every_design_command_is_registered() -> None:
    """The CLI registers exactly the commands the design lists."""
    assert {c.name for c in COMMANDS} == set(DESIGN_COMMANDS)


@pytest.mark.parametrize(("name", "flags"), sorted(DESIGN_COMMANDS.items()))
def test_command_help_lists_its_flags(run_cli: CliRunner, name: str, flags: list[str]) -> None:
    """`modelsync CMD --help` exits 0 and documents the command's and the global flags."""
    result = run_cli(name, "--help")
    assert result.exit_code == 0
    for flag in [*flags, *GLOBAL_FLAGS]:
        assert flag in result.stdout, f"{name} --help lacks {flag}"


def test_export_without_a_destination_exits_2(run_cli: CliRunner) -> None:
    """`export` with neither --ollama nor --bundle: one line naming both, exit 2."""
    result = run_cli("export")
    assert result.exit_code == 2
    assert result.stderr == (
        "modelsync: error: export: say where to: --ollama NAME or --bundle PATH; "
        "modelsync export --help\n"
    )


def test_unknown_command_is_a_usage_error(run_cli: CliRunner) -> None:
    """An unknown command exits 2 with one line pointing at --help."""
    result = run_cli("frobnicate")
    assert result.exit_code == 2
    assert result.stderr.startswith("modelsync: error: argument COMMAND: invalid choice")
    assert "modelsync --help" in result.stderr
    assert result.stderr.count("\n") == 1


def test_unknown_flag_is_a_usage_error(run_cli: CliRunner) -> None:
    """An unknown flag exits 2 and names the flag."""
    result = run_cli("sync", "--bogus")
    assert result.exit_code == 2
    assert "unrecognized arguments: --bogus" in result.stderr


def test_bad_flag_value_names_the_command(run_cli: CliRunner) -> None:
    """A flag with a bad value exits 2, naming the command, the flag and its help."""
    result = run_cli("sync", "--jobs", "many")
    assert result.exit_code == 2
    assert "modelsync sync: argument --jobs: invalid int value: 'many'" in result.stderr
    assert "run `modelsync sync --help`" in result.stderr


def test_no_command_is_a_usage_error(run_cli: CliRunner) -> None:
    """Running without a command exits 2 and says how to list them."""
    result = run_cli()
    assert result.exit_code == 2
    assert "no command given" in result.stderr


def test_global_options_work_after_the_command(run_cli: CliRunner, tmp_path: Path) -> None:
    """`modelsync init --json -m X` means the same as `modelsync --json -m X init`."""
    for n, args in enumerate((("init", "--json", "-m"), ("--json", "-m"))):
        target = tmp_path / f"p{n}" / "models.toml"
        argv = [*args, str(target)] if args[0] == "init" else [*args, str(target), "init"]
        result = run_cli(*argv)
        assert result.exit_code == 0
        [event] = result.json_lines()
        assert event == {
            "event": "report",
            "command": "init",
            "exit_code": 0,
            "path": str(target),
            "replaced": False,
        }
        assert target.exists()


def test_errors_in_json_mode_are_json_objects(run_cli: CliRunner) -> None:
    """With --json an error is also reported as one JSON object on stdout."""
    result = run_cli("export", "--json")
    assert result.exit_code == 2
    [event] = result.json_lines()
    assert event["event"] == "error"
    assert event["exit_code"] == 2
    assert "say where to: --ollama NAME or --bundle PATH" in event["message"]


def test_version(run_cli: CliRunner) -> None:
    """`--version` prints the package version and exits 0."""
    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"modelsync {__version__}"


def test_init_writes_the_commented_template(run_cli: CliRunner, tmp_path: Path) -> None:
    """`init` writes a models.toml equal to models.toml.example, which parses as TOML."""
    target = tmp_path / "proj" / "models.toml"
    result = run_cli("-m", str(target), "init")
    assert result.exit_code == 0
    text = target.read_text()
    example = Path(__file__).parents[2] / "models.toml.example"
    assert text == example.read_text() == template_text()
    parsed = tomllib.loads(text)
    assert parsed["settings"]["target"] == "models"
    assert parsed["models"]["gemma"]["quant"] == "best"
    assert "# " in text  # commented, not bare


def test_init_refuses_to_overwrite_without_force(run_cli: CliRunner, tmp_path: Path) -> None:
    """A second `init` exits 2 and keeps the user's file; `--force` replaces it."""
    target = tmp_path / "models.toml"
    target.write_text("# mine\n")
    refused = run_cli("-m", str(target), "init")
    assert refused.exit_code == 2
    assert "already exists" in refused.stderr
    assert "--force" in refused.stderr
    assert target.read_text() == "# mine\n"
    forced = run_cli("-m", str(target), "init", "--force", "--json")
    assert forced.exit_code == 0
    assert forced.json_lines() == [
        {
            "event": "report",
            "command": "init",
            "exit_code": 0,
            "path": str(target),
            "replaced": True,
        }
    ]
    assert target.read_text() == template_text()


def test_console_entry_point_runs_as_a_process(run_cli_process: CliRunner) -> None:
    """`python -m modelsync` works as a real process and returns design exit codes."""
    assert run_cli_process("--version").exit_code == 0
    usage = run_cli_process("sync", "--bogus")
    assert usage.exit_code == 2
    assert usage.stderr.startswith("modelsync: error:")
    assert "Traceback" not in usage.stderr
