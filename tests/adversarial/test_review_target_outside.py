"""A cloned project's `settings.target` may name any folder the user can write, and a model
name is one folder under it: `target = "~/.config"` with a model named `autostart` writes
`~/.config/autostart/<file>`, which a desktop session runs at login (no execute bit needed).
Refusing `/`, the home folder, the project and the store (test_review_target_escape) does not
cover it: a target outside the project must be new, empty, or one sync already placed into
(`.modelsync/` in it, which the user can also create to say "this folder is for models")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.cli import CliRunner


def test_a_project_cannot_place_files_into_an_existing_config_folder(
    run_cli: CliRunner, tiny_project: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Sync refuses (exit 2) a target outside the project that already holds files it did not
    place, and writes nothing there."""
    home = tmp_path_factory.mktemp("home")  # beside the project (the cwd), not inside it
    config = home / ".config"
    config.mkdir(parents=True)
    (config / "user-dirs.dirs").write_text("# the user's\n")
    Path("models.toml").write_text(
        '[settings]\ntarget = "~/.config"\n[models.autostart]\nsource = "hf://org/tiny"\n'
        'include = ["*"]\n'
    )
    env = {**tiny_project, "HOME": str(home)}
    result = run_cli("sync", env=env)
    assert not (config / "autostart").exists()
    assert result.exit_code == 2, result.stderr
    assert "outside the project" in result.stderr
    assert f"mkdir {config / '.modelsync'}" in result.stderr
    assert run_cli("sync", "--dry-run", env=env).exit_code == 2  # the dry run says so too


def test_an_outside_target_that_is_new_empty_or_claimed_is_used(
    run_cli: CliRunner, tiny_project: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """New and empty folders outside the project take files, and so does an existing one the
    user claimed with `.modelsync/`; the first sync's record then keeps it usable."""
    for name, prepare in (("new", None), ("empty", "empty"), ("claimed", "claimed")):
        target = tmp_path_factory.mktemp("outside") / name
        if prepare is not None:
            target.mkdir(parents=True)
        if prepare == "claimed":
            (target / "notes.txt").write_text("mine\n")
            (target / ".modelsync").mkdir()
        Path("models.toml").write_text(
            f'[settings]\ntarget = "{target}"\n[models.tiny]\nsource = "hf://org/tiny"\n'
            'include = ["*"]\n'
        )
        assert run_cli("sync", env=tiny_project).exit_code == 0, name
        assert (target / "tiny" / "config.json").is_file(), name
        assert run_cli("sync", env=tiny_project).exit_code == 0, name  # its own records now
