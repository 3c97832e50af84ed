"""Resolving one model, as a pure step that asks for what it needs (sans-I/O, like httpx's auth
flows): a generator yields a `Listing`, then maybe a `Header` and `Digests`, and is sent back
the snapshot, the GGUF header and the SHA-256 digests; it returns the model's locked entries.
Registry errors are thrown into it, so it can say what they mean for a lock.

No I/O here: the driver (`lock.driver`) talks to the registries and shares answers between
models.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, replace

from modelsync.gguf.header import GgufArray, GgufHeader
from modelsync.hardware.model import HardwareProfile
from modelsync.lockfile.freshness import Origin, reusable
from modelsync.lockfile.model import LockedFile, LockedModel, Lockfile
from modelsync.manifest.model import DEFAULT_REVISION, ModelRequest, canonical_digest
from modelsync.registry.errors import LockedCommitGoneError, RevisionNotFoundError
from modelsync.registry.model import RemoteFile, RepoSnapshot, file_name
from modelsync.registry.ollama_format import model_file
from modelsync.resolve.gguf import catalog
from modelsync.resolve.model import Choice, ModelShape, RepoFile, Want
from modelsync.resolve.select import header_file, select


@dataclass(frozen=True, slots=True)
class Listing:
    """Asks for the registry's snapshot of `source` at `revision` (a branch, tag or commit)."""

    source: str
    revision: str


@dataclass(frozen=True, slots=True)
class Header:
    """Asks for the GGUF header of one file of a snapshot."""

    snapshot: RepoSnapshot
    path: str


@dataclass(frozen=True, slots=True)
class Digests:
    """Asks for the SHA-256 of files the listing gives none for (path → digest)."""

    snapshot: RepoSnapshot
    files: tuple[RemoteFile, ...]


Need = Listing | Header | Digests
Answer = RepoSnapshot | GgufHeader | dict[str, str]


@dataclass(frozen=True, slots=True)
class Explained:
    """One model on one profile: the machine and the resolver's choice with its rows."""

    profile: str
    machine: HardwareProfile
    choice: Choice


@dataclass(frozen=True, slots=True)
class ModelOutcome:
    """What `lock` did for one model."""

    name: str
    source: str
    entries: tuple[LockedModel, ...]
    reused: bool
    """Kept from the existing lock without asking any registry."""
    explained: tuple[Explained, ...] = ()


Steps = Generator[Need, Answer, ModelOutcome]


def resolution(
    model: ModelRequest,
    profiles: Sequence[HardwareProfile],
    pinned: str | None,
) -> Steps:
    """The steps that resolve `model` for every profile; `pinned` is the locked commit to keep."""
    source = model.url or model.repo
    assert source is not None
    ollama = model.registry.type == "ollama"
    if ollama:  # the tag names the files, also when a locked digest is asked for
        source = f"{model.repo}:{model.revision}"
    try:
        snapshot = yield Listing(source, pinned or model.revision or DEFAULT_REVISION)
    except RevisionNotFoundError as err:
        if pinned is None:
            raise
        raise LockedCommitGoneError(
            f"{model.registry.name}:{model.repo} no longer has the locked commit {pinned}",
            hint=f"run `modelsync lock --upgrade-model {model.name}` to pin a current one",
        ) from err
    assert isinstance(snapshot, RepoSnapshot)
    files = [RepoFile(f.path, f.size) for f in snapshot.files]
    want = want_of(model, snapshot.where)
    found = catalog(files)
    if model.url is None:
        path = header_file(want, files, found)
    else:  # a plain file's header is read whenever it is a GGUF file
        path = want.file if file_name(model.url).lower().endswith(".gguf") else None
    shape = None
    quant = None
    if path is not None:
        header = yield Header(snapshot, path)
        assert isinstance(header, GgufHeader)
        shape = shape_of(header)
        quant = header.quant
    choices = [select(want, files, shape, p, found) for p in profiles]
    if ollama:
        choices = [with_layers(c, snapshot, model.revision or "", quant) for c in choices]
    digests: dict[str, str] = {}
    missing = []
    for chosen in sorted({f.path for c in choices for f in c.files}):
        listed = snapshot.file(chosen)
        assert listed is not None
        digest = model.sha256 or listed.sha256  # a plain URL's comes from models.toml
        if digest is None:
            missing.append(listed)
        else:
            digests[chosen] = digest
    if missing:
        hashed = yield Digests(snapshot, tuple(missing))
        assert isinstance(hashed, dict)
        digests.update(hashed)
    commit = snapshot.commit if model.url is None else None
    return ModelOutcome(
        model.name,
        model.source,
        entries(model, profiles, choices, digests, commit=commit),
        reused=False,
        explained=tuple(Explained(p.name, p, c) for p, c in zip(profiles, choices, strict=True)),
    )


def with_layers(choice: Choice, snapshot: RepoSnapshot, tag: str, quant: str | None) -> Choice:
    """An Ollama tag's choice: the model layer (estimated like any GGUF file) and every other
    layer of the manifest (template, params, license, config); the quantization the model's
    header names, else the one its name or size suggests."""
    files = tuple(RepoFile(f.path, f.size) for f in snapshot.files)
    others = ", ".join(f.path for f in files if f not in choice.files)
    reason = choice.reason.replace("pinned by the source", f"the tag {tag}", 1)
    reason = f"{reason}; with {others}" if others else reason
    return replace(choice, files=files, quant=quant or choice.quant, reason=reason)


def reused(
    lock: Lockfile, model: ModelRequest, profiles: Sequence[HardwareProfile], origin: Origin
) -> ModelOutcome | None:
    """The locked entries of `model`, kept when its inputs digest and origin still match."""
    inputs = inputs_digest(model, profiles)
    entries = lock.entries(model.name)
    if not reusable(lock, model.name, inputs, origin):
        # An older modelsync put the `detected` profile's fingerprint into the inputs digest:
        # such a lock keeps its choices, rewritten with the current digest.
        detected = [[p.name, p.fingerprint] for p in lock.profiles if p.source == "detected"]
        legacy = canonical_digest({"model": model.canonical(), "profiles": detected})
        if not detected or not reusable(lock, model.name, legacy, origin):
            return None
        entries = tuple(replace(e, inputs=inputs) for e in entries)
    return ModelOutcome(model.name, model.source, entries, reused=True)


def locked_commit(lock: Lockfile | None, model: ModelRequest) -> str | None:
    """The commit `lock` pins for `model`, if its registry, repo and revision are unchanged."""
    entries = lock.entries(model.name) if lock is not None else ()
    if not entries:
        return None
    first = entries[0]
    same = (first.registry, first.repo, first.revision) == (
        model.registry.name,
        model.repo,
        model.revision,
    )
    return first.commit if same else None


def want_of(model: ModelRequest, where: str) -> Want:
    """The resolver's view of a manifest entry (a plain URL pins its one file, an Ollama tag
    its model layer)."""
    if model.registry.type == "ollama":
        assert model.repo is not None
        assert model.revision is not None
        return Want(
            subject=f"models.{model.name}",
            source=where,
            mode="file",
            file=model_file(model.repo, model.revision),
            context=model.context,
        )
    return Want(
        subject=f"models.{model.name}",
        source=where,
        mode="globs" if model.globs else "file" if model.file or model.url else model.quant.mode,
        labels=model.quant.labels,
        file=file_name(model.url) if model.url else model.file,
        include=model.include,
        exclude=model.exclude,
        extras=model.extras,
        context=model.context,
        floor=model.quality_floor,
    )


def shape_of(header: GgufHeader) -> ModelShape | None:
    """The memory-relevant shape of a model header; None if it lacks layers, width or heads."""
    layers, width, heads = header.block_count, header.embedding_length, header.head_count
    if not layers or not width or not heads:
        return None
    n_head = max(heads) if isinstance(heads, tuple) else heads
    kv = header.head_count_kv
    vocab = header.arch_value("vocab_size")
    tokens = header.metadata.get("tokenizer.ggml.tokens")
    if not isinstance(vocab, int):
        vocab = len(tokens) if isinstance(tokens, GgufArray) else 32000
    window = header.arch_value("attention.sliding_window")
    pattern = header.arch_value("attention.sliding_window_pattern")
    return ModelShape(
        architecture=header.architecture,
        n_layers=layers,
        n_embd=width,
        n_head=n_head,
        n_head_kv=kv if kv is not None else n_head,
        key_length=header.key_length,
        value_length=header.value_length,
        context_length=header.context_length,
        n_vocab=vocab,
        sliding_window=window if isinstance(window, int) and window > 0 else None,
        swa_pattern=pattern if isinstance(pattern, int) and pattern > 0 else None,
        header_size=header.header_size,
        parameter_count=header.parameter_count or None,
    )


def inputs_digest(model: ModelRequest, profiles: Sequence[HardwareProfile]) -> str:
    """Digest of what one model's entries depend on: its manifest entry and the declared
    profiles. Never the detected machine: a lock made on one machine is kept on every other."""
    return canonical_digest(
        {
            "model": model.canonical(),
            "profiles": [[p.name, p.fingerprint()] for p in profiles if p.source == "declared"],
        }
    )


def entries(
    model: ModelRequest,
    profiles: Sequence[HardwareProfile],
    choices: Sequence[Choice],
    digests: Mapping[str, str],
    *,
    commit: str | None,
) -> tuple[LockedModel, ...]:
    """One entry when every profile chose the same files, else one per profile."""
    inputs = inputs_digest(model, profiles)

    def entry(choice: Choice, profile: str | None, reason: str) -> LockedModel:
        return LockedModel(
            name=model.name,
            registry=model.registry.name,
            repo=model.repo,
            url=model.url,
            revision=model.revision if model.url is None else None,
            commit=commit,
            profile=profile,
            quant=choice.quant,
            context=choice.context,
            memory=choice.memory,
            reason=reason,
            inputs=inputs,
            files=tuple(
                LockedFile(path=f.path, size=f.size, sha256=digests[f.path]) for f in choice.files
            ),
        )

    first = choices[0]
    if all(c.same_files(first) for c in choices):
        return (entry(first, None, merged_reason(choices)),)
    return tuple(entry(c, c.profile, c.reason) for c in choices)


def merged_reason(choices: Sequence[Choice]) -> str:
    """One line for a choice every profile shares: each profile's fit in a few words."""
    first = choices[0]
    if len(choices) == 1 or first.fit is None:
        return first.reason
    label = first.quant or first.files[0].path
    parts = [
        f"{c.profile} {c.fit.describe()} ({c.fit.need_text()})" if c.fit else c.profile
        for c in choices
    ]
    context = f", ctx {first.context}" if first.context else ""
    return f"{label}: the same on every profile: {'; '.join(parts)}{context}"
