"""A command whose work is not built yet says so in the first line of its `--help` (and of the
command list), before anyone reads its flags as a promise."""

from __future__ import annotations

import pytest

from tests.fixtures.cli import CliRunner


@pytest.mark.parametrize("name", ["search", "export"])
def test_help_of_an_unbuilt_command_says_so_first(run_cli: CliRunner, name: str) -> None:
    """The description under `usage:` starts with "not built yet", and so does its entry in
    `modelsync --help`."""
    shown = run_cli(name, "--help")
    assert shown.exit_code == 0
    description = shown.stdout.split("\n\n")[1]
    assert description.startswith("not built yet:"), shown.stdout
    listing = run_cli("--help").stdout
    entry = next(line for line in listing.splitlines() if line.strip().startswith(name + " "))
    assert "not built yet:" in entry, listing
