"""settings.target expansion: `~` and `$NAME` from the environment, nothing left literal."""

from __future__ import annotations

import pytest

from modelsync.manifest.model import ManifestProblem, expand_target

ENV = {"ROOT": "/data", "TEAM": "ml", "EMPTY": ""}


@pytest.mark.parametrize(
    ("raw", "expanded"),
    [
        ("models", "models"),
        ("~", "/home/u"),
        ("~/llm", "/home/u/llm"),
        ("$ROOT/llm", "/data/llm"),
        ("${ROOT}/${TEAM}-llm", "/data/ml-llm"),
        ("~/$TEAM", "/home/u/ml"),
        ("a~b", "a~b"),
    ],
)
def test_expansions(raw: str, expanded: str) -> None:
    """A leading `~` is the home folder; `$NAME` and `${NAME}` are the variables' values."""
    assert expand_target(raw, ENV, "/home/u") == expanded


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("$NOPE/x", '"$NOPE/x": environment variable NOPE is not set'),
        ("${EMPTY}/x", '"${EMPTY}/x": environment variable EMPTY is empty'),
        ("~bob/x", '"~bob/x": only `~` alone is expanded, not `~user`'),
        ("cost$/x", '"cost$/x": "$" names no variable'),
        ("${ROOT/x", '"${ROOT/x": "$" names no variable'),
        ("${1X}", '"${1X}": "${1X}" names no variable'),
    ],
)
def test_what_cannot_be_expanded_is_a_problem_at_settings_target(raw: str, message: str) -> None:
    """An unset or empty variable, `~user` and a stray `$` are errors, never left literal (an
    empty value would turn `$X/llm` into `/llm`)."""
    with pytest.raises(ManifestProblem) as caught:
        expand_target(raw, ENV, "/home/u")
    assert caught.value.loc == ("settings", "target")
    assert caught.value.message == message
