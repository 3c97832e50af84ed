"""Review of `serve --root`: an uploaded model file lands in the repository folder and is
not also kept in the server's `.hub/` (no second copy of any model file)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download

from modelsync.server.runner import ServerHandle
from tests.fixtures.hub import HubFactory, HubTokens

# huggingface_hub's LFS upload passes bytes as `data=`: the client's warning, not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"
)

WEIGHTS = os.urandom(1 << 20)  # binary: stored in LFS


def _bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def test_uploaded_model_file_is_kept_once_and_still_served(
    hub: ServerHandle,
    hub_factory: HubFactory,
    hub_root: Path,
    hub_tokens: HubTokens,
    tmp_path: Path,
) -> None:
    """After an LFS upload to `main`, the folder holds the file and `.hub/` no copy of it; the
    commit still serves the bytes, after a restart too, and a second repository given the
    same bytes by digest serves them as well."""
    api = HfApi(endpoint=hub.endpoint, token=hub_tokens.writer)
    api.create_repo("tester/up")
    source = tmp_path / "w.safetensors"
    source.write_bytes(WEIGHTS)
    info = api.upload_file(
        path_or_fileobj=source, path_in_repo="w.safetensors", repo_id="tester/up"
    )
    assert (hub_root / "tester" / "up" / "w.safetensors").read_bytes() == WEIGHTS
    assert _bytes_under(hub_root / ".hub") < len(WEIGHTS)
    got = hf_hub_download(
        "tester/up",
        "w.safetensors",
        revision=info.oid,
        endpoint=hub.endpoint,
        cache_dir=tmp_path / "c1",
    )
    assert Path(got).read_bytes() == WEIGHTS
    hub.close()
    again = hub_factory()
    got = hf_hub_download(
        "tester/up",
        "w.safetensors",
        revision=info.oid,
        endpoint=again.endpoint,
        cache_dir=tmp_path / "c2",
    )
    assert Path(got).read_bytes() == WEIGHTS
