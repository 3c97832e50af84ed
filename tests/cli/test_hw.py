"""`modelsync hw`: this machine's profile, and with --model the table of what fits here."""

from __future__ import annotations

from pathlib import Path

from modelsync.server.runner import ServerHandle
from modelsync.testing.gguf_files import make_gguf_repo
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory


def test_hw_shows_the_detected_profile(run_cli: CliRunner) -> None:
    """`hw` needs no manifest and prints the profile, RAM, GPUs and the usable budget."""
    result = run_cli("hw")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("profile: detected (detected), fingerprint sha256:")
    assert any(line.startswith("ram: ") and " total, " in line for line in lines)
    assert any(line.startswith("usable for models: ") for line in lines)


def test_hw_json_report(run_cli: CliRunner) -> None:
    """`hw --json` reports totals and budgets as numbers, and the same fingerprint every run."""
    first = [e for e in run_cli("hw", "--json").json_lines() if e.get("event") == "report"]
    second = [e for e in run_cli("hw", "--json").json_lines() if e.get("event") == "report"]
    [report] = first
    assert report["command"] == "hw"
    assert report["ram_total"] > 0
    assert 0 < report["budget_ram"] < report["ram_total"]
    assert report["fingerprint"] == second[0]["fingerprint"]


def test_hw_model_shows_what_fits_here(
    run_cli: CliRunner, hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """`hw --model NAME` resolves that model for this machine and prints its candidates table."""
    folder = tmp_path / "src"
    make_gguf_repo(folder, "Tiny", quants=("Q4_K_M", "Q8_0"))
    ref = hub_repo("org/Tiny-GGUF", {p.name: p for p in folder.iterdir()})
    Path("models.toml").write_text('[models.tiny]\nsource = "org/Tiny-GGUF"\n')
    result = run_cli("hw", "--model", "tiny", env={"HF_ENDPOINT": hub.endpoint})
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "tiny (hf:org/Tiny-GGUF) on profile detected:" in out
    assert "→  Q8_0" in out  # a 3 MB model: the best quality up to Q8_0 fits on any machine
    assert "  skipped F16: full precision costs twice Q8_0" in out
    assert (
        "  reason: Q8_0: the best quality up to Q8_0 that fits the machine it was chosen on "
        "(needs est. " in out
    )
    assert ref.commit
    assert not Path("models.lock").exists()


def test_hw_unknown_model_exits_2(run_cli: CliRunner) -> None:
    """`hw --model` with a name the manifest lacks exits 2 listing the models."""
    Path("models.toml").write_text('[models.tiny]\nsource = "org/x"\n')
    result = run_cli("hw", "--model", "huge")
    assert result.exit_code == 2
    assert result.stderr == (
        "modelsync: error: --model huge: no such model in models.toml; models: tiny\n"
    )
