"""The idle path reads models.lock and models.toml without pydantic (modelsync/schema.py): its
fast reader takes only what is plainly valid, reads it to the values pydantic gives, and hands
anything else to pydantic, so a hostile or malformed file gets the one-line error (exit 2: file,
line, key) it got when pydantic read every file. The expected lines below are what the code
before the fast reader printed for the same files (checked against it when written)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from modelsync import schema
from modelsync.errors import ExitCode, LockfileError, ManifestError
from modelsync.lockfile.model import Lockfile
from modelsync.lockfile.render import parse_lock
from modelsync.manifest.load import parse_manifest
from modelsync.manifest.model import Manifest
from tests.fixtures.cli import CliRunner

SHA = "a" * 64
SHA_B = "b" * 64
D = "sha256:" + "1" * 64
COMMIT = "c" * 40
LOCK = f'''version = 1
manifest-digest = "{D}"

[[profile]]
name = "gpu"
source = "declared"
fingerprint = "{D}"
ram = 68719476736
vram = 25769803776
gpus = 1

[[profile]]
name = "mac"
source = "declared"
fingerprint = "{D}"
ram = 17179869184
unified = true

[[model]]
name = "gemma"
registry = "hf"
repo = "org/gemma-GGUF"
revision = "main"
commit = "{COMMIT}"
profile = "gpu"
quant = "Q4_K_M"
context = 8192
memory = 2147483648
reason = "Q4_K_M fits"
inputs = "{D}"

[[model.file]]
path = "gemma-Q4_K_M.gguf"
size = 806058240
sha256 = "{SHA}"

[[model.file]]
path = "sub/mmproj.gguf"
size = 0
sha256 = "{SHA_B}"

[[model]]
name = "llama"
registry = "ollama"
repo = "library/llama3"
revision = "8b"
commit = "{D}"
reason = "the tag"
inputs = "{D}"

[[model.file]]
path = "llama3-8b.gguf"
size = 5
sha256 = "{SHA}"

[[model]]
name = "tiny"
registry = "url"
url = "https://files.example/tiny.gguf"
reason = "pinned"
inputs = "{D}"

[[model.file]]
path = "tiny.gguf"
size = 1
sha256 = "{SHA}"
'''

MANIFEST = f'''[settings]
target = "weights"
link = "hardlink"
gitignore = false

[registries.corp]
type = "huggingface"
endpoint = "https://hub.corp.example"
token-env = "MODELSYNC_REGISTRY_CORP_TOKEN"

[registries.files]
type = "url"
endpoint = "https://files.example/models"

[profiles.gpu]
ram = "64GiB"
vram = 25769803776
gpus = 2

[profiles.mac]
ram = "16 GB"
unified = true

[models.gemma]
source = "hf://org/gemma-GGUF"
quant = ["Q5_K_M", "Q4_K_M"]
include = ["mmproj-*.gguf"]
revision = "main"
context = 8192
quality-floor = "Q3_K_M"

[models.embed]
source = "corp://org/bge-small"
include = ["*.safetensors", "*.json"]
exclude = ["onnx/*"]

[models.tiny]
source = "https://files.example/tiny.gguf"
sha256 = "{SHA}"

[models.llama]
source = "ollama://llama3:8b"

[publish.mirror]
repo = "team/gemma-GGUF"
model = "gemma"
license = "gemma"
tags = ["gguf"]
private = true
'''

HINT = "; run `modelsync lock` to regenerate it (or restore it from git)"
TINY_FILE = f'[[model.file]]\npath = "tiny.gguf"\nsize = 1\nsha256 = "{SHA}"\n'
UNSAFE = "must be relative, without '..' or backslashes"
# (replace this, with that, the error line up to its hint), as printed before.
HOSTILE_LOCKS = [
    (f'sha256 = "{SHA}"', f'sha256 = "{SHA.upper()}"', ":35: model.file.sha256: expected 64 "),
    (
        'path = "gemma-Q4',
        'path = "../etc/passwd"\n#',
        f":33: model.file.path: unsafe path '../etc/passwd': {UNSAFE}",
    ),
    (
        'path = "gemma-Q4',
        'path = "/abs.gguf"\n#',
        f":33: model.file.path: unsafe path '/abs.gguf': {UNSAFE}",
    ),
    (
        'path = "sub/mmproj.gguf"',
        'path = "gemma-Q4_K_M.gguf"',
        ":32: model.file: a file is listed twice",
    ),
    (
        f'commit = "{COMMIT}"',
        f'commit = "{"z" * 40}"',
        ":24: model.commit: expected a 40-hex commit id",
    ),
    (
        "https://files",
        "https://u:p@files",
        ":59: model.url: expected an http(s) URL without credentials",
    ),
    (
        'url = "https://files.example/tiny.gguf"',
        'url = "file:///x"',
        ":59: model.url: expected an http(s) URL",
    ),
    ('quant = "Q4_K_M"', "quant = 4", ":26: model.quant: Input should be a valid string"),
    ('quant = "Q4_K_M"', 'colour = "red"', ":26: model.colour: Extra inputs are not permitted"),
    (
        "size = 806058240",
        "size = -1",
        ":34: model.file.size: Input should be greater than or equal to 0",
    ),
    ("size = 806058240", "size = true", ":34: model.file.size: Input should be a valid integer"),
    ("size = 806058240", "size = 1.5", ":34: model.file.size: Input should be a valid integer"),
    (
        "size = 806058240",
        'size = "806058240"',
        ":34: model.file.size: Input should be a valid integer",
    ),
    (
        "context = 8192",
        "context = 0",
        ":27: model.context: Input should be greater than or equal to 1",
    ),
    (
        'source = "declared"',
        'source = "guessed"',
        ":6: profile.source: Input should be 'declared' or",
    ),
    ("unified = true", 'unified = "yes"', ":17: profile.unified: Input should be a valid boolean"),
    ('reason = "the tag"\n', "", ":42: model.reason: Field required"),
    (
        f'inputs = "{D}"\n\n{TINY_FILE}',
        f'inputs = "sha256:x"\n\n{TINY_FILE}',
        ':61: model.inputs: expected "sha256:"',
    ),
    (
        "manifest-digest =",
        f'manifest_digest = "{D}"\nmanifest-digest =',
        ":2: manifest_digest: Extra inputs",
    ),
    (
        'name = "tiny"',
        'name = "gemma"\nprofile = "gpu"',
        ":19: model: a model is locked twice for the same profile",
    ),
    (TINY_FILE, "file = []\n", ":63: model.file: a locked model needs at least one file"),
    (TINY_FILE, 'file = "tiny.gguf"\n', ":63: model.file: Input should be a valid array"),
    (TINY_FILE, "file = [1]\n", ":63: model.file: Input should be an object"),
    (
        'name = "llama"',
        'name = "llama"\nextra = { a = 1 }',
        ":44: model.extra: Extra inputs are not permitted",
    ),  # A TOML date used to stop the JSON step of validation: exit 1, an internal error.
    (
        'revision = "8b"',
        "revision = 1979-05-27",
        ":46: model.revision: Input should be a valid string",
    ),
]
HOSTILE_MANIFESTS = [
    (
        'link = "hardlink"',
        'link = "rsync"',
        (
            ":3: settings.link: expected one of 'auto', 'reflink', 'hardlink', 'symlink' "
            "or 'copy', found \"rsync\""
        ),
    ),
    (
        'link = "hardlink"',
        'lnik = "hardlink"',
        ':3: settings.lnik: unknown key; did you mean "link"?',
    ),
    (
        "gitignore = false",
        'gitignore = "no"',
        ':4: settings.gitignore: expected true or false, found "no"',
    ),
    (
        "context = 8192",
        'context = "8k"',
        ':29: models.gemma.context: expected an integer, found "8k"',
    ),
    (
        "context = 8192",
        "context = 0",
        ":29: models.gemma.context: input should be greater than or equal to 1, found 0",
    ),
    (
        "context = 8192",
        "context = true",
        ":29: models.gemma.context: expected an integer, found true",
    ),
    (
        "gpus = 2",
        "gpus = 65",
        ":18: profiles.gpu.gpus: input should be less than or equal to 64, found 65",
    ),
    ("gpus = 2", "gpus = 2.0", ":18: profiles.gpu.gpus: expected an integer, found 2.0"),
    (
        'ram = "64GiB"',
        'ram = "lots"',
        ':16: profiles.gpu.ram: expected a size like "24GiB" or "16GB", found "lots"',
    ),
    ('ram = "64GiB"', "ram = -1", ":16: profiles.gpu.ram: expected a positive size, found -1"),
    ('ram = "16 GB"\n', "", ':20: profiles.mac.ram: required key is missing; add ram = "16GiB"'),
    (
        'include = ["*.safetensors", "*.json"]',
        'include = "*.json"',
        ":34: models.embed.include: expected a list of glob patterns",
    ),
    (
        'include = ["*.safetensors", "*.json"]',
        "include = []\nrevision = 1979-05-27",
        ":35: models.embed.revision: expected a string, found datetime.date(1979, 5, 27)",
    ),
    (
        'quant = ["Q5_K_M", "Q4_K_M"]',
        "quant = []",
        ":26: models.gemma.quant: expected a quantization name or a non-empty list",
    ),
    (
        'quant = ["Q5_K_M", "Q4_K_M"]',
        "quant = 4",
        ":26: models.gemma.quant: expected a quantization name or a non-empty list",
    ),
    (
        'type = "url"',
        'type = "ftp"',
        (
            ":12: registries.files.type: expected one of 'huggingface', 'url' or 'ollama', "
            'found "ftp"'
        ),
    ),
    (
        '[settings]\ntarget = "weights"',
        'settings = "x"\n[other]\ntarget = "weights"',
        ':1: settings: expected a table, found "x"; (1 more problem after this one)',
    ),
    (
        'tags = ["gguf"]',
        'tags = ["gguf", 1]',
        ":48: publish.mirror.tags: expected a string, found 1",
    ),
    (
        'source = "ollama://llama3:8b"',
        "source = 1",
        ":42: models.llama.source: expected a string, found 1",
    ),
    (
        'source = "ollama://llama3:8b"',
        'soruce = "x"',
        ":41: models.llama.source: required key is missing; ",
    ),
    (
        "token-env =",
        "token_env =",
        ':9: registries.corp.token_env: unknown key; did you mean "token-env"?',
    ),
]


def test_valid_files_read_the_same_through_the_fast_reader_and_pydantic() -> None:
    """Everything the files can hold (profiles, Hub, Ollama and URL entries; every manifest
    table) is read by the fast reader, to values equal to pydantic's."""
    lock = tomllib.loads(LOCK)
    fast_lock = schema.fast(Lockfile, lock)
    assert fast_lock is not None
    assert fast_lock == schema.validate(Lockfile, lock, json=True)
    assert [f.path for f in fast_lock.models[0].files] == ["gemma-Q4_K_M.gguf", "sub/mmproj.gguf"]
    manifest = tomllib.loads(MANIFEST)
    fast_manifest = schema.fast(Manifest, manifest)
    assert fast_manifest is not None
    assert fast_manifest == schema.validate(Manifest, manifest)
    assert fast_manifest.profiles["mac"].ram == 16 * 10**9
    assert parse_lock(LOCK) == fast_lock
    assert parse_manifest(MANIFEST).settings.target == "weights"


@pytest.mark.parametrize(("old", "new", "expected"), HOSTILE_LOCKS)
def test_a_hostile_lock_gets_pydantics_error_through_the_fast_reader(
    old: str, new: str, expected: str
) -> None:
    """The fast reader refuses to read a bad lock (returns None); pydantic then names the
    line and key, exit 2, as before."""
    text = LOCK.replace(old, new, 1)
    assert text != LOCK
    assert schema.fast(Lockfile, tomllib.loads(text)) is None
    with pytest.raises(schema.TableError) as slow:
        schema.validate(Lockfile, tomllib.loads(text), json=True)
    with pytest.raises(LockfileError) as caught:
        parse_lock(text)
    line = caught.value.one_line()
    assert line.startswith("models.lock" + expected), line
    assert str(slow.value.errors[0]["msg"]).removeprefix("Value error, ") in line
    assert line.endswith(HINT)
    assert caught.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize(("old", "new", "expected"), HOSTILE_MANIFESTS)
def test_a_hostile_manifest_gets_the_same_error_through_the_fast_reader(
    old: str, new: str, expected: str
) -> None:
    """The same for models.toml: the fast reader gives up, pydantic's error is translated to
    the manifest's own line as before."""
    text = MANIFEST.replace(old, new, 1)
    assert text != MANIFEST
    assert schema.fast(Manifest, tomllib.loads(text)) is None
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert caught.value.one_line().startswith("models.toml" + expected), caught.value.one_line()
    assert caught.value.exit_code == ExitCode.USAGE


def test_a_no_op_sync_still_refuses_a_hostile_lock(
    tiny_project: dict[str, str], cli_env: dict[str, str], run_cli_process: CliRunner
) -> None:
    """In a real process (the idle path, no pydantic loaded up front), a lock edited after the
    first sync stops `sync` and `status` with the line and key, exit 2, before anything else."""
    env = {**cli_env, **tiny_project}
    assert run_cli_process("sync", env=env).exit_code == 0
    lock = Path("models.lock")
    text = lock.read_text()
    lock.write_text(text.replace('path = "config.json"', 'path = "../config.json"', 1))
    for command in ("sync", "status"):
        result = run_cli_process(command, env=env)
        assert result.exit_code == ExitCode.USAGE, result.stderr
        assert "models.lock:" in result.stderr
        assert "model.file.path: unsafe path '../config.json'" in result.stderr
