"""Ollama's manifest as locked files (pure): names by media type, refusals, the export format."""

from __future__ import annotations

import json

import pytest

from modelsync.registry.ollama_format import (
    CONFIG_MEDIA_TYPE,
    MODEL,
    TENSOR,
    Layer,
    OllamaManifest,
    config_blob,
    layout,
    manifest_bytes,
    media_type_of,
)

LICENSE = "application/vnd.ollama.image.license"


def _layer(media_type: str, n: int, size: int = 10) -> Layer:
    return Layer(mediaType=media_type, digest=f"sha256:{n:064x}", size=size)


def _manifest(*layers: Layer) -> OllamaManifest:
    return OllamaManifest(schemaVersion=2, config=_layer(CONFIG_MEDIA_TYPE, 0), layers=list(layers))


def test_layers_are_named_by_media_type_in_manifest_order() -> None:
    """The model is `<model>-<tag>.gguf`; a second license is `license-2`; unknown media
    types are left out and named."""
    found = layout(
        "library/llama3.2",
        "3b",
        _manifest(
            _layer(MODEL, 1),
            _layer(LICENSE, 2),
            _layer(LICENSE, 3),
            _layer("application/vnd.ollama.image.future", 4),
        ),
    )
    assert [(f.path, f.sha256[-1]) for f in found.files] == [
        ("llama3.2-3b.gguf", "1"),
        ("license", "2"),
        ("license-2", "3"),
        ("config.json", "0"),
    ]
    assert found.unknown == ("application/vnd.ollama.image.future",)


@pytest.mark.parametrize(
    ("layers", "reason"),
    [
        ((_layer(TENSOR, 1),), "safetensors"),
        ((_layer(LICENSE, 1),), "0 model layers"),
        ((_layer(MODEL, 1), _layer(MODEL, 2)), "2 model layers"),
    ],
)
def test_a_manifest_that_is_not_one_gguf_file_is_refused(
    layers: tuple[Layer, ...], reason: str
) -> None:
    """Tensor layers, no model layer or two are refused with the reason."""
    with pytest.raises(ValueError, match=reason):
        layout("library/m", "t", _manifest(*layers))


def test_a_layer_digest_must_be_sha256() -> None:
    """A digest that is not `sha256:<64 hex>` is a validation error (it names a file)."""
    with pytest.raises(ValueError, match="sha256"):
        Layer(mediaType=MODEL, digest="sha256:../../etc/passwd", size=1)


def test_export_media_types() -> None:
    """The model path, projectors and the layout's names map back to Ollama's media types."""
    assert media_type_of("m-Q4_K_M.gguf", "m-Q4_K_M.gguf") == MODEL
    assert media_type_of("mmproj-m-f16.gguf", "m.gguf") == "application/vnd.ollama.image.projector"
    assert media_type_of("license-2", "m.gguf") == LICENSE
    assert media_type_of("README.md", "m.gguf") is None
    assert media_type_of("config.json", "m.gguf") is None


def test_the_written_manifest_parses_back() -> None:
    """`manifest_bytes` is schema 2 with Ollama's media type, and reads back as the same
    manifest; the config blob is deterministic JSON."""
    config = config_blob("gemma3", "Q4_K_M")
    assert config == config_blob("gemma3", "Q4_K_M")
    assert json.loads(config)["model_format"] == "gguf"
    body = manifest_bytes(_layer(CONFIG_MEDIA_TYPE, 0), [_layer(MODEL, 1)])
    document = json.loads(body)
    assert document["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    parsed = OllamaManifest.model_validate_json(body)
    assert parsed.layers == [_layer(MODEL, 1)]
