"""The source syntax people already type: `hf.co/org/repo:latest`, Hub page and file URLs
(huggingface.co and $HF_ENDPOINT), `best` up to Q8_0 (full precision only when named or with
`best-full`), and a quantization together with `include` globs (a vision projector)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from modelsync.errors import ExitCode, ManifestError, ModelsyncError
from modelsync.lockfile.model import LockedModel
from modelsync.manifest.load import parse_manifest
from modelsync.manifest.model import ModelRequest, QuantChoice
from modelsync.net.retry import RetryPolicy
from modelsync.ops.lock import LockReport, LockRequest, lock_project
from modelsync.ops.sync import SyncRequest, sync_project
from modelsync.server.runner import ServerHandle
from modelsync.testing.gguf_files import write_gguf
from tests.fixtures.hub import HubRepoFactory
from tests.fixtures.machines import Detector, simulated_machine
from tests.fixtures.models import TINY_REPO as REPO

FAST = RetryPolicy(attempts=2, base_delay=0.01, jitter=0.0)
SHA = "ab" * 32


def only(text: str, hub_endpoint: str | None = None) -> ModelRequest:
    project = (
        parse_manifest(text, hub_endpoint=hub_endpoint) if hub_endpoint else parse_manifest(text)
    )
    [model] = project.models
    return model


@pytest.fixture
def laptop(tmp_path: Path) -> Detector:
    """A 16 GiB machine without a GPU."""
    return simulated_machine(tmp_path / "machine", ram_mib=16384)


def lock(folder: Path, hub: ServerHandle, text: str, **options: object) -> LockReport:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "models.toml"
    manifest.write_text(text)
    request = LockRequest(
        manifest=manifest,
        environ={"HF_ENDPOINT": hub.endpoint},
        retry=FAST,
        detector=simulated_machine(folder / "machine", ram_mib=16384),
        **options,  # type: ignore[arg-type]
    )
    return asyncio.run(lock_project(request))


def entry(report: LockReport) -> LockedModel:
    [outcome] = report.models
    [first] = outcome.entries
    return first


# ---- hf.co/org/repo:latest -----------------------------------------------------------------


@pytest.mark.parametrize(
    "source", ["hf.co/org/repo:latest", "hf.co/org/repo:LATEST", "hf.co/org/repo"]
)
def test_latest_tag_means_no_tag(source: str) -> None:
    """`:latest` (ollama's spelling) is no quantization tag: the best that fits."""
    model = only(f'[models.m]\nsource = "{source}"\n')
    assert (model.registry.name, model.repo, model.quant, model.file) == (
        "hf",
        "org/repo",
        QuantChoice(),
        None,
    )


def test_quant_names_are_case_insensitive_everywhere() -> None:
    """`q4_k_m` in quant, in a tag and in a list is Q4_K_M; `BEST-FULL` is best-full."""
    assert only('[models.m]\nsource = "a/b"\nquant = "q4_k_m"\n').quant.labels == ("Q4_K_M",)
    assert only('[models.m]\nsource = "hf.co/a/b:q8_0"\n').quant.labels == ("Q8_0",)
    assert only('[models.m]\nsource = "a/b"\nquant = ["q6_k", "Ud-q4_k_xl"]\n').quant.labels == (
        "Q6_K",
        "UD-Q4_K_XL",
    )
    assert only('[models.m]\nsource = "a/b"\nquant = "BEST-FULL"\n').quant == QuantChoice(
        "best-full"
    )


# ---- Hub URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "revision", "file"),
    [
        ("https://huggingface.co/org/repo", "main", None),
        ("https://huggingface.co/org/repo/", "main", None),
        ("https://hf.co/org/repo/tree/v1.0", "v1.0", None),
        ("https://huggingface.co/org/repo/blob/main/repo-Q4_K_M.gguf", "main", "repo-Q4_K_M.gguf"),
        (
            "https://huggingface.co/org/repo/resolve/refs%2Fpr%2F3/sub/x%20y.gguf?download=true",
            "refs/pr/3",
            "sub/x y.gguf",
        ),
        ("http://127.0.0.1:9/org/repo/resolve/abc/x.gguf", "abc", "x.gguf"),
        ("https://hub.corp.example/org/repo", "main", None),
    ],
)
def test_hub_urls_are_hub_sources(source: str, revision: str, file: str | None) -> None:
    """Hub page and file URLs (huggingface.co, hf.co, $HF_ENDPOINT, a declared Hub's endpoint)
    name a repository, a revision and a file; no sha256 is asked for."""
    model = only(
        '[registries.corp]\ntype = "huggingface"\nendpoint = "https://hub.corp.example"\n'
        f'[models.m]\nsource = "{source}"\n',
        hub_endpoint="http://127.0.0.1:9",
    )
    registry = "corp" if "corp" in source else "hf"
    assert (model.registry.name, model.repo, model.revision, model.file, model.url) == (
        registry,
        "org/repo",
        revision,
        file,
        None,
    )


def test_hub_url_problems_are_one_line_errors() -> None:
    """A dataset, an unreadable Hub path, a contradicting revision or a sha256 is refused."""
    cases = {
        "https://huggingface.co/datasets/org/data": "is a dataset, not a model repository",
        "https://huggingface.co/org/repo/commits/main": "cannot read the Hub URL",
        'https://huggingface.co/org/repo/blob/v2/x.gguf"\nrevision = "v1': (
            'revision = "v1" contradicts the URL\'s "v2"'
        ),
        f'https://huggingface.co/org/repo/resolve/main/x.gguf"\nsha256 = "{SHA}': (
            "sha256 is for plain URL sources"
        ),
    }
    for source, expected in cases.items():
        with pytest.raises(ManifestError) as caught:
            parse_manifest(f'[models.m]\nsource = "{source}"\n')
        assert caught.value.exit_code == ExitCode.USAGE
        assert expected in caught.value.one_line(), source
    other = only(f'[models.m]\nsource = "https://example.org/org/repo/x.gguf"\nsha256 = "{SHA}"\n')
    assert (other.registry.name, other.url) == ("url", "https://example.org/org/repo/x.gguf")


def test_file_url_on_hf_endpoint_locks_and_syncs(
    hub: ServerHandle, tiny: str, tmp_path: Path, laptop: Detector
) -> None:
    """A …/blob/main/<file> URL on $HF_ENDPOINT locks that file at the commit from the Hub's
    listing, and `sync --locked` finds the lock fresh (sync reads the source the same way)."""
    url = f"{hub.endpoint}/{REPO}/blob/main/Tiny-Q4_K_M.gguf"
    report = lock(tmp_path / "p", hub, f'[models.t]\nsource = "{url}"\n')
    found = entry(report)
    assert (found.registry, found.repo, found.commit, found.url, found.quant) == (
        "hf",
        REPO,
        tiny,
        None,
        "Q4_K_M",
    )
    assert [f.path for f in found.files] == ["Tiny-Q4_K_M.gguf"]
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }
    synced = asyncio.run(
        sync_project(
            SyncRequest(
                manifest=tmp_path / "p" / "models.toml",
                store=tmp_path / "store",
                environ=env,
                retry=FAST,
                locked=True,
                detector=laptop,
            )
        )
    )
    assert synced.models == ("t",)
    assert (tmp_path / "p" / "models" / "t" / "Tiny-Q4_K_M.gguf").stat().st_size == found.size


# ---- best up to Q8_0 -----------------------------------------------------------------------------


def test_best_stops_at_q8_0_and_full_precision_is_asked_for(
    hub: ServerHandle, tiny: str, tmp_path: Path
) -> None:
    """A small model gets Q8_0, not F16; `best-full`, a named F16 or a `:F16` tag take F16;
    --explain marks F16's row and says why it was skipped."""
    best = lock(
        tmp_path / "best", hub, f'[models.t]\nsource = "hf.co/{REPO}:latest"\n', explain=True
    )
    assert entry(best).quant == "Q8_0"
    [explained] = best.models[0].explained
    statuses = {r.variant.display: r.status for r in explained.choice.rows}
    assert statuses["F16"] == "full precision"
    assert statuses["Q8_0"] == "chosen"
    for name, text in (
        ("full", f'[models.t]\nsource = "{REPO}"\nquant = "best-full"\n'),
        ("named", f'[models.t]\nsource = "{REPO}"\nquant = "f16"\n'),
        ("tag", f'[models.t]\nsource = "hf.co/{REPO}:F16"\n'),
    ):
        found = entry(lock(tmp_path / name, hub, text))
        assert found.quant == "F16", name
        assert [f.path for f in found.files] == [
            "Tiny-F16-00001-of-00002.gguf",
            "Tiny-F16-00002-of-00002.gguf",
        ]


def test_best_takes_full_precision_when_the_repo_has_nothing_else(
    hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """A repository holding only an F16 file still locks with `best`."""
    (tmp_path / "src").mkdir()
    path = write_gguf(tmp_path / "src" / "only-F16.gguf", quant="F16")
    hub_repo("org/only-f16", {path.name: path})
    found = entry(lock(tmp_path / "p", hub, '[models.o]\nsource = "org/only-f16"\n'))
    assert (found.quant, [f.path for f in found.files]) == ("F16", ["only-F16.gguf"])


# ---- a quantization with include -------------------------------------------------------------


def test_quant_with_include_locks_the_projector_too(
    hub: ServerHandle, tiny: str, tmp_path: Path
) -> None:
    """`quant` (or a tag, or `best`) with `include = ["mmproj-*.gguf"]` locks the model file
    and the vision projector; globs that match nothing are exit 2 naming the files there."""
    for name, text in (
        (
            "quant",
            f'[models.v]\nsource = "{REPO}"\nquant = "Q4_K_M"\ninclude = ["mmproj-*.gguf"]\n',
        ),
        ("tag", f'[models.v]\nsource = "hf.co/{REPO}:Q4_K_M"\ninclude = ["mmproj-*.gguf"]\n'),
    ):
        found = entry(lock(tmp_path / name, hub, text))
        assert found.quant == "Q4_K_M", name
        assert [f.path for f in found.files] == ["Tiny-Q4_K_M.gguf", "mmproj-Tiny-F16.gguf"]
        assert found.reason.endswith("; with mmproj-Tiny-F16.gguf (include)")
    best = entry(
        lock(
            tmp_path / "best",
            hub,
            f'[models.v]\nsource = "{REPO}"\nquant = "best"\ninclude = ["mmproj-*"]\n',
        )
    )
    assert [f.path for f in best.files] == ["Tiny-Q8_0.gguf", "mmproj-Tiny-F16.gguf"]
    with pytest.raises(ModelsyncError) as caught:
        lock(tmp_path / "none", hub, f'[models.v]\nsource = "{REPO}:Q4_K_M"\ninclude = ["*.png"]\n')
    assert caught.value.exit_code == ExitCode.USAGE
    assert "include ['*.png'] matched no other file of hf:org/Tiny-GGUF@" in caught.value.one_line()
