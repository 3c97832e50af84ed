"""Ollama sources end to end: lock and sync against the project's Ollama-registry emulation."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory
from tests.fixtures.models import GgufFactory
from tests.fixtures.ollama import LICENSE, MODEL, PARAMS, TEMPLATE, OllamaModels, OllamaRegistry


@pytest.fixture
def gemma(ollama_registry: OllamaRegistry, gguf_factory: GgufFactory) -> dict[str, bytes]:
    """`library/gemma3:1b` on the registry: a small GGUF model, a template, params, a license."""
    layers = {
        MODEL: gguf_factory("gemma.gguf", quant="Q4_K_M").read_bytes(),
        TEMPLATE: b"{{ .Prompt }}",
        PARAMS: b'{"stop":["<end_of_turn>"]}',
        LICENSE: b"Gemma Terms of Use",
    }
    ollama_registry.models.add("library/gemma3:1b", layers)
    return layers


def _project(
    registry: OllamaRegistry, source: str, tmp_path: Path, extra: str = ""
) -> dict[str, str]:
    Path("models.toml").write_text(
        f'[registries.ollama]\ntype = "ollama"\nendpoint = "{registry.endpoint}"\n\n'
        f'[models.gemma]\nsource = "{source}"\n{extra}'
    )
    return {
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "local-ollama"),
    }


def test_lock_pins_the_manifest_digest_and_every_layer(
    run_cli: CliRunner, ollama_registry: OllamaRegistry, gemma: dict[str, bytes], tmp_path: Path
) -> None:
    """`ollama://gemma3:1b` locks library/gemma3 at tag 1b: the manifest's digest as commit and
    each layer by path, size and SHA-256; a second lock writes the same bytes."""
    env = _project(ollama_registry, "ollama://gemma3:1b", tmp_path)
    result = run_cli("lock", env=env)
    assert result.exit_code == 0, result.stderr
    lock = tomllib.loads(Path("models.lock").read_text())
    (entry,) = lock["model"]
    manifest = ollama_registry.models.root / "manifests/registry.ollama.ai/library/gemma3/1b"
    assert entry["registry"] == "ollama"
    assert entry["repo"] == "library/gemma3"
    assert entry["revision"] == "1b"
    assert entry["commit"] == "sha256:" + hashlib.sha256(manifest.read_bytes()).hexdigest()
    files = {f["path"]: f for f in entry["file"]}
    assert sorted(files) == ["config.json", "gemma3-1b.gguf", "license", "params", "template"]
    model = gemma[MODEL]
    assert files["gemma3-1b.gguf"]["sha256"] == hashlib.sha256(model).hexdigest()
    assert files["gemma3-1b.gguf"]["size"] == len(model)
    assert entry["quant"] == "Q4_K_M"
    first = Path("models.lock").read_bytes()
    Path("models.lock").unlink()
    assert run_cli("lock", env=env).exit_code == 0
    assert Path("models.lock").read_bytes() == first


def test_sync_fetches_the_blobs_through_the_cdn_redirect(
    run_cli: CliRunner, ollama_registry: OllamaRegistry, gemma: dict[str, bytes], tmp_path: Path
) -> None:
    """Sync follows the registry's blob redirects to the second port and places a usable GGUF
    file named `<model>-<tag>.gguf` beside the other layers."""
    env = _project(ollama_registry, "library/gemma3:1b", tmp_path, 'registry = "ollama"\n')
    result = run_cli("sync", env=env)
    assert result.exit_code == 0, result.stderr
    placed = Path("models/gemma")
    assert (placed / "gemma3-1b.gguf").read_bytes() == gemma[MODEL]
    assert (placed / "template").read_bytes() == gemma[TEMPLATE]
    counters = ollama_registry.server.repos.counters
    assert counters.requests("ollama_blob") >= 5
    assert counters.requests("ollama_cdn_blob") >= 5


def test_a_missing_tag_names_the_model_and_the_tag(
    run_cli: CliRunner, ollama_registry: OllamaRegistry, gemma: dict[str, bytes], tmp_path: Path
) -> None:
    """A tag the registry lacks is bad input (exit 2) naming the model and the tag."""
    env = _project(ollama_registry, "ollama://gemma3:99b", tmp_path)
    result = run_cli("lock", env=env)
    assert result.exit_code == 2
    assert 'library/gemma3 has no tag "99b"' in result.stderr
    assert not Path("models.lock").exists()


def test_a_layer_whose_bytes_lie_fails_integrity_and_is_not_placed(
    run_cli: CliRunner, ollama_registry: OllamaRegistry, gguf_factory: GgufFactory, tmp_path: Path
) -> None:
    """A manifest whose model layer digest does not match the served bytes: exit 4 naming the
    digest; the model file is not placed and its bytes never enter the store (the config
    layer, which verified, is)."""
    good = gguf_factory("good.gguf", quant="Q4_K_M").read_bytes()
    claimed = hashlib.sha256(good).hexdigest()
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    ollama_registry.models.add("library/gemma3:1b", {MODEL: bytes(bad)}, claimed={MODEL: claimed})
    env = _project(ollama_registry, "ollama://gemma3:1b", tmp_path)
    assert run_cli("lock", env=env).exit_code == 0
    result = run_cli("sync", env=env)
    assert result.exit_code == 4, result.stderr
    assert claimed in result.stderr
    assert not Path("models/gemma/gemma3-1b.gguf").exists()
    layout = StoreLayout(tmp_path / "store")
    assert layout.blobs_dir.is_dir()  # the store exists, so the absence below means something
    assert not layout.blob_path(claimed).exists()
    # design.md section 10: one failing file never stops the others; what verified is placed
    assert sorted(p.name for p in Path("models/gemma").iterdir()) == ["config.json"]


def test_a_model_ollama_already_pulled_costs_no_download(
    run_cli: CliRunner, ollama_registry: OllamaRegistry, gemma: dict[str, bytes], tmp_path: Path
) -> None:
    """Blobs Ollama keeps (`OLLAMA_MODELS/blobs/sha256-<hex>`) are adopted: sync asks the
    registry for no blob at all."""
    env = _project(ollama_registry, "ollama://gemma3:1b", tmp_path)
    local = tmp_path / "local-ollama" / "blobs"
    local.mkdir(parents=True)
    for blob in (ollama_registry.models.root / "blobs").iterdir():
        (local / blob.name).write_bytes(blob.read_bytes())
    assert run_cli("lock", env=env).exit_code == 0
    counters = ollama_registry.server.repos.counters
    before = (counters.requests("ollama_blob"), counters.bytes_sent())
    result = run_cli("sync", env=env)
    assert result.exit_code == 0, result.stderr
    assert (counters.requests("ollama_blob"), counters.bytes_sent()) == before
    assert "5 adopted" in result.stdout
    assert Path("models/gemma/gemma3-1b.gguf").read_bytes() == gemma[MODEL]


def _read_back_as_ollama(models: Path, name: str) -> Any:
    """Read a manifest as Ollama does (`manifest.ParseNamedManifest`) and check that every blob
    it names exists as `blobs/sha256-<hex>` with that size and digest."""
    repo, _, tag = name.partition(":")
    path = models / "manifests" / "registry.ollama.ai" / repo / tag
    document = json.loads(path.read_bytes())
    assert document["schemaVersion"] == 2
    assert document["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert document["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    for layer in [document["config"], *document["layers"]]:
        digest = layer["digest"]
        assert digest.startswith("sha256:")
        blob = models / "blobs" / digest.replace(":", "-")
        data = blob.read_bytes()
        assert len(data) == layer["size"]
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return document


def test_export_ollama_writes_a_manifest_ollama_reads(
    run_cli: CliRunner, ollama_registry: OllamaRegistry, gemma: dict[str, bytes], tmp_path: Path
) -> None:
    """`export --ollama` hardlinks the store's blobs into a temp Ollama dir and writes a
    manifest naming them with their media types, plus a gguf config blob; a second export
    changes nothing."""
    env = _project(ollama_registry, "ollama://gemma3:1b", tmp_path)
    assert run_cli("sync", env=env).exit_code == 0
    target = tmp_path / "ollama-home"
    env["OLLAMA_MODELS"] = str(target)
    result = run_cli("export", "--ollama", "mygemma:1b", env=env)
    assert result.exit_code == 0, result.stderr
    manifest = target / "manifests/registry.ollama.ai/library/mygemma/1b"
    assert str(manifest) in result.stdout
    assert "hardlinked" in result.stdout
    document = _read_back_as_ollama(target, "library/mygemma:1b")
    types = [layer["mediaType"] for layer in document["layers"]]
    assert types[0] == MODEL
    assert sorted(types[1:]) == sorted([LICENSE, PARAMS, TEMPLATE])
    model_digest = document["layers"][0]["digest"]
    blob = target / "blobs" / model_digest.replace(":", "-")
    placed = Path("models/gemma/gemma3-1b.gguf")
    assert blob.stat().st_ino == placed.stat().st_ino  # the same bytes, not a copy
    config_digest = document["config"]["digest"]
    config = json.loads((target / "blobs" / config_digest.replace(":", "-")).read_bytes())
    assert config["model_format"] == "gguf"
    assert config["file_type"] == "Q4_K_M"
    assert config["model_family"] == "llama"
    before = manifest.read_bytes()
    again = run_cli("export", "--ollama", "mygemma:1b", env=env)
    assert again.exit_code == 0
    assert "5 already there" in again.stdout
    assert manifest.read_bytes() == before


def test_export_ollama_of_a_hub_model(
    run_cli: CliRunner,
    hub_repo: HubRepoFactory,
    hub: ServerHandle,
    gguf_factory: GgufFactory,
    tmp_path: Path,
) -> None:
    """A Hugging Face GGUF model exports as one model layer (named `library/<name>:latest`)."""
    weights = gguf_factory("tiny-Q8_0.gguf", quant="Q8_0")
    hub_repo("org/tiny", {"tiny-Q8_0.gguf": weights, "README.md": "# tiny"})
    Path("models.toml").write_text('[models.tiny]\nsource = "hf://org/tiny:Q8_0"\n')
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }
    assert run_cli("sync", env=env).exit_code == 0
    env["OLLAMA_MODELS"] = str(tmp_path / "ollama-home")
    result = run_cli("export", "--ollama", "tiny", env=env)
    assert result.exit_code == 0, result.stderr
    document = _read_back_as_ollama(tmp_path / "ollama-home", "library/tiny:latest")
    (layer,) = document["layers"]
    assert layer["mediaType"] == MODEL
    assert layer["digest"] == "sha256:" + hashlib.sha256(weights.read_bytes()).hexdigest()


def test_export_before_sync_says_to_sync(
    run_cli: CliRunner, ollama_registry: OllamaRegistry, gemma: dict[str, bytes], tmp_path: Path
) -> None:
    """Exporting a locked model whose blobs the store lacks is exit 2, writing nothing."""
    env = _project(ollama_registry, "ollama://gemma3:1b", tmp_path)
    assert run_cli("lock", env=env).exit_code == 0
    env["OLLAMA_MODELS"] = str(tmp_path / "ollama-home")
    result = run_cli("export", "--ollama", "gemma", env=env)
    assert result.exit_code == 2
    assert "modelsync sync" in result.stderr
    assert not (tmp_path / "ollama-home").exists()


def test_a_changed_entry_keeps_the_pinned_manifest(
    run_cli: CliRunner, ollama_registry: OllamaRegistry, gemma: dict[str, bytes], tmp_path: Path
) -> None:
    """Editing the entry (its context) re-locks at the pinned manifest digest, not at whatever
    the tag points to now; `lock --upgrade` moves to the tag's current manifest."""
    env = _project(ollama_registry, "ollama://gemma3:1b", tmp_path, "context = 512\n")
    assert run_cli("lock", env=env).exit_code == 0
    first = tomllib.loads(Path("models.lock").read_text())["model"][0]
    ollama_registry.models.add("library/gemma3:old", {**gemma})  # keeps the old manifest served
    moved = ollama_registry.models.add("library/gemma3:1b", {**gemma, LICENSE: b"v2"})
    Path("models.toml").write_text(Path("models.toml").read_text().replace("512", "1024"))
    assert run_cli("lock", "--check", env=env).exit_code == 3
    assert run_cli("lock", env=env).exit_code == 0
    kept = tomllib.loads(Path("models.lock").read_text())["model"][0]
    assert kept["commit"] == first["commit"]
    assert kept["context"] == 1024
    assert run_cli("lock", "--upgrade", env=env).exit_code == 0
    upgraded = tomllib.loads(Path("models.lock").read_text())["model"][0]
    assert upgraded["commit"] == moved.digest


def test_serve_ollama_models_folder(tmp_path: Path) -> None:
    """`modelsync serve --ollama-models DIR` answers Ollama's manifest and blob routes over a
    folder in Ollama's own layout (what `ollama pull` left there)."""
    models = OllamaModels(tmp_path / "ollama-models")
    pushed = models.add("library/m:1", {MODEL: b"GGUF-bytes"})
    (tmp_path / "hub").mkdir()
    command = [
        sys.executable,
        "-m",
        "modelsync",
        "--json",
        "serve",
        "--root",
        str(tmp_path / "hub"),
    ]
    command += ["--port", "0", "--ollama-models", str(models.root)]
    env = {**os.environ, "MODELSYNC_STORE": str(tmp_path / "store")}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        endpoint = next(
            json.loads(line)["endpoint"]
            for line in proc.stdout
            if json.loads(line).get("command") == "serve"
        )
        with urllib.request.urlopen(f"{endpoint}/v2/library/m/manifests/1") as answer:  # noqa: S310
            assert answer.read() == pushed.body
            assert answer.headers["Docker-Content-Digest"] == pushed.digest
        digest = "sha256:" + hashlib.sha256(b"GGUF-bytes").hexdigest()
        with urllib.request.urlopen(f"{endpoint}/v2/library/m/blobs/{digest}") as answer:  # noqa: S310
            assert answer.read() == b"GGUF-bytes"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
