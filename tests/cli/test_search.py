"""`modelsync search` against the project's server: a dozen fixture repos with set download and
like counts and dates; each filter, each order, limit and pages, gated repos, --files, --add."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelsync.server.runner import ServerHandle
from modelsync.testing.gguf_files import make_gguf_repo
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubFactory, HubRepoFactory

DAY = 86400
EPOCH = 1_700_000_000  # 2023-11-14


@dataclass
class Clock:
    """The server's clock: each fixture repo is created (and committed) at a set time."""

    now: float = EPOCH

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True, slots=True)
class Fixture:
    repo: str
    quants: tuple[str, ...]
    downloads: int
    likes: int
    created_day: int
    gated: bool = False


# Not valid GGUF bytes (the server's summary fails, so sizes come from the names), except
# org/Tiny-GGUF, which is real and is what --files and --add lock.
REPOS = (
    Fixture("bartowski/Llama-3.2-1B-Instruct-GGUF", ("Q4_K_M", "Q8_0"), 9000, 50, 10),
    Fixture("bartowski/Qwen2.5-7B-Instruct-GGUF", ("Q4_K_M", "Q6_K"), 7000, 300, 20),
    Fixture("unsloth/Qwen2.5-7B-Instruct-GGUF", ("Q4_K_M", "Q2_K"), 5000, 100, 30),
    Fixture("TheBloke/Llama-2-70B-GGUF", ("Q2_K",), 8000, 20, 1),
    Fixture("meta/Llama-3-8B-GGUF", ("Q4_K_M",), 20000, 900, 40, gated=True),
    Fixture("mradermacher/Mistral-7B-v0.1-GGUF", ("i1-Q4_K_M", "Q5_K_M"), 3000, 5, 50),
    Fixture("bartowski/Phi-3-mini-3.8B-GGUF", ("Q5_K_M",), 1500, 40, 60),
    Fixture("org/Gemma-2B-GGUF", ("Q8_0",), 800, 700, 70),
    Fixture("org/SmolLM-135M-GGUF", ("Q8_0",), 600, 10, 80),
    Fixture("lmstudio/Qwen2.5-0.5B-GGUF", ("Q4_K_M",), 400, 2, 90),
    Fixture("org/Mixtral-8x7B-GGUF", ("Q3_K_M",), 200, 60, 100, gated=True),
)
NOT_GGUF = "org/bert-base"
TINY = "org/Tiny-GGUF"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real GGUF repo (Q4_K_M, Q8_0), written once per session."""
    folder = tmp_path_factory.mktemp("tiny")
    make_gguf_repo(folder, "Tiny", quants=("Q4_K_M", "Q8_0"))
    return folder


@pytest.fixture
def catalog_hub(hub_factory: HubFactory, tiny_dir: Path) -> ServerHandle:
    """A server holding the REPOS (created on their day), org/Tiny-GGUF (day 5, updated on day
    200), and a repo without GGUF files; two repos get a later commit (updated != created)."""
    clock = Clock()
    handle = hub_factory(clock=clock, page_size=4)
    make = HubRepoFactory(handle)
    for fixture in REPOS:
        clock.now = EPOCH + fixture.created_day * DAY
        name = fixture.repo.rsplit("/", 1)[-1].removesuffix("-GGUF")
        files: dict[str, bytes | str | Path] = {
            f"{name}-{q}.gguf": f"not a real {q} file".encode() for q in fixture.quants
        }
        make(
            fixture.repo,
            files,
            downloads=fixture.downloads,
            likes=fixture.likes,
            gated="auto" if fixture.gated else None,
        )
    clock.now = EPOCH + 5 * DAY
    make(TINY, {p.name: p for p in tiny_dir.iterdir()}, downloads=10, likes=1)
    make(NOT_GGUF, {"config.json": "{}"}, downloads=99999, likes=9999)
    clock.now = EPOCH + 200 * DAY
    make("TheBloke/Llama-2-70B-GGUF", {"NOTES.md": "updated"})
    clock.now = EPOCH + 210 * DAY
    make(TINY, {"NOTES.md": "updated"})
    return handle


@pytest.fixture
def env(catalog_hub: ServerHandle, tmp_path: Path) -> dict[str, str]:
    """The implicit `hf` registry on the catalog hub; no Hugging Face cache to adopt from."""
    return {"HF_ENDPOINT": catalog_hub.endpoint, "HF_HUB_CACHE": str(tmp_path / "no-hf")}


def report_of(run_cli: CliRunner, env: dict[str, str], *args: str) -> dict[str, Any]:
    """The `--json` report of `search ARGS` (after its events)."""
    result = run_cli("search", "--json", *args, env=env)
    assert result.exit_code == 0, result.stdout
    [report] = [e for e in result.json_lines() if e["event"] == "report"]
    return report


def repos(run_cli: CliRunner, env: dict[str, str], *args: str) -> list[str]:
    """The repositories `search ARGS` finds, in order."""
    return [r["repo"] for r in report_of(run_cli, env, *args)["results"]]


OPEN_BY_DOWNLOADS = [
    "bartowski/Llama-3.2-1B-Instruct-GGUF",
    "TheBloke/Llama-2-70B-GGUF",
    "bartowski/Qwen2.5-7B-Instruct-GGUF",
    "unsloth/Qwen2.5-7B-Instruct-GGUF",
    "mradermacher/Mistral-7B-v0.1-GGUF",
    "bartowski/Phi-3-mini-3.8B-GGUF",
    "org/Gemma-2B-GGUF",
    "org/SmolLM-135M-GGUF",
    "lmstudio/Qwen2.5-0.5B-GGUF",
    TINY,
]


def test_default_lists_open_gguf_repos_by_downloads_across_pages(
    run_cli: CliRunner, env: dict[str, str], catalog_hub: ServerHandle
) -> None:
    """Without a query: every open GGUF repo (not gated, not the non-GGUF one), by downloads,
    gathered from several pages of 4 through the Link headers."""
    assert repos(run_cli, env) == OPEN_BY_DOWNLOADS
    assert catalog_hub.repos.counters.requests("list_models") == 3  # 4 + 4 + 2 open repos


def test_each_sort_order(run_cli: CliRunner, env: dict[str, str]) -> None:
    """likes, created and updated order on the registry's counts and dates."""
    by_likes = repos(run_cli, env, "--sort", "likes", "--limit", "3")
    assert by_likes == ["org/Gemma-2B-GGUF", "bartowski/Qwen2.5-7B-Instruct-GGUF",
                        "unsloth/Qwen2.5-7B-Instruct-GGUF"]  # fmt: skip
    by_created = repos(run_cli, env, "--sort", "created", "--limit", "2")
    assert by_created == ["lmstudio/Qwen2.5-0.5B-GGUF", "org/SmolLM-135M-GGUF"]
    by_updated = repos(run_cli, env, "--sort", "updated", "--limit", "3")
    assert by_updated == [TINY, "TheBloke/Llama-2-70B-GGUF", "lmstudio/Qwen2.5-0.5B-GGUF"]


def test_relevance_prefers_the_name_and_is_deterministic(
    run_cli: CliRunner, env: dict[str, str]
) -> None:
    """`--sort relevance` puts the repo named as the query first, gives each hit a score, and
    answers the same twice."""
    results = report_of(run_cli, env, "qwen2.5-7b-instruct", "--sort", "relevance")["results"]
    again = report_of(run_cli, env, "qwen2.5-7b-instruct", "--sort", "relevance")["results"]
    assert [r["repo"] for r in results] == [
        "bartowski/Qwen2.5-7B-Instruct-GGUF",
        "unsloth/Qwen2.5-7B-Instruct-GGUF",
    ]
    assert results[0]["score"] > results[1]["score"] > 0
    assert again == results


def test_relevance_penalises_gated(run_cli: CliRunner, env: dict[str, str]) -> None:
    """With --gated, the gated repo with the most downloads and likes still ranks below an open
    one with fewer: the gated penalty."""
    ranked = repos(run_cli, env, "llama", "--gated", "--sort", "relevance")
    assert ranked.index("meta/Llama-3-8B-GGUF") > ranked.index(
        "bartowski/Llama-3.2-1B-Instruct-GGUF"
    )
    assert "meta/Llama-3-8B-GGUF" in ranked


def test_filters(run_cli: CliRunner, env: dict[str, str]) -> None:
    """Query text, --author, --quant (exact label, as lock matches it) and --params."""
    assert repos(run_cli, env, "qwen") == [
        "bartowski/Qwen2.5-7B-Instruct-GGUF",
        "unsloth/Qwen2.5-7B-Instruct-GGUF",
        "lmstudio/Qwen2.5-0.5B-GGUF",
    ]
    assert repos(run_cli, env, "--author", "bartowski", "--limit", "2") == [
        "bartowski/Llama-3.2-1B-Instruct-GGUF",
        "bartowski/Qwen2.5-7B-Instruct-GGUF",
    ]
    assert repos(run_cli, env, "--quant", "q5_k_m") == [
        "mradermacher/Mistral-7B-v0.1-GGUF",
        "bartowski/Phi-3-mini-3.8B-GGUF",
    ]
    assert repos(run_cli, env, "--params", "7B") == [
        "bartowski/Qwen2.5-7B-Instruct-GGUF",
        "unsloth/Qwen2.5-7B-Instruct-GGUF",
        "mradermacher/Mistral-7B-v0.1-GGUF",
    ]
    assert repos(run_cli, env, "--params", "100M-1B") == [
        "bartowski/Llama-3.2-1B-Instruct-GGUF",
        "org/SmolLM-135M-GGUF",
        "lmstudio/Qwen2.5-0.5B-GGUF",
    ]


def test_params_from_gguf_metadata(run_cli: CliRunner, env: dict[str, str]) -> None:
    """A repo whose name states no size is classed by the parameter count of its GGUF header
    (org/Tiny-GGUF's synthetic model has about 1.4 M)."""
    [tiny] = report_of(run_cli, env, "tiny")["results"]
    assert 10**6 < tiny["parameters"] < 2 * 10**6
    assert repos(run_cli, env, "tiny", "--params", "1M-2M") == [TINY]
    assert repos(run_cli, env, "tiny", "--params", "2M-3M") == []


def test_gated_excluded_by_default_and_marked_when_included(
    run_cli: CliRunner, env: dict[str, str]
) -> None:
    """Gated repos are left out unless --gated; then the table marks them."""
    assert "meta/Llama-3-8B-GGUF" not in repos(run_cli, env, "--limit", "100")
    assert "meta/Llama-3-8B-GGUF" not in repos(run_cli, env, "--no-gated")
    assert repos(run_cli, env, "--gated", "--limit", "2") == [
        "meta/Llama-3-8B-GGUF",
        "bartowski/Llama-3.2-1B-Instruct-GGUF",
    ]
    table = run_cli("search", "llama", "--gated", env=env)
    assert table.exit_code == 0
    assert "meta/Llama-3-8B-GGUF (gated)" in table.stdout
    assert "bartowski/Llama-3.2-1B-Instruct-GGUF (gated)" not in table.stdout


def test_limit_stops_early_and_is_bounded(
    run_cli: CliRunner, env: dict[str, str], catalog_hub: ServerHandle
) -> None:
    """--limit takes the first N, asking for no page beyond them; outside 1..100 it is a usage
    error (exit 2)."""
    assert repos(run_cli, env, "--limit", "5") == OPEN_BY_DOWNLOADS[:5]
    assert catalog_hub.repos.counters.requests("list_models") == 2
    for bad in ("0", "101"):
        result = run_cli("search", "--limit", bad, env=env)
        assert result.exit_code == 2
        assert f"--limit {bad}: expected 1 to 100" in result.stderr


def test_table_for_people_and_no_results(run_cli: CliRunner, env: dict[str, str]) -> None:
    """The table has a header and aligned rows; no match is exit 0 with a line saying so."""
    shown = run_cli("search", "qwen", "--limit", "1", env=env)
    assert shown.exit_code == 0, shown.stderr
    header, row = shown.stdout.splitlines()
    assert header.split() == ["repo", "downloads", "likes", "updated", "created", "params",
                              "quants"]  # fmt: skip
    assert row.split() == ["bartowski/Qwen2.5-7B-Instruct-GGUF", "7000", "300", "2023-12-04",
                           "2023-12-04", "7B", "Q6_K,", "Q4_K_M"]  # fmt: skip
    none = run_cli("search", "no-such-model-anywhere", env=env)
    assert none.exit_code == 0
    assert none.stdout == "no GGUF repositories on hf match\n"


def test_files_lists_variants_and_marks_lock_pick(run_cli: CliRunner, env: dict[str, str]) -> None:
    """`--files REPO` lists every GGUF variant with quant, size and shards, and marks the one
    `lock` picks on this machine (the real resolver: the best up to Q8_0 that fits)."""
    report = report_of(run_cli, env, "--files", TINY)
    files = {f["quant"]: f for f in report["files"]}
    assert set(files) == {"F16", "Q8_0", "Q4_K_M"}
    assert files["F16"]["shards"] == 2
    assert files["Q4_K_M"]["shards"] == 1
    assert files["Q4_K_M"]["size"] > 0
    assert [q for q, f in files.items() if f["picked"]] == ["Q8_0"]
    assert report["reason"].startswith("Q8_0: the best quality up to Q8_0")
    shown = run_cli("search", "--files", TINY, env=env)
    assert "->  Q8_0" in shown.stdout
    assert "lock would pick Q8_0: the best quality up to Q8_0" in shown.stdout


MANIFEST = """\
# my models
[settings]
target = "models"   # keep

[models.other]  # a note
source = "org/Tiny-GGUF"
quant = "Q8_0"
"""


def test_add_appends_an_entry_that_locks(run_cli: CliRunner, env: dict[str, str]) -> None:
    """`--add NAME` appends [models.NAME] (with --quant), leaves every byte before it as it was,
    and the entry locks against the server."""
    Path("models.toml").write_text(MANIFEST)
    result = run_cli("search", "tiny", "--quant", "Q4_K_M", "--add", "tiny", env=env)
    assert result.exit_code == 0, result.stderr
    assert 'added [models.tiny] source "org/Tiny-GGUF", quant "Q4_K_M"' in result.stdout
    text = Path("models.toml").read_text()
    assert text.startswith(MANIFEST)
    assert text[len(MANIFEST) :] == '\n[models.tiny]\nsource = "org/Tiny-GGUF"\nquant = "Q4_K_M"\n'
    locked = run_cli("lock", env=env)
    assert locked.exit_code == 0, locked.stderr
    lock = Path("models.lock").read_text()
    assert "Tiny-Q4_K_M.gguf" in lock
    assert "Tiny-Q8_0.gguf" in lock


def test_files_add_and_a_taken_name(run_cli: CliRunner, env: dict[str, str]) -> None:
    """`--files REPO --add NAME` adds that repo; a name already in models.toml is refused
    (exit 2, naming its line) and the file is left as it was."""
    Path("models.toml").write_text(MANIFEST)
    taken = run_cli("search", "--files", TINY, "--add", "other", env=env)
    assert taken.exit_code == 2
    assert taken.stderr == (
        'modelsync: error: models.toml:5: a model named "other" already exists; '
        "pick another name for --add, or edit that entry\n"
    )
    assert Path("models.toml").read_text() == MANIFEST
    added = run_cli("search", "--files", TINY, "--add", "tiny", env=env)
    assert added.exit_code == 0, added.stderr
    assert (
        Path("models.toml").read_text() == MANIFEST + '\n[models.tiny]\nsource = "org/Tiny-GGUF"\n'
    )


def test_files_of_a_repo_without_gguf_and_a_missing_quant(
    run_cli: CliRunner, env: dict[str, str]
) -> None:
    """`--files` on a repo without GGUF files says so (and --add refuses it); a --quant the
    repo lacks is exit 2 listing what it has."""
    Path("models.toml").write_text(MANIFEST)
    plain = run_cli("search", "--files", NOT_GGUF, env=env)
    assert plain.exit_code == 0, plain.stderr
    assert "  no GGUF files\n" in plain.stdout
    assert "lock picks none: it has no GGUF files" in plain.stdout
    refused = run_cli("search", "--files", NOT_GGUF, "--add", "bert", env=env)
    assert refused.exit_code == 2
    assert "--add bert: hf:org/bert-base has no GGUF files" in refused.stderr
    missing = run_cli("search", "--files", TINY, "--quant", "q2_k", env=env)
    assert missing.exit_code == 2
    assert missing.stderr.startswith("modelsync: error: --quant Q2_K: hf:org/Tiny-GGUF@")
    assert missing.stderr.endswith("has no such GGUF file; it has: F16, Q8_0, Q4_K_M\n")
    assert Path("models.toml").read_text() == MANIFEST


def test_declared_registry_searches_and_adds_its_source(
    run_cli: CliRunner, catalog_hub: ServerHandle
) -> None:
    """`--registry NAME` searches a Hub-compatible registry models.toml declares, and --add
    writes its `NAME://` source; an undeclared one is exit 2 naming those that search."""
    text = f'[registries.corp]\ntype = "huggingface"\nendpoint = "{catalog_hub.endpoint}"\n'
    Path("models.toml").write_text(text)
    found = run_cli("search", "--registry", "corp", "tiny", "--add", "tiny")
    assert found.exit_code == 0, found.stderr
    assert Path("models.toml").read_text() == (
        text + '\n[models.tiny]\nsource = "corp://org/Tiny-GGUF"\n'
    )
    unknown = run_cli("search", "--registry", "nope")
    assert unknown.exit_code == 2
    assert unknown.stderr == (
        "modelsync: error: --registry nope: models.toml declares no Hub-compatible registry "
        '"nope"; registries that search: corp, hf\n'
    )


def test_add_with_no_result_and_bad_flags_exit_2(run_cli: CliRunner, env: dict[str, str]) -> None:
    """--add when nothing matched, an unknown --quant, a bad --params, a query with --files:
    exit 2 each, models.toml untouched."""
    Path("models.toml").write_text(MANIFEST)
    cases = {
        ("nothing-like-this", "--add", "x"): "--add: the search found nothing to add",
        ("--quant", "Q4KM"): "--quant Q4KM: not a known quantization; did you mean Q4_K_M?",
        ("--params", "big"): "--params big: expected a size class such as 7B or a range 1B-8B",
        ("qwen", "--files", TINY): "give a query or --files, not both",
    }
    for args, message in cases.items():
        result = run_cli("search", *args, env=env)
        assert result.exit_code == 2, args
        assert message in result.stderr
    assert Path("models.toml").read_text() == MANIFEST


def test_a_real_process_prints_the_same_table(
    run_cli: CliRunner, run_cli_process: CliRunner, env: dict[str, str]
) -> None:
    """Piped (no TTY), the installed command prints the plain table, nothing else on stdout."""
    piped = run_cli_process("search", "qwen", "--sort", "likes", env=env)
    assert piped.exit_code == 0, piped.stderr
    assert piped.stdout == run_cli("search", "qwen", "--sort", "likes", env=env).stdout
    assert piped.stdout.splitlines()[1].startswith("bartowski/Qwen2.5-7B-Instruct-GGUF  ")
