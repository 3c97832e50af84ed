"""Session-wide test set-up.

huggingface_hub reads its settings at import time, so the environment is fixed here, before any
test module can import it: plain HTTP instead of Xet, no telemetry, an isolated HF_HOME, and no
token of the developer's leaking into tests.
"""

from __future__ import annotations

import os
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="modelsync-test-hf-home-")
os.environ.update(
    {
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
        "HF_HOME": _HF_HOME,
    }
)
for _name in (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_ENDPOINT",
    "HF_HUB_OFFLINE",
    "MODELSYNC_STORE",
):
    os.environ.pop(_name, None)

pytest_plugins = [
    "tests.fixtures.hub",
    "tests.fixtures.models",
    "tests.fixtures.cli",
    "tests.fixtures.projects",
    "tests.fixtures.ollama",
    "tests.fixtures.s3",
    "tests.fixtures.mirror",
]
