"""A cloned project's `settings.target` may name any folder the user can write, and a model
name is one folder under it: `target = "~/.config"` with a model named `autostart` writes
`~/.config/autostart/<file>`, which a desktop session runs at login (no execute bit needed).
Refusing `/`, the home folder, the project and the store (test_review_target_escape) does not
cover it; a rule for targets outside the project (new or empty folder, or one sync already
placed into) is a product decision left open."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.cli import CliRunner


@pytest.mark.xfail(strict=True, reason="open: targets outside the project are not restricted")
def test_a_project_cannot_place_files_into_an_existing_config_folder(
    run_cli: CliRunner, tiny_project: dict[str, str], tmp_path: Path
) -> None:
    """Sync refuses (exit 2) a target outside the project that already holds files it did not
    place, and writes nothing there."""
    home = tmp_path / "home"
    config = home / ".config"
    config.mkdir(parents=True)
    (config / "user-dirs.dirs").write_text("# the user's\n")
    Path("models.toml").write_text(
        '[settings]\ntarget = "~/.config"\n[models.autostart]\nsource = "hf://org/tiny"\n'
        'include = ["*"]\n'
    )
    result = run_cli("sync", env={**tiny_project, "HOME": str(home)})
    assert not (config / "autostart").exists()
    assert result.exit_code == 2, result.stderr
