"""The example manifests stay valid: each parses into a project with its declared models."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelsync.manifest.load import load_manifest

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*/models.toml"))


def test_there_are_examples() -> None:
    """The examples folder holds manifests to test."""
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_manifest_parses(path: Path) -> None:
    """Every example manifest loads without errors and declares at least one model."""
    project = load_manifest(path)
    assert project.models
