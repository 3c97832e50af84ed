"""The exit-code table of design.md section 2 lives in one place."""

from __future__ import annotations

import pytest

from modelsync import errors


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (errors.ModelsyncError, 1),
        (errors.UsageError, 2),
        (errors.ManifestError, 2),
        (errors.LockfileError, 2),
        (errors.NoVariantFitsError, 2),
        (errors.NotImplementedYetError, 2),
        (errors.StaleError, 3),
        (errors.IntegrityError, 4),
        (errors.RemoteError, 5),
        (errors.AuthError, 5),
        (errors.BusyError, 6),
    ],
)
def test_exit_codes_match_the_design(cls: type[errors.ModelsyncError], code: int) -> None:
    """Each error class carries the design's exit code."""
    assert cls("x").exit_code == code


def test_one_line_joins_message_and_hint_without_newlines() -> None:
    """Messages render as exactly one line, the fix after a semicolon."""
    err = errors.ManifestError("models.toml:3: models.x.quant: bad\nvalue", hint="use Q4_K_M")
    assert err.one_line() == "models.toml:3: models.x.quant: bad value; use Q4_K_M"
