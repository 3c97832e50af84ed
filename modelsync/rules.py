"""The shared rules of what is safe and well-formed (pure, imports nothing of modelsync).

One copy of each rule, used by the manifest, the lock, the registry client and the server:
names that become folders, paths that become files, digest and commit forms, Hub endpoints, and
the quantization labels with their quality ranks (notes/hardware-and-quants.md sections 2–4:
llama.cpp's KLD scoreboard and quantize README; higher is better, labels marked ≈ share a rank).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import quote, urlsplit

DEFAULT_HUB_ENDPOINT = "https://huggingface.co"
HF_ENDPOINT_ENV = "HF_ENDPOINT"
DEFAULT_OLLAMA_ENDPOINT = "https://registry.ollama.ai"
"""The public Ollama registry (`ollama pull`'s default host)."""
OLLAMA_NAMESPACE = "library"
OLLAMA_TAG = "latest"

MAX_PATH_LENGTH = 1024
"""Longer paths are refused everywhere (the server's limit; no real repository comes close)."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_REPO_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_PREFIXED = re.compile(r"sha256:[0-9a-f]{64}")
_DRIVE = re.compile(r"[A-Za-z]:")
# S3's bucket rules (virtual-host safe: no `_`, no upper case, no `..`, not an IP address).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4 = re.compile(r"[0-9]+(?:\.[0-9]+){3}")
_PREFIX_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Ollama's name parts (types/model/name.go): a namespace has no '.', a model or tag may.
_OLLAMA_NAMESPACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}")
_OLLAMA_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")


def is_safe_name(name: str) -> bool:
    """A model, registry or profile name, one folder under the target dir: letters, digits,
    `.`, `_`, `-`, starting with a letter or digit, at most 96 characters."""
    return _NAME.fullmatch(name) is not None


def is_repo_part(part: str) -> bool:
    """A namespace or repository name as the Hub allows it: letters, digits, `.`, `_`, `-`, at
    most 96, starting and ending with a letter or digit, no `..` and no `--` (the Hub cache's
    separator)."""
    return _REPO_PART.fullmatch(part) is not None and ".." not in part and "--" not in part


def is_ollama_repo(repo: str) -> bool:
    """`namespace/model` as Ollama allows it (no `..`: the model names a file)."""
    namespace, _, model = repo.partition("/")
    return (
        _OLLAMA_NAMESPACE.fullmatch(namespace) is not None
        and _OLLAMA_PART.fullmatch(model) is not None
        and ".." not in model
    )


def is_ollama_tag(tag: str) -> bool:
    """An Ollama tag: letters, digits, `_`, `-`, `.`, at most 80, no `..`."""
    return _OLLAMA_PART.fullmatch(tag) is not None and ".." not in tag


def is_safe_path(path: str) -> bool:
    """A relative POSIX path inside a repository: not empty, not absolute, no drive letter, no
    backslash, no control character (NUL included), no empty, `.` or `..` segment."""
    return (
        0 < len(path) <= MAX_PATH_LENGTH
        and not path.startswith("/")
        and "\\" not in path
        and not any(ord(c) < 0x20 or c == "\x7f" for c in path)
        and _DRIVE.match(path) is None
        and all(part not in ("", ".", "..") for part in path.split("/"))
    )


def is_bucket(name: str) -> bool:
    """An S3 bucket name as AWS allows it for new buckets: 3-63 of `a-z`, `0-9`, `.`, `-`,
    starting and ending with a letter or digit, no `..`, not shaped like an IP address."""
    return (
        _BUCKET.fullmatch(name) is not None and ".." not in name and _IPV4.fullmatch(name) is None
    )


def is_key_prefix(prefix: str) -> bool:
    """An object key prefix: `/`-separated parts of letters, digits, `.`, `_`, `-`, each starting
    with a letter or digit (so no `.`/`..` part, no empty part, nothing S3 or a proxy rewrites);
    at most 512 characters; empty means the bucket's top level."""
    return len(prefix) <= 512 and (
        not prefix or all(_PREFIX_PART.fullmatch(part) for part in prefix.split("/"))
    )


def blob_key(prefix: str, sha256: str) -> str:
    """`<prefix>/sha256/<hex>`: where a blob lies in a remote, built only from a validated digest
    and a validated prefix."""
    if not is_sha256(sha256) or not is_key_prefix(prefix):
        raise ValueError(f"not a blob digest or key prefix: {sha256!r}, {prefix!r}")
    return f"{prefix}/sha256/{sha256}" if prefix else f"sha256/{sha256}"


def is_sha256(value: str) -> bool:
    """64 lowercase hex digits."""
    return _SHA256.fullmatch(value) is not None


def is_commit_id(value: str) -> bool:
    """A full 40-hex (lowercase) git commit id."""
    return _COMMIT.fullmatch(value) is not None


def is_prefixed_digest(value: str) -> bool:
    """`sha256:` and 64 lowercase hex digits (manifest digests, inputs, fingerprints)."""
    return _PREFIXED.fullmatch(value) is not None


def hub_endpoint(declared: str | None, environ: Mapping[str, str]) -> str:
    """A Hub-compatible registry's endpoint: the declared one, else `$HF_ENDPOINT`, else the Hub;
    without a trailing slash."""
    return (declared or environ.get(HF_ENDPOINT_ENV) or DEFAULT_HUB_ENDPOINT).rstrip("/")


def hub_file_url(endpoint: str, repo: str, commit: str, path: str) -> str:
    """A file's download URL on a Hub-compatible endpoint: `{endpoint}/{repo}/resolve/{commit}/`
    and the path, quoted."""
    return f"{endpoint}/{repo}/resolve/{commit}/{quote(path, safe='/')}"


def ollama_blob_url(endpoint: str, repo: str, sha256: str) -> str:
    """A blob's URL on an Ollama registry: `{endpoint}/v2/{ns}/{model}/blobs/sha256:{hex}`."""
    return f"{endpoint}/v2/{repo}/blobs/sha256:{sha256}"


def endpoint_key(url: str) -> str:
    """`scheme://host:port/path` with the host lower-cased, the default port explicit and no
    trailing slash: two spellings of one endpoint give one key."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}{parts.path.rstrip('/')}"


# Best first; a tuple is one rank (≈ in the notes).
QUANT_PREFERENCE: tuple[tuple[str, ...], ...] = (
    ("BF16", "F16"),
    ("F32",),  # 16-bit quality at twice the size: only wins when no 16-bit file exists
    ("Q8_0", "UD-Q8_K_XL", "Q8_K_XL"),
    ("UD-Q6_K_XL", "Q6_K_L", "Q6_K_XL"),
    ("Q6_K",),
    ("UD-Q5_K_XL", "Q5_K_L", "Q5_K_XL"),
    ("Q5_K_M",),
    ("Q5_K_S",),
    ("Q5_1",),
    ("Q5_0",),
    ("UD-Q4_K_XL", "Q4_K_L", "Q4_K_XL"),
    ("Q4_K_M",),
    ("Q4_K_S",),
    ("IQ4_NL",),
    ("IQ4_XS",),
    ("MXFP4_MOE", "MXFP4", "NVFP4"),
    ("Q4_1",),
    ("Q4_0",),
    ("UD-Q3_K_XL", "Q3_K_XL"),
    ("Q3_K_L",),
    ("Q3_K_M",),
    ("IQ3_M",),
    ("IQ3_S",),
    ("IQ3_XS",),
    ("IQ3_XXS",),
    ("Q3_K_S",),
    ("UD-Q2_K_XL", "Q2_K_L", "Q2_K_XL"),
    ("IQ2_M",),
    ("Q2_K",),
    ("Q2_K_S",),
    ("IQ2_S",),
    ("IQ2_XS",),
    ("IQ2_XXS",),
    ("IQ1_M",),
    ("IQ1_S",),
    ("TQ2_0", "Q2_0"),  # only for natively ternary / 1-bit models
    ("TQ1_0", "Q1_0"),
)

QUANT_RANKS: Mapping[str, float] = MappingProxyType(
    {
        label: float(len(QUANT_PREFERENCE) - index)
        for index, group in enumerate(QUANT_PREFERENCE)
        for label in group
    }
)
"""Label → rank (higher is better)."""

QUANT_PREFIXES = ("UD-", "i1-")
"""Unsloth Dynamic mixes and mradermacher's imatrix files."""

QUANT_LABELS: frozenset[str] = frozenset(
    label for label in QUANT_RANKS if not label.startswith("UD-")
)
"""Labels without a prefix, as they appear in file names and as a manifest may name them."""
