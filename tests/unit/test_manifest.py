"""models.toml: schema, source grammar, quantization names, one-line errors with file:line:key."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelsync.errors import ExitCode, ManifestError
from modelsync.manifest.load import load_manifest, parse_manifest
from modelsync.manifest.model import QuantChoice, parse_size
from modelsync.manifest.quants import canonical_label, suggest_label
from modelsync.toml_lines import locate

SHA = "ab" * 32


def error_of(text: str) -> str:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert caught.value.exit_code == ExitCode.USAGE
    line = caught.value.one_line()
    assert "\n" not in line
    return line


def test_unknown_quant_names_file_line_key_and_the_fix() -> None:
    """A misspelt quantization gives the exact one-line error of the issue, with a suggestion."""
    text = (
        "[settings]\n"
        'target = "models"\n'
        "\n"
        "[models.gemma]\n"
        'source = "hf://ggml-org/gemma-3-1b-it-GGUF"\n'
        'revision = "main"\n'
        'quant = "Q4KM"\n'
    )
    assert error_of(text) == (
        'models.toml:7: models.gemma.quant: unknown quantization "Q4KM"; did you mean "Q4_K_M"?'
    )


def test_unknown_key_suggests_the_closest_known_key() -> None:
    """A typo in a key is an error naming the key, its line, and the key it resembles."""
    line = error_of('[models.g]\nsource = "a/b"\nquantt = "Q4_K_M"\n')
    assert line == 'models.toml:3: models.g.quantt: unknown key; did you mean "quant"?'


def test_unknown_top_level_table_lists_the_allowed_keys() -> None:
    """An unknown table is refused, listing what may appear there."""
    line = error_of('[modles.g]\nsource = "a/b"\n')
    assert line.startswith("models.toml:1: modles: unknown key; did you mean")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('context = "8k"', 'models.toml:3: models.g.context: expected an integer, found "8k"'),
        ("context = true", "models.toml:3: models.g.context: expected an integer, found true"),
        ("context = 0", "models.toml:3: models.g.context: input should be greater than or equal"),
        ('include = "*.json"', "models.toml:3: models.g.include: expected a list of glob"),
        ("quant = 4", "models.toml:3: models.g.quant: expected a quantization name"),
    ],
)
def test_wrong_types_are_one_line_errors(text: str, expected: str) -> None:
    """A value of the wrong type names its key and line and shows the value found."""
    assert error_of(f'[models.g]\nsource = "a/b"\n{text}\n').startswith(expected)


def test_malformed_toml_names_line_and_column() -> None:
    """Broken TOML syntax is reported with the line and column to fix."""
    line = error_of('[models.g]\nsource = "a/b\n')
    assert line.startswith("models.toml:2: invalid TOML:")
    assert "column" in line


def test_duplicate_key_names_its_line() -> None:
    """A key given twice is reported at the second occurrence's line."""
    line = error_of('[models.g]\nsource = "a/b"\nsource = "c/d"\n')
    assert line.startswith("models.toml:3: invalid TOML:")


@pytest.mark.parametrize(
    ("source", "registry", "repo", "quant", "file"),
    [
        ("hf://org/repo", "hf", "org/repo", QuantChoice(), None),
        ("org/repo", "hf", "org/repo", QuantChoice(), None),
        ("hf.co/org/repo:q4_k_m", "hf", "org/repo", QuantChoice("named", ("Q4_K_M",)), None),
        (
            "huggingface.co/org/repo:UD-Q4_K_XL",
            "hf",
            "org/repo",
            QuantChoice("named", ("UD-Q4_K_XL",)),
            None,
        ),
        ("org/repo:sub/model-Q8_0.gguf", "hf", "org/repo", QuantChoice(), "sub/model-Q8_0.gguf"),
        (
            "corp://org/repo:i1-Q4_K_M",
            "corp",
            "org/repo",
            QuantChoice("named", ("i1-Q4_K_M",)),
            None,
        ),
    ],
)
def test_source_grammar(
    source: str, registry: str, repo: str, quant: QuantChoice, file: str | None
) -> None:
    """Every documented source form resolves to registry, repository, quantization and file."""
    project = parse_manifest(
        f'[registries.corp]\ntype = "huggingface"\nendpoint = "https://hub.corp.example"\n'
        f'[models.m]\nsource = "{source}"\n'
    )
    [model] = project.models
    assert (model.registry.name, model.repo, model.quant, model.file) == (
        registry,
        repo,
        quant,
        file,
    )
    assert model.revision == "main"


def test_plain_url_needs_a_sha256() -> None:
    """An https source without sha256 is refused: nothing unpinned enters the store."""
    line = error_of('[models.t]\nsource = "https://example.org/files/tiny.gguf"\n')
    assert line.startswith("models.toml:1: models.t.sha256: a URL source must carry sha256")
    project = parse_manifest(
        f'[models.t]\nsource = "https://example.org/files/tiny.gguf"\nsha256 = "{SHA.upper()}"\n'
    )
    [model] = project.models
    assert (model.url, model.sha256, model.registry.name) == (
        "https://example.org/files/tiny.gguf",
        SHA,
        "url",
    )


@pytest.mark.parametrize(
    "url", ["https://user:pw@example.org/t.gguf", "https://example.org/t.gguf?sig=abc"]
)
def test_url_with_credentials_is_refused(url: str) -> None:
    """A URL carrying credentials or a signature never reaches the lock."""
    line = error_of(f'[models.t]\nsource = "{url}"\nsha256 = "{SHA}"\n')
    assert "models.t.source" in line
    assert "pw" not in line
    assert "sig=abc" not in line


def test_declared_url_registry_joins_its_endpoint() -> None:
    """A `type = "url"` registry turns `name://path` into a URL under its endpoint."""
    project = parse_manifest(
        '[registries.files]\ntype = "url"\nendpoint = "https://files.example/models/"\n'
        'token-env = "MODELSYNC_REGISTRY_FILES_TOKEN"\n'
        f'[models.t]\nsource = "files://tiny/t.gguf"\nsha256 = "{SHA}"\n'
    )
    [model] = project.models
    assert model.url == "https://files.example/models/tiny/t.gguf"
    assert model.registry.token_env == "MODELSYNC_REGISTRY_FILES_TOKEN"


def test_unknown_registry_alias_lists_the_declared_ones() -> None:
    """A source naming an undeclared registry says how to declare it."""
    line = error_of('[models.g]\nsource = "corp://org/repo"\n')
    assert line == (
        'models.toml:2: models.g.source: unknown registry "corp"; '
        "declare [registries.corp] or use one of: hf, ollama"
    )


def test_token_in_token_env_is_refused_without_echoing_it() -> None:
    """Putting a token itself in token-env is an error whose text never repeats the token."""
    token = "hf_AbCdEfGhIjKlMnOpQrStUvWx"
    line = error_of(f'[registries.c]\ntype = "huggingface"\ntoken-env = "{token}"\n')
    assert "registries.c.token-env" in line
    assert token not in line


@pytest.mark.parametrize(
    ("source", "extra", "repo", "tag"),
    [
        ("ollama://gemma3:1b", "", "library/gemma3", "1b"),
        ("ollama://library/gemma3:1b", "", "library/gemma3", "1b"),
        ("ollama://user/model:q4_K_M-v1.2", "", "user/model", "q4_K_M-v1.2"),
        ("ollama://gemma3", "", "library/gemma3", "latest"),
        ("gemma3:1b", 'registry = "ollama"\n', "library/gemma3", "1b"),
        ("o://team/m:7b", 'registry = "o"\n', "team/m", "7b"),
    ],
)
def test_ollama_sources(source: str, extra: str, repo: str, tag: str) -> None:
    """Ollama sources name `ns/model` (namespace `library` implied) and a tag (`latest`
    implied), on the implicit `ollama` registry or a declared one."""
    text = f'[registries.o]\ntype = "ollama"\n[models.g]\nsource = "{source}"\n{extra}'
    (model,) = parse_manifest(text).models
    assert (model.registry.type, model.repo, model.revision) == ("ollama", repo, tag)


def test_ollama_source_refuses_a_quant() -> None:
    """The tag is the variant: `quant` next to an Ollama source is an error naming the key."""
    line = error_of('[models.g]\nsource = "ollama://gemma3:1b"\nquant = "Q8_0"\n')
    assert line.startswith("models.toml:3: models.g.quant: an Ollama tag names its files")


def test_ollama_source_refuses_a_bad_name() -> None:
    """A name Ollama would not accept (a path, `..`) is refused with the expected forms."""
    line = error_of('[models.g]\nsource = "ollama://a/b/c:1"\n')
    assert 'cannot read Ollama source "ollama://a/b/c:1"' in line
    line = error_of('[models.g]\nsource = "ollama://lib/..:1"\n')
    assert "cannot read Ollama source" in line


def test_the_implicit_ollama_registry_keeps_old_digests() -> None:
    """Adding the implicit `ollama` registry leaves a manifest's digest as it was (existing
    locks stay fresh); declaring it explicitly is part of the digest."""
    plain = parse_manifest('[models.g]\nsource = "a/b"\n').digest()
    # The digest modelsync gave this manifest before Ollama sources existed.
    assert plain == "sha256:1efdd94a1cb46625c4527a12bea17bddc31688bb02079a12dfd887296ea11a89"
    declared = parse_manifest(
        '[registries.ollama]\ntype = "ollama"\nendpoint = "https://r.example"\n'
        '[models.g]\nsource = "a/b"\n'
    ).digest()
    assert declared != plain


def test_conflicting_tag_and_quant() -> None:
    """A source tag and a different `quant` contradict each other."""
    line = error_of('[models.g]\nsource = "a/b:Q4_K_M"\nquant = "Q5_K_M"\n')
    assert line.startswith('models.toml:3: models.g.quant: quant = "Q5_K_M" contradicts')


def test_ordered_list_points_at_the_bad_item() -> None:
    """In a quant list, the unknown entry is named with a suggestion."""
    line = error_of('[models.g]\nsource = "a/b"\nquant = ["Q5_K_M", "Q4KS"]\n')
    assert (
        line == 'models.toml:3: models.g.quant: unknown quantization "Q4KS"; did you mean "Q4_K_S"?'
    )


def test_profiles_parse_sizes_and_require_ram() -> None:
    """Profiles take sizes in GiB/GB and must declare RAM."""
    project = parse_manifest('[profiles.gpu]\nram = "64GiB"\nvram = "24 GB"\ngpus = 2\n')
    [profile] = project.profiles.values()
    assert (profile.ram, profile.vram, profile.gpus) == (64 << 30, 24 * 10**9, 2)
    line = error_of('[profiles.gpu]\nvram = "24GiB"\n')
    assert line == 'models.toml:1: profiles.gpu.ram: required key is missing; add ram = "16GiB"'
    line = error_of('[profiles.gpu]\nram = "lots"\n')
    assert line.startswith('models.toml:2: profiles.gpu.ram: expected a size like "24GiB"')


def test_several_problems_report_the_first_and_count_the_rest() -> None:
    """With two problems, the earlier line is shown and the other counted."""
    line = error_of('[models.a]\nsource = "a/b"\nquant = "Q9"\n[models.b]\nsource = "x"\n')
    assert line.startswith("models.toml:3: models.a.quant")
    assert line.endswith("(1 more problem after this one)")


def test_digest_ignores_comments_and_layout_but_not_content() -> None:
    """Reformatting or commenting the manifest keeps its digest; changing a value does not."""
    base = parse_manifest('[models.g]\nsource = "a/b"\nquant = "Q4_K_M"\n').digest()
    commented = parse_manifest(
        '# mine\n[models]\ng = { source = "a/b", quant = "q4_k_m" }  # same\n'
    ).digest()
    changed = parse_manifest('[models.g]\nsource = "a/b"\nquant = "Q5_K_M"\n').digest()
    assert base == commented
    assert base != changed
    assert base.startswith("sha256:")


def test_missing_manifest_says_how_to_create_one(tmp_path: Path) -> None:
    """A missing models.toml exits 2 pointing at `modelsync init`."""
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path / "models.toml", display="models.toml")
    assert caught.value.one_line() == (
        "models.toml: not found; run `modelsync init` to create one, or pass -m PATH/models.toml"
    )


def test_template_manifest_loads() -> None:
    """The shipped `init` template is a valid manifest."""
    template = Path(__file__).parents[2] / "modelsync" / "templates" / "models.toml"
    project = load_manifest(template)
    assert [m.name for m in project.models] == ["gemma"]


def test_locate_handles_dotted_quoted_and_inline_keys() -> None:
    """Line lookup finds keys in headers, dotted keys and inline tables."""
    text = '[models."my.model"]\nsource = "a/b"\n[models.x]\ny.z = 1\n[w]\nq = { r = 1 }\n'
    assert locate(text, ("models", "my.model", "source")) == 2
    assert locate(text, ("models", "x", "y", "z")) == 4
    assert locate(text, ("w", "q", "r")) == 6
    assert locate(text, ("nowhere",)) == 1


def test_size_parsing() -> None:
    """Sizes accept binary and decimal units and plain bytes; nonsense raises."""
    assert parse_size("1.5GiB") == 3 << 29
    assert parse_size("512 MB") == 512 * 10**6
    assert parse_size(1024) == 1024
    for bad in ("12 parsecs", -1, True, 1.5):
        with pytest.raises(ValueError, match="expected"):
            parse_size(bad)


def test_label_spelling_and_suggestions() -> None:
    """Labels are accepted case-insensitively with their prefixes; typos get the nearest label."""
    assert canonical_label("ud-q4_k_xl") == "UD-Q4_K_XL"
    assert canonical_label("I1-iq3_m") == "i1-IQ3_M"
    assert canonical_label("Q4KM") is None
    assert suggest_label("Q4KM") == "Q4_K_M"
    assert suggest_label("zzzzzz") is None
