"""Read models.toml with tomlkit into a `Project`; every problem names file, line and key.

Errors look like `models.toml:12: models.gemma.quant: unknown quantization "Q4KM"; did you mean
"Q4_K_M"?` and exit 2. tomlkit keeps no line numbers on values: `toml_lines.locate` finds the
line of a key path (as for models.lock).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from modelsync import paths, schema, toml_cache
from modelsync.errors import ManifestError
from modelsync.manifest.model import (
    Loc,
    Manifest,
    ManifestProblem,
    Project,
    build_project,
    expand_target,
)
from modelsync.toml_lines import locate, syntax_error

_CREDENTIAL_KEY = re.compile(r"(?i)secret|token|passw|credential|access|session|key")
_AT_LINE = re.compile(r"\s*at line (\d+) col(?:umn)? (\d+)\s*$")


def load_manifest(
    path: Path,
    *,
    display: str | None = None,
    environ: Mapping[str, str] | None = None,
    hub_endpoint: str | None = None,
    parsed: Path | None = None,
) -> Project:
    """Parse and validate the manifest at `path`; raises ManifestError (exit 2) on any problem.

    `display` is how the file is named in messages (default: the path as given);
    `hub_endpoint` is `$HF_ENDPOINT`, whose URLs are Hub sources. With `environ`,
    settings.target comes back with `~` and `$NAME` expanded from it (only the commands that
    place files ask: `lock` works where the target's variables are not set). `parsed`: where
    the TOML parse is kept between runs (toml_cache.py).
    """
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(
            f"{name}: not found",
            hint="run `modelsync init` to create one, or pass -m PATH/models.toml",
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f"{name}: cannot read: {err}", hint="check the file") from err
    document = toml_cache.recall(parsed, path, text)
    if document is None:
        document = _parse_toml(text, name)
        toml_cache.remember(parsed, path, text, document)
    project = parse_manifest(text, name, hub_endpoint=hub_endpoint, document=document)
    if environ is None:
        return project
    home = environ.get("HOME") or str(Path.home())
    try:
        target = expand_target(project.settings.target, environ, home)
    except ManifestProblem as problem:
        raise _error(text, name, [problem]) from None
    return replace(project, settings=replace(project.settings, target=target))


def manifest_path(given: Path | None, cwd: Path = Path()) -> Path:
    """`-m` as given (a folder means its models.toml), else the models.toml of `cwd` or of its
    nearest parent, as uv and Cargo find theirs; ManifestError naming `cwd` when there is none."""
    if given is not None:
        return given / paths.MANIFEST_NAME if given.is_dir() else given
    here = cwd.absolute()
    for folder in (here, *here.parents):
        if (folder / paths.MANIFEST_NAME).is_file():
            # In `cwd` itself the path stays relative, so messages keep saying `models.lock`.
            return (cwd if folder == here else folder) / paths.MANIFEST_NAME
    raise ManifestError(
        f"no {paths.MANIFEST_NAME} in {here} or its parents",
        hint="run `modelsync init` to create one here, or pass -m PATH",
    )


def parse_manifest(
    text: str,
    name: str = "models.toml",
    *,
    hub_endpoint: str | None = None,
    document: dict[str, Any] | None = None,
) -> Project:
    """Validate manifest text (`document`: the text parsed already); `name` is the file name
    used in messages."""
    data = _parse_toml(text, name) if document is None else document
    try:
        manifest = schema.load(Manifest, data)
    except schema.TableError as err:
        problems = [_from_pydantic(e) for e in err.errors]
        raise _error(text, name, problems) from None
    project, problems = build_project(manifest, hub_endpoint=hub_endpoint)
    if problems:
        raise _error(text, name, problems)
    return project


def _parse_toml(text: str, name: str) -> dict[str, Any]:
    # tomllib reads a 50-model manifest in 0.6 ms, tomlkit in 10 ms plus 7 ms to import it: a
    # no-op sync reads the manifest every time. tomlkit only where tomllib refuses the text:
    # its errors carry line and column (and what it accepts is read as before).
    import tomllib  # noqa: PLC0415 - a no-op sync finds the parse kept (toml_cache.py)

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        pass
    import tomlkit  # noqa: PLC0415
    from tomlkit.exceptions import ParseError, TOMLKitError  # noqa: PLC0415

    try:
        document = tomlkit.parse(text)
    except ParseError as err:
        reason = _AT_LINE.sub("", str(err))
        raise ManifestError(
            f"{name}:{err.line}: invalid TOML: {reason}",
            hint=f"fix the syntax at line {err.line}, column {err.col}",
        ) from None
    except TOMLKitError as err:
        # Some tomlkit errors (a key given twice) carry no position; tomllib's message does.
        line = _tomllib_line(text)
        raise ManifestError(
            f"{name}:{line}: invalid TOML: {str(err).rstrip('.')}",
            hint="each key may appear once per table",
        ) from None
    data = document.unwrap()
    assert isinstance(data, dict)
    return data


def _tomllib_line(text: str) -> int:
    import tomllib  # noqa: PLC0415

    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        return syntax_error(err)[0]
    return 1


def _from_pydantic(error: Any) -> ManifestProblem:
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden" and loc[0] == "remotes" and _CREDENTIAL_KEY.search(str(loc[-1])):
        # Never echo the value: it may be a pasted secret.
        return ManifestProblem(
            loc,
            "credentials never go in models.toml (a project file is shared)",
            "remove it and export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name an AWS "
            'profile: profile = "name"',
        )
    if kind == "extra_forbidden":
        return ManifestProblem(loc, "unknown key", _did_you_mean(loc))
    if kind == "missing":
        example = _MISSING_EXAMPLES.get(str(loc[-1]), "...")
        return ManifestProblem(loc, "required key is missing", f"add {loc[-1]} = {example}")
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return ManifestProblem(loc, f"expected one of {expected}, found {_show(value)}")
    if kind == "value_error":
        message = str(error["msg"]).removeprefix("Value error, ")
        return ManifestProblem(loc, message)
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return ManifestProblem(loc, f"{error['msg'].lower()}, found {_show(value)}")
    expected = _EXPECTED.get(kind.split("_")[0], kind.replace("_", " "))
    return ManifestProblem(loc, f"expected {expected}, found {_show(value)}")


_MISSING_EXAMPLES = {
    "source": '"hf://org/repo"',
    "ram": '"16GiB"',
    "type": '"huggingface"',
}

_EXPECTED = {
    "int": "an integer",
    "bool": "true or false",
    "string": "a string",
    "dict": "a table",
    "model": "a table",
    "list": "a list",
    "float": "a number",
}


def _show(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _did_you_mean(loc: Loc) -> str:
    allowed = _allowed_keys(loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    if close:
        return f'did you mean "{close[0]}"?'
    return "allowed keys: " + ", ".join(allowed) if allowed else "remove it"


def _allowed_keys(parent: Loc) -> list[str]:
    """Keys of the table at `parent` in the schema, walking `Manifest`'s fields."""
    model: type | None = Manifest
    depth = 0
    while model is not None and depth < len(parent):
        annotation = typing.get_type_hints(model).get(str(parent[depth]).replace("-", "_"))
        if annotation is None:
            return []
        args: tuple[Any, ...] = typing.get_args(annotation)
        inner = args[-1] if typing.get_origin(annotation) is dict else annotation
        depth += 2 if typing.get_origin(annotation) is dict else 1
        model = inner if isinstance(inner, type) and dataclasses.is_dataclass(inner) else None
    if model is None:
        return []
    return sorted(schema.kebab(f.name) for f in dataclasses.fields(model))


def _error(text: str, name: str, problems: Sequence[ManifestProblem]) -> ManifestError:
    located = sorted(((locate(text, p.loc), i, p) for i, p in enumerate(problems)))
    line, _, first = located[0]
    key = ".".join(str(part) for part in first.loc if not isinstance(part, int))
    more = len(problems) - 1
    suffix = f" ({more} more problem{'s' if more > 1 else ''} after this one)" if more else ""
    return ManifestError(f"{name}:{line}: {key}: {first.message}", hint=(first.hint or "") + suffix)
