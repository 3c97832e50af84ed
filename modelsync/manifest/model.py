"""models.toml as values: the raw schema (strict, `extra="forbid"`) and the normalized project.

Pure: `Manifest` validates the TOML document's shape and types; `build_project` checks what
crosses fields (source grammar, registry aliases, quantization names) and returns a `Project`
of normalized `ModelRequest`s. Problems carry the key path (`models.gemma.quant`) so the loader
can name the file and line.

Source grammar (design.md section 3):

    hf://org/repo            registry alias `hf` (implicit), or any declared `NAME://org/repo`
    hf.co/org/repo:Q4_K_M    a quantization tag (case-insensitive); `:latest` means none
    org/repo                 the implicit `hf` registry
    org/repo:file.gguf       one file (shard 1 pulls its group)
    https://huggingface.co/org/repo[/tree/REV | /blob/REV/FILE | /resolve/REV/FILE]
                             a Hub page or file URL (also on $HF_ENDPOINT or a declared Hub
                             registry's endpoint): the Hub source it names, not a plain URL
    https://host/file.gguf   a plain file; needs `sha256`
    NAME://path/file.gguf    a file under a declared `type = "url"` registry's endpoint
    ollama://[ns/]model[:tag]
                             an Ollama registry's tag (namespace `library` and tag `latest`
                             implied, as `ollama pull` does); also `model:tag` with
                             `registry = "ollama"` or any declared `type = "ollama"` registry

`quant` is `best` (the best that fits, up to Q8_0), `best-full` (F16/BF16/F32 too), a label or
a list of labels. `include` globs next to a quantization (or a pinned file) add files such as a
vision projector; without one they select the files of a non-GGUF repository.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

from modelsync.credentials import (
    HF_TOKEN_ENV,
    allowed_token_env,
    may_carry_token,
    registry_token_env,
)
from modelsync.manifest.quants import canonical_label, suggest_label
from modelsync.rules import (
    OLLAMA_NAMESPACE,
    OLLAMA_TAG,
    is_bucket,
    is_key_prefix,
    is_ollama_repo,
    is_ollama_tag,
    is_repo_part,
    is_safe_name,
    is_safe_path,
    is_sha256,
)
from modelsync.schema import Before, Bound, Table, kebab

Loc = tuple[str | int, ...]

DEFAULT_REGISTRY = "hf"
URL_REGISTRY = "url"
OLLAMA_REGISTRY = "ollama"
DEFAULT_REVISION = "main"
MAX_CONTEXT = 1 << 24

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)://(.*)", re.DOTALL)
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}
_HUB_HOSTS = ("hf.co/", "huggingface.co/")
_HUB_ORIGINS = ("https://huggingface.co", "https://hf.co", "https://www.huggingface.co")
_LATEST = "latest"  # `hf.co/org/repo:latest` (ollama's spelling): no tag, the best that fits


class ManifestProblem(ValueError):  # noqa: N818  a value, collected before any error is raised
    """One thing wrong with the manifest: where (key path), what, and the fix."""

    def __init__(self, loc: Loc, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
        self.hint = hint


# ---- the raw schema ----------------------------------------------------------------------


def parse_size(value: object) -> int:
    """Bytes from `24GiB`, `16 GB`, `512MiB` or a plain integer; ValueError with the fix."""
    if isinstance(value, bool):
        raise ValueError(f'expected a size like "24GiB", found {value!r}')  # noqa: TRY004
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"expected a positive size, found {value}")
        return value
    if not isinstance(value, str):
        # pydantic turns ValueError (not TypeError) into a field error with this message.
        raise ValueError(f'expected a size like "24GiB", found {type(value).__name__}')  # noqa: TRY004
    match = _SIZE.fullmatch(value)
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f'expected a size like "24GiB" or "16GB", found "{value}"')
    size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise ValueError(f'expected a positive size, found "{value}"')
    return size


def _string_or_list(value: object) -> object:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise ValueError('expected a quantization name or a non-empty list of them, like "Q4_K_M"')


def _glob_list(value: object) -> object:
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return value
    raise ValueError('expected a list of glob patterns, like ["*.safetensors", "*.json"]')


Size = Annotated[int, Before(parse_size)]
QuantValue = Annotated[str | list[str], Before(_string_or_list)]
Globs = Annotated[list[str], Before(_glob_list)]


class _Table(Table):
    """A TOML table: unknown keys are errors, types are strict, keys are kebab-case (read by
    `schema.load`: a fast reader, pydantic where it gives up)."""

    __slots__ = ()
    __pydantic_config__: ClassVar[dict[str, Any]] = {
        "extra": "forbid",
        "strict": True,
        "alias_generator": kebab,
        "populate_by_name": False,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings(_Table):
    """`[settings]`: where files go and how they are placed."""

    target: str = "models"
    """Relative to the manifest's folder; `~` and `$NAME` are expanded (see `expand_target`)."""
    link: Literal["auto", "reflink", "hardlink", "symlink", "copy"] = "auto"
    gitignore: bool = True
    """The first sync into the target writes `<target>/.gitignore` (`*`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrySpec(_Table):
    """`[registries.NAME]`: a Hub-compatible endpoint, a base URL for plain files, or Ollama."""

    type: Literal["huggingface", "url", "ollama"]
    endpoint: str | None = None
    token_env: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileSpec(_Table):
    """`[profiles.NAME]`: a machine to lock for, declared instead of detected (in bytes;
    `lock.profiles` makes it a `HardwareProfile`)."""

    ram: Size
    vram: Size | None = None
    gpus: Annotated[int, Bound(ge=1, le=64)] = 1
    unified: bool = False

    def canonical(self) -> dict[str, object]:
        """The declared values, for the manifest digest: `gpus` as written even where the
        machine ignores it (a unified profile has one GPU), so existing locks stay fresh."""
        return {
            "ram": self.ram,
            "vram": self.vram,
            "gpus": self.gpus if self.vram else 0,
            "unified": self.unified,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec(_Table):
    """`[models.NAME]`: one model as the user wrote it."""

    source: str
    registry: str | None = None
    quant: QuantValue | None = None
    revision: str | None = None
    context: Annotated[int, Bound(ge=1, le=MAX_CONTEXT)] | None = None
    include: Globs | None = None
    exclude: Globs | None = None
    sha256: str | None = None
    quality_floor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishSpec(_Table):
    """`[publish.NAME]`: a Hub repository to push local files or a locked model to."""

    repo: str
    registry: str | None = None
    files: Globs | None = None
    """Globs relative to the manifest's folder; the files land at the repo's top level."""
    model: str | None = None
    """A locked model to re-host (its files from the store)."""
    private: bool = False
    delete_extra: bool = False
    license: str | None = None
    base_model: str | None = None
    tags: list[str] = field(default_factory=list)
    quantized_by: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteSpec(_Table):
    """`[remotes.NAME]`: a shared blob store (S3-compatible). Credentials never live here: the
    standard AWS variables, or the AWS profile named by `profile`."""

    type: Literal["s3"]
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    """MinIO, R2, Ceph…; None: AWS itself."""
    region: str | None = None
    profile: str | None = None
    """An AWS profile's name (`~/.aws/config`), not a secret."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest(_Table):
    """The whole document."""

    settings: Settings = Settings()
    registries: dict[str, RegistrySpec] = field(default_factory=dict)
    profiles: dict[str, ProfileSpec] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    publish: dict[str, PublishSpec] = field(default_factory=dict)
    remotes: dict[str, RemoteSpec] = field(default_factory=dict)


_TARGET_LOC: Loc = ("settings", "target")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VAR = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*)|)")


def expand_target(raw: str, environ: Mapping[str, str], home: str) -> str:
    """settings.target with a leading `~` (the user's `home`) and `$NAME`/`${NAME}` expanded.

    Nothing is left literal: a folder named `~` under the project is one `rm -rf ~` away from
    the user's home, and a missing variable would place files somewhere unintended, so an
    undefined or empty variable, `~user` and a `$` naming no variable are problems.
    """
    head, rest = "", raw
    if raw == "~" or raw.startswith("~/"):
        head, rest = home, raw[1:]
    elif raw.startswith("~"):
        raise ManifestProblem(
            _TARGET_LOC,
            f'"{raw}": only `~` alone is expanded, not `~user`',
            hint="write that user's home folder out",
        )

    def value(match: re.Match[str]) -> str:
        name = match.group(1) if match.group(1) is not None else match.group(2)
        if name is None or not _ENV_NAME.fullmatch(name):
            raise ManifestProblem(
                _TARGET_LOC,
                f'"{raw}": "{match.group(0)}" names no variable',
                hint="write $NAME or ${NAME}",
            )
        found = environ.get(name)
        if not found:
            state = "is not set" if found is None else "is empty"
            raise ManifestProblem(
                _TARGET_LOC,
                f'"{raw}": environment variable {name} {state}',
                hint=f"set {name}, or write the folder out in models.toml",
            )
        return found

    return head + _VAR.sub(value, rest)


# ---- the normalized project --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegistryRef:
    """A registry after defaults: `endpoint`/`token_env` None mean "from the environment"."""

    name: str
    type: Literal["huggingface", "url", "ollama"]
    endpoint: str | None = None
    token_env: str | None = None

    def canonical(self) -> dict[str, object]:
        """The fields that identify this registry, for digests."""
        return {
            "name": self.name,
            "type": self.type,
            "endpoint": self.endpoint,
            "token-env": self.token_env,
        }


@dataclass(frozen=True, slots=True)
class QuantChoice:
    """`best` (the best that fits, up to Q8_0), `best-full` (full precision too), one `named`
    label, or an `ordered` list of preferences."""

    mode: Literal["best", "best-full", "named", "ordered"] = "best"
    labels: tuple[str, ...] = ()

    def describe(self) -> str:
        """As the user wrote it, for messages."""
        if self.mode in ("best", "best-full"):
            return self.mode
        if self.mode == "named":
            return self.labels[0]
        return "[" + ", ".join(self.labels) + "]"


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One model, normalized: registry resolved, source split, quantization canonical."""

    name: str
    registry: RegistryRef
    repo: str | None = None
    """`org/name` for Hub registries; None for plain files."""
    url: str | None = None
    """The file's URL for `url` registries."""
    revision: str | None = None
    quant: QuantChoice = field(default_factory=QuantChoice)
    file: str | None = None
    """A pinned path in the repo (`org/repo:file.gguf`)."""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    """`include` globs given next to a quantization: files locked with the chosen GGUF."""
    context: int | None = None
    sha256: str | None = None
    quality_floor: str | None = None

    @property
    def source(self) -> str:
        """`registry:org/repo` or the URL, for messages."""
        return self.url or f"{self.registry.name}:{self.repo}"

    @property
    def globs(self) -> bool:
        """Whether include/exclude globs select the files (a non-GGUF repo)."""
        return bool(self.include or self.exclude)

    def canonical(self) -> dict[str, object]:
        """Every field that changes what `lock` resolves, for the per-model inputs digest."""
        # `extras` only when given: entries written before it existed keep their digests.
        extras: dict[str, object] = {"extras": list(self.extras)} if self.extras else {}
        return extras | {
            "name": self.name,
            "registry": self.registry.canonical(),
            "repo": self.repo,
            "url": self.url,
            "revision": self.revision,
            "quant": {"mode": self.quant.mode, "labels": list(self.quant.labels)},
            "file": self.file,
            "include": list(self.include),
            "exclude": list(self.exclude),
            "context": self.context,
            "sha256": self.sha256,
            "quality-floor": self.quality_floor,
        }


@dataclass(frozen=True, slots=True)
class PublishTarget:
    """One publish target, normalized: its registry resolved, exactly one of `files`/`model`."""

    name: str
    registry: RegistryRef
    repo: str
    files: tuple[str, ...] = ()
    model: str | None = None
    private: bool = False
    delete_extra: bool = False
    license: str | None = None
    base_model: str | None = None
    tags: tuple[str, ...] = ()
    quantized_by: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteRef:
    """A blob remote, validated: objects are `<prefix>/sha256/<hex>` in `bucket`."""

    name: str
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None

    def describe(self) -> str:
        """`s3://bucket/prefix` (and the endpoint), for messages."""
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where


@dataclass(frozen=True, slots=True)
class Project:
    """A validated manifest: what `lock` works from (publish targets are not part of its digest)."""

    settings: Settings
    registries: Mapping[str, RegistryRef]
    profiles: Mapping[str, ProfileSpec]
    """The declared profiles by name, sorted."""
    models: tuple[ModelRequest, ...]
    publish: tuple[PublishTarget, ...] = ()
    remotes: tuple[RemoteRef, ...] = ()
    """In manifest order: the order sync tries them in. Not part of the digest: where bytes
    may come from never changes what the lock pins."""

    def model(self, name: str) -> ModelRequest | None:
        """The model of that name, or None."""
        return next((m for m in self.models if m.name == name), None)

    def digest(self) -> str:
        """`sha256:<hex>` of everything the lock depends on; formatting and comments excluded."""
        # The implicit `ollama` registry came after locks existed: leaving it out keeps their
        # digests (a model using it carries its registry in its own canonical form).
        registries = [
            self.registries[n].canonical()
            for n in sorted(self.registries)
            if self.registries[n] != _IMPLICIT_OLLAMA
        ]
        return canonical_digest(
            {
                "registries": registries,
                "profiles": {n: p.canonical() for n, p in self.profiles.items()},
                "models": [m.canonical() for m in self.models],
            }
        )


def canonical_digest(value: object) -> str:
    """`sha256:<hex>` of the canonical JSON of a value (sorted keys, no whitespace)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


_IMPLICIT_OLLAMA = RegistryRef(OLLAMA_REGISTRY, "ollama")


def build_project(
    manifest: Manifest, *, hub_endpoint: str | None = None
) -> tuple[Project, list[ManifestProblem]]:
    """Normalize a schema-valid manifest; returns the project and every problem found.

    `hub_endpoint` is `$HF_ENDPOINT`: URLs under it name Hub sources, like huggingface.co's.
    """
    problems: list[ManifestProblem] = []
    registries = _registries(manifest, problems)
    profiles = _profiles(manifest, problems)
    hubs = _hub_origins(registries, hub_endpoint)
    models = []
    for name in manifest.models:
        try:
            models.append(_model(name, manifest.models[name], registries, hubs))
        except ManifestProblem as problem:
            problems.append(problem)
    models.sort(key=lambda m: m.name)
    targets = []
    for name, spec in sorted(manifest.publish.items()):
        try:
            targets.append(_publish(name, spec, registries, set(manifest.models)))
        except ManifestProblem as problem:
            problems.append(problem)
    remotes = []
    for name, remote in manifest.remotes.items():
        try:
            remotes.append(_remote(name, remote))
        except ManifestProblem as problem:
            problems.append(problem)
    project = Project(
        manifest.settings, registries, profiles, tuple(models), tuple(targets), tuple(remotes)
    )
    return project, problems


def _remote(name: str, spec: RemoteSpec) -> RemoteRef:
    loc: Loc = ("remotes", name)
    if not is_safe_name(name):
        raise ManifestProblem(
            loc, f'invalid remote name "{name}"', "use letters, digits, '.', '_' and '-'"
        )
    if not is_bucket(spec.bucket):
        raise ManifestProblem(
            (*loc, "bucket"),
            f"invalid bucket name {spec.bucket!r}",
            "use 3-63 lowercase letters, digits, '.' and '-', like \"team-models\"",
        )
    prefix = spec.prefix.strip("/")
    if not is_key_prefix(prefix):
        raise ManifestProblem(
            (*loc, "prefix"),
            f"invalid prefix {spec.prefix!r}",
            "use '/'-separated parts of letters, digits, '.', '_' and '-', like \"fleet/blobs\"",
        )
    endpoint = spec.endpoint_url
    if endpoint is not None:
        endpoint = _check_endpoint(
            endpoint, (*loc, "endpoint-url"), fix="use the AWS variables or profile"
        )
        if not may_carry_token(endpoint):
            raise ManifestProblem(
                (*loc, "endpoint-url"),
                f"{endpoint}: signed requests go over https (or to this machine) only",
                "use the store's https endpoint",
            )
    for key, value in (("region", spec.region), ("profile", spec.profile)):
        if value is not None and not is_safe_name(value):
            raise ManifestProblem(
                (*loc, key), f"invalid {key} {value!r}", "use letters, digits, '.', '_' and '-'"
            )
    return RemoteRef(name, spec.bucket, prefix, endpoint, spec.region, spec.profile)


def _registries(manifest: Manifest, problems: list[ManifestProblem]) -> dict[str, RegistryRef]:
    found = {
        DEFAULT_REGISTRY: RegistryRef(DEFAULT_REGISTRY, "huggingface"),
        URL_REGISTRY: RegistryRef(URL_REGISTRY, "url"),
        OLLAMA_REGISTRY: _IMPLICIT_OLLAMA,
    }
    variables = {registry_token_env(name): name for name in found}
    for name, spec in manifest.registries.items():
        loc: Loc = ("registries", name)
        try:
            found[name] = _registry(name, spec, loc)
        except ManifestProblem as problem:
            problems.append(problem)
        variable = registry_token_env(name)
        other = variables.setdefault(variable, name)
        if other != name:  # one token would go to both registries' hosts
            problems.append(
                ManifestProblem(
                    loc,
                    f'registries "{other}" and "{name}" would both take their token from '
                    f"{variable}",
                    "rename one of them",
                )
            )
    return found


def _publish(
    name: str, spec: PublishSpec, registries: Mapping[str, RegistryRef], models: set[str]
) -> PublishTarget:
    loc: Loc = ("publish", name)
    if not is_safe_name(name):
        raise ManifestProblem(
            loc, f'invalid publish target name "{name}"', "use letters, digits, '.', '_' and '-'"
        )
    parts = spec.repo.split("/")
    if len(parts) != 2 or not all(is_repo_part(p) for p in parts):
        raise ManifestProblem(
            (*loc, "repo"),
            f'invalid repository id "{spec.repo}"',
            'expected "namespace/name", like "team/gemma-3-1b-it-GGUF"',
        )
    registry_name = spec.registry or DEFAULT_REGISTRY
    registry = registries.get(registry_name)
    if registry is None or registry.type != "huggingface":
        hubs = ", ".join(sorted(n for n, r in registries.items() if r.type == "huggingface"))
        what = "unknown registry" if registry is None else f"registry of type {registry.type}"
        raise ManifestProblem(
            (*loc, "registry"),
            f'{what} "{registry_name}": publish pushes to a Hub-compatible registry',
            f'use one of: {hubs}, or declare [registries.{registry_name}] type = "huggingface"',
        )
    if (spec.files is None) == (spec.model is None):
        raise ManifestProblem(
            loc,
            "a publish target needs exactly one of files (local globs) or model (a locked model)",
            'add files = ["out/*.gguf"] or model = "<name from [models]>"',
        )
    if spec.model is not None and spec.model not in models:
        known = ", ".join(sorted(models)) or "none declared"
        raise ManifestProblem(
            (*loc, "model"), f'unknown model "{spec.model}"', f"use one of [models]: {known}"
        )
    for index, pattern in enumerate(spec.files or ()):
        if not is_safe_path(pattern):
            raise ManifestProblem(
                (*loc, "files", index),
                f"unsafe glob {pattern!r}",
                "use a pattern relative to the manifest's folder, without '..' or backslashes",
            )
    for index, tag in enumerate(spec.tags):
        if not tag.strip() or any(ord(c) < 0x20 for c in tag):
            raise ManifestProblem((*loc, "tags", index), f"invalid tag {tag!r}", "use plain words")
    return PublishTarget(
        name=name,
        registry=registry,
        repo=spec.repo,
        files=tuple(spec.files or ()),
        model=spec.model,
        private=spec.private,
        delete_extra=spec.delete_extra,
        license=spec.license,
        base_model=spec.base_model,
        tags=tuple(spec.tags),
        quantized_by=spec.quantized_by,
        description=spec.description,
    )


def _registry(name: str, spec: RegistrySpec, loc: Loc) -> RegistryRef:
    if not is_safe_name(name):
        raise ManifestProblem(
            loc, f'invalid registry name "{name}"', "use letters, digits, '.', '_' and '-'"
        )
    endpoint = spec.endpoint
    if endpoint is not None:
        endpoint = _check_endpoint(endpoint, (*loc, "endpoint"))
    token_env = spec.token_env
    if token_env is not None and not allowed_token_env(name, token_env):
        derived = registry_token_env(name)
        # Never echo the value: it may be a token pasted in by mistake.
        raise ManifestProblem(
            (*loc, "token-env"),
            f"token-env may name only {derived} (derived from the registry's name) or "
            f"{HF_TOKEN_ENV}: a project file never picks which secret is sent",
            f"export the token as {derived} and remove token-env (never put a token here)",
        )
    if spec.type == "url" and endpoint is None:
        raise ManifestProblem(
            (*loc, "endpoint"),
            'a registry of type "url" needs an endpoint (the base URL of its files)',
            'add endpoint = "https://files.example/models/"',
        )
    return RegistryRef(name, spec.type, endpoint, token_env)


def _check_endpoint(
    value: str, loc: Loc, fix: str = "export MODELSYNC_REGISTRY_<NAME>_TOKEN"
) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ManifestProblem(
            loc, f'expected an http(s) URL, found "{value}"', 'like "https://hub.corp.example"'
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ManifestProblem(
            loc,
            "the endpoint must not carry credentials, a query or a fragment",
            f"keep credentials in the environment ({fix})",
        )
    return value.rstrip("/")


def _profiles(manifest: Manifest, problems: list[ManifestProblem]) -> dict[str, ProfileSpec]:
    profiles = {}
    for name, spec in sorted(manifest.profiles.items()):
        if not is_safe_name(name):
            problems.append(
                ManifestProblem(
                    ("profiles", name),
                    f'invalid profile name "{name}"',
                    "use letters, digits, '.', '_' and '-'",
                )
            )
            continue
        profiles[name] = spec
    return profiles


def _hub_origins(
    registries: Mapping[str, RegistryRef], hub_endpoint: str | None
) -> list[tuple[str, RegistryRef]]:
    """(URL prefix, registry) of every Hub whose page and file URLs are Hub sources; declared
    registries first (their token-env is explicit), then `$HF_ENDPOINT` and huggingface.co."""
    hf = registries[DEFAULT_REGISTRY]
    found = [
        (ref.endpoint, ref)
        for _, ref in sorted(registries.items())
        if ref.type == "huggingface" and ref.endpoint is not None
    ]
    if hub_endpoint:
        found.append((hub_endpoint.rstrip("/"), hf))
    return found + [(origin, hf) for origin in _HUB_ORIGINS]


def _model(
    name: str,
    spec: ModelSpec,
    registries: Mapping[str, RegistryRef],
    hubs: Sequence[tuple[str, RegistryRef]] = (),
) -> ModelRequest:
    loc: Loc = ("models", name)
    if not is_safe_name(name):
        raise ManifestProblem(
            loc,
            f'invalid model name "{name}" (it names the folder the files go to)',
            "use letters, digits, '.', '_' and '-', at most 96 characters",
        )
    source = spec.source.strip()
    src_loc: Loc = (*loc, "source")
    scheme_match = _SCHEME.fullmatch(source)
    scheme = scheme_match.group(1) if scheme_match else None
    if scheme in ("http", "https"):
        hub = _hub_url(source, hubs, src_loc)
        if hub is None:
            return _url_model(name, spec, registries[URL_REGISTRY], source, loc)
        if spec.registry is not None:
            raise ManifestProblem(
                (*loc, "registry"), "the URL names its registry already", "remove registry"
            )
        registry, rest, revision, file = hub
        return _hub_model(name, spec, registry, rest, loc, revision=revision, file=file)
    rest = scheme_match.group(2) if scheme_match else source
    registry_name = _registry_name(spec, scheme, registries, loc)
    registry = registries[registry_name]
    if registry.type == "url":
        assert registry.endpoint is not None
        path = _check_repo_path(rest, src_loc)
        return _url_model(name, spec, registry, f"{registry.endpoint}/{path}", loc)
    if registry.type == "ollama":
        return _ollama_model(name, spec, registry, rest, loc)
    for host in _HUB_HOSTS:
        if rest.startswith(host):
            rest = rest[len(host) :]
            break
    return _hub_model(name, spec, registry, rest, loc)


def _hub_url(
    source: str, hubs: Sequence[tuple[str, RegistryRef]], loc: Loc
) -> tuple[RegistryRef, str, str | None, str | None] | None:
    """(registry, `org/repo[:tag]`, revision, file) of a Hub page or file URL; None for any
    other URL. The query (`?download=true`) is dropped: it never names the file."""
    parts = urlsplit(source)
    for origin, registry in hubs:
        base = urlsplit(origin)
        prefix = base.path.rstrip("/") + "/"
        if (parts.scheme, parts.netloc.lower()) != (
            base.scheme,
            base.netloc.lower(),
        ) or not parts.path.startswith(prefix):
            continue
        segments = [unquote(p) for p in parts.path[len(prefix) :].rstrip("/").split("/")]
        if segments[0] in ("datasets", "spaces"):
            raise ManifestProblem(
                loc,
                f"{source} is a {segments[0][:-1]}, not a model repository",
                "point at a model repository",
            )
        repo = "/".join(segments[:2])
        if len(segments) == 2:
            return registry, repo, None, None
        if len(segments) == 4 and segments[2] == "tree":
            return registry, repo, segments[3], None
        if len(segments) >= 5 and segments[2] in ("blob", "resolve"):
            return registry, repo, segments[3], _check_repo_path("/".join(segments[4:]), loc)
        raise ManifestProblem(
            loc,
            f'cannot read the Hub URL "{source}"',
            "use https://huggingface.co/org/repo or a file's …/blob/<revision>/<file> URL",
        )
    return None


def _hub_model(
    name: str,
    spec: ModelSpec,
    registry: RegistryRef,
    rest: str,
    loc: Loc,
    *,
    revision: str | None = None,
    file: str | None = None,
) -> ModelRequest:
    """A model on a Hub-compatible registry: `rest` is `org/repo[:tag]`; a URL gave `revision`
    and `file`."""
    src_loc: Loc = (*loc, "source")
    repo, _, tag = rest.partition(":")
    _check_repo(repo, spec.source.strip(), src_loc)
    quant = _quant_choice(spec, loc)
    if tag.lower() == _LATEST:
        tag = ""
    if tag:
        if tag.lower().endswith(".gguf"):
            file = _check_repo_path(tag, src_loc)
        else:
            quant = _tag_choice(tag, quant, loc)
    if file is not None and quant.mode != "best":
        raise ManifestProblem(
            (*loc, "quant"),
            f'the source pins the file "{file}", so quant cannot choose another',
            "remove quant, or remove the file from the source",
        )
    if spec.sha256 is not None:
        raise ManifestProblem(
            (*loc, "sha256"),
            "sha256 is for plain URL sources; the registry's listing pins these files",
            "remove sha256",
        )
    if revision is not None and spec.revision not in (None, revision):
        raise ManifestProblem(
            (*loc, "revision"),
            f'revision = "{spec.revision}" contradicts the URL\'s "{revision}"',
            "keep one of them",
        )
    # A quantization (or a file) chooses the model file; include globs then add files next to
    # it. Without one, the globs select the files of a repository that is not GGUF.
    chosen = spec.quant is not None or bool(tag) or file is not None
    if chosen and spec.exclude is not None:
        raise ManifestProblem(
            (*loc, "exclude"),
            "exclude selects files of a non-GGUF repository; next to a quantization, include "
            "names the extra files",
            "remove exclude",
        )
    extras = tuple(spec.include or ()) if chosen else ()
    return ModelRequest(
        name=name,
        registry=registry,
        repo=repo,
        revision=_revision(revision or spec.revision, (*loc, "revision")),
        quant=quant,
        file=file,
        include=() if chosen else tuple(spec.include or ()),
        exclude=tuple(spec.exclude or ()),
        extras=extras,
        context=spec.context,
        quality_floor=_floor(spec, loc),
    )


def _ollama_model(
    name: str, spec: ModelSpec, registry: RegistryRef, rest: str, loc: Loc
) -> ModelRequest:
    """A tag on an Ollama registry: `[namespace/]model[:tag]`. The tag is the variant, so
    nothing chooses among files: quant, include, exclude and the like have no meaning."""
    src_loc: Loc = (*loc, "source")
    repo, _, tag = rest.partition(":")
    if "/" not in repo:
        repo = f"{OLLAMA_NAMESPACE}/{repo}"
    tag = tag or OLLAMA_TAG
    if not is_ollama_repo(repo) or not is_ollama_tag(tag):
        raise ManifestProblem(
            src_loc,
            f'cannot read Ollama source "{spec.source.strip()}"',
            'expected "ollama://model:tag" or "ollama://namespace/model:tag", '
            'like "ollama://gemma3:1b"',
        )
    for key, value in (
        ("quant", spec.quant),
        ("revision", spec.revision),
        ("include", spec.include),
        ("exclude", spec.exclude),
        ("sha256", spec.sha256),
        ("quality-floor", spec.quality_floor),
    ):
        if value is not None:
            raise ManifestProblem(
                (*loc, key),
                f"an Ollama tag names its files (the tag is the variant), so {key} has no meaning",
                f"remove {key} (choose another variant by its tag, like gemma3:1b-it-q8_0)",
            )
    return ModelRequest(name=name, registry=registry, repo=repo, revision=tag, context=spec.context)


def _registry_name(
    spec: ModelSpec, scheme: str | None, registries: Mapping[str, RegistryRef], loc: Loc
) -> str:
    if spec.registry is not None and scheme is not None and spec.registry != scheme:
        raise ManifestProblem(
            (*loc, "registry"),
            f'registry = "{spec.registry}" contradicts the source\'s "{scheme}://"',
            "keep one of them",
        )
    name = spec.registry or scheme or DEFAULT_REGISTRY
    if name not in registries:
        key = "registry" if spec.registry is not None else "source"
        known = ", ".join(sorted(n for n in registries if n != URL_REGISTRY))
        raise ManifestProblem(
            (*loc, key),
            f'unknown registry "{name}"',
            f"declare [registries.{name}] or use one of: {known}",
        )
    return name


def _url_model(
    name: str, spec: ModelSpec, registry: RegistryRef, url: str, loc: Loc
) -> ModelRequest:
    parts = urlsplit(url)
    src_loc: Loc = (*loc, "source")
    if not parts.hostname or parts.username or parts.password:
        raise ManifestProblem(
            src_loc,
            "a plain URL source needs a host and must not carry credentials",
            "declare a url registry and export its MODELSYNC_REGISTRY_<NAME>_TOKEN",
        )
    if parts.fragment or any(
        key.lower() in ("token", "sig", "signature", "x-amz-signature", "expires")
        for key, _, _ in (p.partition("=") for p in parts.query.split("&"))
    ):
        raise ManifestProblem(
            src_loc,
            "the URL carries a signature or a token: models.lock must never hold one",
            "use a URL without credentials",
        )
    filename = parts.path.rsplit("/", 1)[-1]
    if not filename or filename in (".", ".."):
        raise ManifestProblem(src_loc, "the URL does not end in a file name", "point at the file")
    for key, value in (
        ("quant", spec.quant),
        ("revision", spec.revision),
        ("include", spec.include),
        ("exclude", spec.exclude),
        ("registry", spec.registry),
    ):
        if value is not None:
            raise ManifestProblem(
                (*loc, key),
                f"a URL source names one file, so {key} has no meaning",
                f"remove {key}",
            )
    if spec.sha256 is None:
        raise ManifestProblem(
            (*loc, "sha256"),
            "a URL source must carry sha256: nothing unpinned enters the store",
            f'add sha256 = "<64 hex digits>" (e.g. from `sha256sum {filename}`)',
        )
    digest = spec.sha256.strip().lower().removeprefix("sha256:")
    if not is_sha256(digest):
        raise ManifestProblem(
            (*loc, "sha256"), "expected 64 hex digits", "copy the full output of sha256sum"
        )
    return ModelRequest(
        name=name,
        registry=registry,
        url=url,
        context=spec.context,
        sha256=digest,
        quality_floor=_floor(spec, loc),
    )


def _check_repo(repo: str, source: str, loc: Loc) -> None:
    parts = repo.split("/")
    if len(parts) != 2 or not all(is_repo_part(p) for p in parts):
        raise ManifestProblem(
            loc,
            f'cannot read source "{source}"',
            'expected "hf://org/repo", "org/repo", "org/repo:Q4_K_M", "org/repo:file.gguf", '
            '"https://huggingface.co/org/repo" or "https://host/file.gguf"',
        )


def _check_repo_path(path: str, loc: Loc) -> str:
    if not is_safe_path(path):
        raise ManifestProblem(
            loc,
            f"unsafe file path {path!r}",
            "use a relative path inside the repository without '..', backslashes, a drive "
            "letter or control characters",
        )
    return path


def _quant_choice(spec: ModelSpec, loc: Loc) -> QuantChoice:
    value = spec.quant
    if value is None or (isinstance(value, str) and value.strip().lower() == "best"):
        return QuantChoice()
    if isinstance(value, str) and value.strip().lower() == "best-full":
        return QuantChoice("best-full")
    names = [value] if isinstance(value, str) else list(value)
    labels = []
    for index, text in enumerate(names):
        where: Loc = (*loc, "quant") if isinstance(value, str) else (*loc, "quant", index)
        labels.append(_label(text, where))
    if len(set(labels)) != len(labels):
        raise ManifestProblem((*loc, "quant"), "the list names a quantization twice", "remove it")
    if isinstance(value, str):
        return QuantChoice("named", (labels[0],))
    return QuantChoice("ordered", tuple(labels))


def _label(text: str, loc: Loc) -> str:
    label = canonical_label(text)
    if label is None:
        suggestion = suggest_label(text)
        hint = f'did you mean "{suggestion}"?' if suggestion else 'use a name like "Q4_K_M"'
        raise ManifestProblem(loc, f'unknown quantization "{text}"', hint)
    return label


def _tag_choice(tag: str, quant: QuantChoice, loc: Loc) -> QuantChoice:
    label = _label(tag, (*loc, "source"))
    if quant.mode != "best" and quant.labels != (label,):
        raise ManifestProblem(
            (*loc, "quant"),
            f'quant = "{quant.describe()}" contradicts the source\'s tag ":{tag}"',
            "keep one of them",
        )
    return QuantChoice("named", (label,))


def _floor(spec: ModelSpec, loc: Loc) -> str | None:
    if spec.quality_floor is None:
        return None
    return _label(spec.quality_floor, (*loc, "quality-floor"))


def _revision(value: str | None, loc: Loc) -> str:
    if value is None:
        return DEFAULT_REVISION
    if not value or any(c.isspace() for c in value) or ".." in value or len(value) > 256:
        raise ManifestProblem(
            loc, f'invalid revision "{value}"', 'use a branch, tag or 40-hex commit, like "main"'
        )
    return value
