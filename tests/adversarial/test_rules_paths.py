"""One path rule for the manifest, the lock and the registry listing (modelsync.rules): a file
path models.toml names is refused for everything the lock refuses, control characters and drive
letters included (the manifest's own copy of the check used to miss both)."""

from __future__ import annotations

import pytest

from modelsync.errors import ExitCode, ManifestError
from modelsync.lockfile.model import LockedFile
from modelsync.manifest.load import parse_manifest

SHA = "ab" * 32
UNSAFE = ["a\x01b.gguf", "tab\there.gguf", "del\x7f.gguf", "C:evil.gguf", "d:/x/evil.gguf"]


def toml_escaped(path: str) -> str:
    """The path as a TOML basic string body (control characters as \\uXXXX)."""
    return "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or c == "\x7f" else c for c in path)


@pytest.mark.parametrize("path", UNSAFE)
def test_the_lock_refuses_the_path(path: str) -> None:
    """The lockfile model refuses each of these paths (the reference the manifest must meet)."""
    with pytest.raises(ValueError, match="unsafe path"):
        LockedFile(path=path, size=1, sha256=SHA)


@pytest.mark.parametrize("path", UNSAFE)
@pytest.mark.parametrize(
    "head",
    [
        '[models.m]\nsource = "org/repo:{path}"\n',
        '[registries.files]\ntype = "url"\nendpoint = "https://files.example"\n'
        '[models.m]\nsource = "files://{path}"\nsha256 = "' + SHA + '"\n',
    ],
)
def test_the_manifest_refuses_what_the_lock_refuses(path: str, head: str) -> None:
    """A source naming such a file is a one-line error on models.m.source (exit 2) that shows the
    path escaped, never raw control characters."""
    with pytest.raises(ManifestError) as caught:
        parse_manifest(head.format(path=toml_escaped(path)))
    assert caught.value.exit_code == ExitCode.USAGE
    line = caught.value.one_line()
    assert "models.m.source: unsafe file path " in line
    assert repr(path) in line
    assert not any(ord(c) < 0x20 or c == "\x7f" for c in line)
