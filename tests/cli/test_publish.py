"""`modelsync publish` against the project's Hub-compatible server on 127.0.0.1, judged by the
official client: one commit with the right bytes, none when nothing changed, only the changed
file uploaded, a card whose metadata huggingface_hub parses, and clear errors that upload
nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from huggingface_hub import HfApi, ModelCard, hf_hub_download
from huggingface_hub.errors import RepositoryNotFoundError

from modelsync.server.runner import ServerHandle
from modelsync.store.state import open_state
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubTokens
from tests.fixtures.projects import TINY_WEIGHTS

# huggingface_hub 2.4.0 PUTs LFS bodies with `data=<file>`, which httpx2 deprecates; the warning
# is the client's (see tests/integration/test_server_upload.py).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"
)

REPO = "tester/tiny-GGUF"
Q4 = b"q4" * 3000
Q8 = b"q8" * 5000


def _manifest(endpoint: str, extra: str = "") -> str:
    return (
        f'[registries.team]\ntype = "huggingface"\nendpoint = "{endpoint}"\n\n'
        f'[publish.quants]\nrepo = "{REPO}"\nregistry = "team"\nfiles = ["out/*.gguf"]\n'
        'license = "apache-2.0"\nbase-model = "org/tiny"\ntags = ["test"]\n'
        f'quantized-by = "tester"\ndescription = "Tiny quantizations for tests."\n{extra}'
    )


@pytest.fixture
def project(hub: ServerHandle, hub_tokens: HubTokens, cli_env: dict[str, str]) -> dict[str, str]:
    """models.toml with one publish target (two GGUF files under out/) on the `team` registry
    (the local hub); returns the environment holding the writer token for it."""
    assert cli_env
    Path("out").mkdir()
    Path("out/tiny-Q4_K_M.gguf").write_bytes(Q4)
    Path("out/tiny-Q8_0.gguf").write_bytes(Q8)
    Path("models.toml").write_text(_manifest(hub.endpoint))
    return {"MODELSYNC_REGISTRY_TEAM_TOKEN": hub_tokens.writer}


def _commits(hub: ServerHandle, token: str) -> list[str]:
    return [c.commit_id for c in HfApi(endpoint=hub.endpoint, token=token).list_repo_commits(REPO)]


def _download_sha(hub: ServerHandle, token: str, path: str, cache: Path) -> str:
    local = hf_hub_download(REPO, path, endpoint=hub.endpoint, token=token, cache_dir=cache)
    return hashlib.sha256(Path(local).read_bytes()).hexdigest()


def test_publish_twice_then_one_changed_file(
    run_cli: CliRunner,
    project: dict[str, str],
    hub: ServerHandle,
    hub_tokens: HubTokens,
    cli_env: dict[str, str],
) -> None:
    """The first publish creates the repo with one commit holding the exact bytes; the second
    makes no commit and says "up to date"; changing one file makes one commit that uploads
    only that file (and the card, which lists its sha256)."""
    first = run_cli("publish", env=project)
    assert first.exit_code == 0, first.stderr
    commits = _commits(hub, hub_tokens.writer)
    assert len(commits) == 2  # the repository's initial commit, then ours
    assert f"quants: committed {commits[0]} to {hub.endpoint}/{REPO} (a new repository)" in (
        first.stdout
    )
    for name, data in (("tiny-Q4_K_M.gguf", Q4), ("tiny-Q8_0.gguf", Q8)):
        got = _download_sha(hub, hub_tokens.reader, name, Path("hf1").absolute())
        assert got == hashlib.sha256(data).hexdigest()

    with open_state(Path(cli_env["MODELSYNC_STORE"]) / "state.db") as state:
        q4 = Path("out/tiny-Q4_K_M.gguf").absolute()
        assert state.lookup(q4, q4.stat()) == hashlib.sha256(Q4).hexdigest()  # not hashed again
    second = run_cli("publish", env=project)
    assert second.exit_code == 0, second.stderr
    assert second.stdout == (f"quants: {hub.endpoint}/{REPO} is up to date (3 files unchanged)\n")
    assert _commits(hub, hub_tokens.writer) == commits

    stored = len(hub.repos.counters.events("lfs.stored"))
    changed = b"new q8" * 1000
    Path("out/tiny-Q8_0.gguf").write_bytes(changed)
    third = run_cli("publish", "--json", env=project)
    assert third.exit_code == 0, third.stderr
    report = third.json_lines()[-1]["targets"][0]
    assert (report["add"], report["replace"]) == ([], ["README.md", "tiny-Q8_0.gguf"])
    assert report["unchanged"] == ["tiny-Q4_K_M.gguf"]
    assert len(_commits(hub, hub_tokens.writer)) == 3
    uploaded = hub.repos.counters.events("lfs.stored")[stored:]
    assert [e.detail["oid"] for e in uploaded] == [hashlib.sha256(changed).hexdigest()]
    got = _download_sha(hub, hub_tokens.reader, "tiny-Q8_0.gguf", Path("hf2").absolute())
    assert got == hashlib.sha256(changed).hexdigest()


def test_dry_run_prints_the_plan_with_bytes_and_uploads_nothing(
    run_cli: CliRunner,
    project: dict[str, str],
    hub: ServerHandle,
    hub_tokens: HubTokens,
    tmp_path: Path,
) -> None:
    """`--dry-run` against a missing repo lists every file as added with its size and digest,
    and the bytes the commit would send; it creates nothing, and the publish that follows
    sends exactly those files."""
    result = run_cli("publish", "--dry-run", env=project)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    q4, q8 = hashlib.sha256(Q4).hexdigest(), hashlib.sha256(Q8).hexdigest()
    assert lines[1:3] == [
        f"  add        tiny-Q4_K_M.gguf (5.9 KiB, sha256 {q4})",
        f"  add        tiny-Q8_0.gguf (9.8 KiB, sha256 {q8})",
    ]
    assert lines[0].startswith("  add        README.md (")
    assert lines[-1].startswith(
        f"quants: would commit to {hub.endpoint}/{REPO} (a new repository): 3 added, "
        "0 replaced, 0 deleted, 0 unchanged; "
    )
    total = int(lines[-1].rsplit("(", 1)[1].removesuffix(" bytes) to upload"))
    assert hub.repos.repo_ids() == []

    assert run_cli("publish", env=project).exit_code == 0
    card = hf_hub_download(
        REPO, "README.md", endpoint=hub.endpoint, token=hub_tokens.reader, cache_dir=tmp_path / "c"
    )
    assert total == len(Q4) + len(Q8) + Path(card).stat().st_size


def test_card_metadata_parses_and_lists_files_with_bench(
    run_cli: CliRunner,
    project: dict[str, str],
    hub: ServerHandle,
    hub_tokens: HubTokens,
    tmp_path: Path,
) -> None:
    """The card's YAML parses with huggingface_hub (license, base_model, tags with gguf,
    quantized_by, library) and its table shows each file's quant, sha256 and the bench result
    from models.bench.json whose sha256 matches."""
    q4 = hashlib.sha256(Q4).hexdigest()
    bench = {
        "version": 1,
        "results": [
            {
                "model": "x",
                "profile": None,
                "file": "tiny-Q4_K_M.gguf",
                "sha256": q4,
                "quant": "Q4_K_M",
                "size": len(Q4),
                "hardware": "cpu-test",
                "llama_cpp": "0.3.9",
                "settings": {"n_prompt": 512},
                "load_s": {"mean": 0.5, "std": 0.01},
                "pp_tps": {"mean": 450.0, "std": 3.0},
                "tg_tps": {"mean": 60.0, "std": 1.0},
                "peak_rss": 1,
                "vram": None,
                "future_key": "ignored",
            }
        ],
    }
    Path("models.bench.json").write_text(json.dumps(bench))
    assert run_cli("publish", env=project).exit_code == 0
    path = hf_hub_download(
        REPO, "README.md", endpoint=hub.endpoint, token=hub_tokens.reader, cache_dir=tmp_path / "c"
    )
    card = ModelCard.load(path)
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0"
    assert data["base_model"] == "org/tiny"
    assert data["library_name"] == "gguf"
    assert data["quantized_by"] == "tester"
    assert data["tags"] == ["gguf", "modelsync", "test"]
    assert "Tiny quantizations for tests." in card.text
    row = next(line for line in card.text.splitlines() if "tiny-Q4_K_M.gguf" in line)
    assert "| Q4_K_M |" in row
    assert q4 in row
    assert "pp 450.0 ± 3.0 t/s, tg 60.0 ± 1.0 t/s (cpu-test, llama.cpp 0.3.9)" in row
    q8_row = next(line for line in card.text.splitlines() if "tiny-Q8_0.gguf" in line)
    assert "| Q8_0 |" in q8_row
    assert q8_row.endswith("| - |")
    assert f'source = "team://{REPO}"' in card.text
    assert f'endpoint = "{hub.endpoint}"' in card.text


def test_refused_token_exits_5_naming_the_variable_and_repo(
    run_cli: CliRunner, project: dict[str, str], hub: ServerHandle, hub_tokens: HubTokens
) -> None:
    """A read-only token gets 403 on create_repo: exit 5, one line naming the variable and the
    repository, never the token; nothing is created."""
    result = run_cli("publish", env={"MODELSYNC_REGISTRY_TEAM_TOKEN": hub_tokens.reader})
    assert result.exit_code == 5
    assert result.stderr == (
        f"modelsync: error: {hub.endpoint}/{REPO}: 403 on write: the token from "
        "MODELSYNC_REGISTRY_TEAM_TOKEN was refused; export MODELSYNC_REGISTRY_TEAM_TOKEN with a "
        f"token that may write to {REPO}\n"
    )
    assert hub_tokens.reader not in result.stdout + result.stderr
    assert hub.repos.repo_ids() == []


def test_unknown_token_fails_before_planning(
    run_cli: CliRunner, project: dict[str, str], hub: ServerHandle
) -> None:
    """A token the server does not know is refused at the first request, even for --dry-run."""
    result = run_cli(
        "publish", "--dry-run", env={"MODELSYNC_REGISTRY_TEAM_TOKEN": "hf_not_a_known_token"}
    )
    assert result.exit_code == 5
    assert "401 on read: the token from MODELSYNC_REGISTRY_TEAM_TOKEN was refused" in result.stderr
    assert "hf_not_a_known_token" not in result.stderr
    assert hub.repos.repo_ids() == []


def test_missing_local_file_exits_2_and_uploads_nothing(
    run_cli: CliRunner, project: dict[str, str], hub: ServerHandle
) -> None:
    """A glob matching no file stops publish before any request, naming the glob."""
    Path("models.toml").write_text(
        _manifest(hub.endpoint).replace('files = ["out/*.gguf"]', 'files = ["out/*.gguf", "x/*"]')
    )
    result = run_cli("publish", env=project)
    assert result.exit_code == 2
    folder = Path.cwd().absolute()
    assert result.stderr == (
        f'modelsync: error: models.toml: publish.quants.files: "x/*" matches no file in {folder}; '
        "nothing was uploaded; build the files first, or fix the glob\n"
    )
    assert hub.repos.counters.requests() == 0


def test_delete_extra_removes_files_no_longer_published(
    run_cli: CliRunner, project: dict[str, str], hub: ServerHandle, hub_tokens: HubTokens
) -> None:
    """A remote file no longer matched is kept (and named) by default, deleted in the same one
    commit with `delete-extra = true`."""
    assert run_cli("publish", env=project).exit_code == 0
    Path("out/tiny-Q8_0.gguf").unlink()
    kept = run_cli("publish", "--dry-run", env=project)
    assert "  keep       tiny-Q8_0.gguf (not published here; delete-extra = true removes it)" in (
        kept.stdout
    )
    Path("models.toml").write_text(_manifest(hub.endpoint, "delete-extra = true\n"))
    result = run_cli("publish", env=project)
    assert result.exit_code == 0, result.stderr
    assert "1 replaced, 1 deleted, 1 unchanged" in result.stdout
    files = HfApi(endpoint=hub.endpoint, token=hub_tokens.reader).list_repo_files(REPO)
    assert sorted(files) == [".gitattributes", "README.md", "tiny-Q4_K_M.gguf"]


def test_republish_a_locked_model_from_the_store(
    run_cli: CliRunner,
    tiny_project: dict[str, str],
    hub: ServerHandle,
    hub_tokens: HubTokens,
    tmp_path: Path,
) -> None:
    """`model = "tiny"` publishes the lock's files from the store's blobs: before `sync` it
    says to run it; after, the repo gets the same bytes and a card naming the upstream repo
    and commit; a second run is up to date."""
    env = {**tiny_project, "HF_TOKEN": hub_tokens.writer}
    with Path("models.toml").open("a") as manifest:
        manifest.write('\n[publish.mirror]\nrepo = "org/tiny-mirror"\nmodel = "tiny"\n')
    assert run_cli("lock", env=env).exit_code == 0
    before = run_cli("publish", env=env)
    assert before.exit_code == 2
    assert "publish.mirror: model tiny: config.json (sha256 " in before.stderr
    assert before.stderr.endswith("nothing was uploaded; run `modelsync sync` first\n")
    assert hub.repos.repo_ids() == ["org/tiny"]

    assert run_cli("sync", env=env).exit_code == 0
    result = run_cli("publish", env=env)
    assert result.exit_code == 0, result.stderr
    upstream = HfApi(endpoint=hub.endpoint).model_info("org/tiny").sha
    path = hf_hub_download(
        "org/tiny-mirror", "weights.bin", endpoint=hub.endpoint, cache_dir=tmp_path / "c"
    )
    assert Path(path).read_bytes() == TINY_WEIGHTS
    readme = hf_hub_download(
        "org/tiny-mirror", "README.md", endpoint=hub.endpoint, cache_dir=tmp_path / "c"
    )
    card = ModelCard.load(readme)
    assert card.data.to_dict()["base_model"] == "org/tiny"
    assert f"Re-hosted from `org/tiny` at commit `{upstream}`." in card.text
    assert 'source = "hf://org/tiny-mirror"' in card.text
    again = run_cli("publish", "--target", "mirror", env=env)
    assert (
        again.stdout
        == f"mirror: {hub.endpoint}/org/tiny-mirror is up to date (3 files unchanged)\n"
    )


def test_unknown_target_names_the_known_ones(run_cli: CliRunner, project: dict[str, str]) -> None:
    """`--target` naming no table is a usage error listing the tables there are."""
    result = run_cli("publish", "--target", "nope", env=project)
    assert result.exit_code == 2
    assert result.stderr == (
        "modelsync: error: models.toml: no [publish.nope] table; use one of: quants\n"
    )


def test_private_target_creates_a_private_repo(
    run_cli: CliRunner, project: dict[str, str], hub: ServerHandle, hub_tokens: HubTokens
) -> None:
    """`private = true` creates the repository private: the writer sees it, a reader does not."""
    Path("models.toml").write_text(_manifest(hub.endpoint, "private = true\n"))
    assert run_cli("publish", env=project).exit_code == 0
    assert HfApi(endpoint=hub.endpoint, token=hub_tokens.writer).model_info(REPO).private
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.endpoint, token=hub_tokens.reader).model_info(REPO)
