"""`modelsync serve --root` as a real process: model files served where they lie, no second
copy in the server's own folder, and folders added or changed while it runs picked up."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from tests.fixtures.hub import HttpAnswer, http_request
from tests.fixtures.mirror import MirrorFactory

WEIGHTS = bytes(range(256)) * 8192  # 2 MiB; `.gguf` is stored in LFS
WAIT_S = 20.0


def _until(endpoint: str, path: str, done: Callable[[HttpAnswer], bool]) -> HttpAnswer:
    """Ask until the answer is what `done` wants (the server looks at its folders at most
    once a second), or give up after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while True:
        answer = http_request(endpoint, "GET", path)
        if done(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def _bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def test_root_serves_model_files_in_place(mirror_factory: MirrorFactory, tmp_path: Path) -> None:
    """A model file is served from its folder: the server's `.hub` folder holds no copy."""
    root = tmp_path / "hub"
    (root / "org" / "m").mkdir(parents=True)
    (root / "org" / "m" / "model.gguf").write_bytes(WEIGHTS)
    (root / "org" / "m" / "config.json").write_text("{}\n")
    server = mirror_factory("--root", str(root), store=tmp_path / "store")
    answer = http_request(server.endpoint, "GET", "/org/m/resolve/main/model.gguf")
    assert answer.status == 200
    assert answer.body == WEIGHTS
    assert _bytes_under(root / ".hub") < len(WEIGHTS)


def test_root_picks_up_folders_added_and_files_changed_while_running(
    mirror_factory: MirrorFactory, tmp_path: Path
) -> None:
    """A repository folder created after start appears; a changed file gets a new commit whose
    bytes are the new ones; the old commit's replaced file is no longer served; a removed
    folder's repository goes."""
    root = tmp_path / "hub"
    root.mkdir()
    server = mirror_factory("--root", str(root), store=tmp_path / "store")
    assert http_request(server.endpoint, "GET", "/api/models/org/new").status == 404
    folder = root / "org" / "new"
    folder.mkdir(parents=True)
    (folder / "model.gguf").write_bytes(WEIGHTS)
    found = _until(server.endpoint, "/api/models/org/new", lambda a: a.status == 200)
    assert found.status == 200
    first = json.loads(found.body)["sha"]
    (folder / "model.gguf").write_bytes(WEIGHTS[::-1])
    moved = _until(
        server.endpoint,
        "/api/models/org/new",
        lambda a: a.status == 200 and json.loads(a.body)["sha"] != first,
    )
    second = json.loads(moved.body)["sha"]
    assert second != first
    new_bytes = http_request(server.endpoint, "GET", f"/org/new/resolve/{second}/model.gguf")
    assert new_bytes.body == WEIGHTS[::-1]
    gone = http_request(server.endpoint, "GET", f"/org/new/resolve/{first}/model.gguf")
    assert (gone.status, gone.headers.get("x-error-code")) == (404, "EntryNotFound")
    shutil.rmtree(folder)
    removed = _until(server.endpoint, "/api/models/org/new", lambda a: a.status == 404)
    assert (removed.status, removed.headers.get("x-error-code")) == (404, "RepoNotFound")
