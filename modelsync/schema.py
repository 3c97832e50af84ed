"""Tables read from TOML (models.toml, models.lock) as frozen dataclasses, checked two ways.

pydantic is the authority: it validates a document against the dataclasses' annotations
(strict types, `extra="forbid"`, kebab-case keys, the field rules below) and its errors name the
key path that `toml_lines.locate` turns into a line. But importing it and building its
validators costs about 150 ms, more than the rest of a no-op `sync` together. So `load` first
tries `fast`: a walk over the same annotations that accepts only what is plainly valid (exact
types, known keys, every rule passing) and gives up (returns None) on anything else, which then
goes to pydantic for the verdict and the error. The rules are written once, as the `Check`,
`Before` and `Bound` metadata both readers apply.

Nothing here imports pydantic at module level: only the slow path does.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

if TYPE_CHECKING:
    import pydantic

T = TypeVar("T")


class _Unusual(Exception):  # noqa: N818 - control flow, never leaves this module
    """The fast reader gives the document to pydantic."""


# Plain classes, not dataclasses: these are made at import time, where each dataclass costs
# about 0.8 ms (the generated methods are compiled one by one).
class Check:
    """A field rule after the type check: `fn` returns the value (normalized, e.g. sorted) or
    raises ValueError with the message the error line shows."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def apply(self, value: Any) -> Any:
        return self.fn(value)

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema  # noqa: PLC0415 - the slow path only

        return core_schema.no_info_after_validator_function(self.fn, handler(source))


class Before:
    """A field conversion before the type check (`"24GiB"` → bytes); ValueError if refused."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def apply(self, value: Any) -> Any:
        return self.fn(value)

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema  # noqa: PLC0415 - the slow path only

        return core_schema.no_info_before_validator_function(self.fn, handler(source))


class Bound:
    """Integer bounds, as pydantic's own `ge`/`le` (so its messages are unchanged)."""

    __slots__ = ("ge", "le")

    def __init__(self, *, ge: int | None = None, le: int | None = None) -> None:
        self.ge = ge
        self.le = le

    def apply(self, value: Any) -> Any:
        if (self.ge is not None and value < self.ge) or (self.le is not None and value > self.le):
            raise ValueError(value)
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        schema = dict(handler(source))
        schema.update({k: v for k, v in (("ge", self.ge), ("le", self.le)) if v is not None})
        return schema


_Rule = Check | Before | Bound


class Table:
    """Base of a TOML table's dataclass; subclasses set `__pydantic_config__` (a plain dict:
    pydantic reads it, `fast` reads its `alias_generator`). Rules sit on a field's annotation
    (or inside its optional); every table applies its `Check` and `Bound` rules when made, so
    one built in code is checked as pydantic checked it (and `fast` leaves them to this)."""

    __slots__ = ()
    __pydantic_config__: typing.ClassVar[dict[str, Any]]

    def __post_init__(self) -> None:
        check_fields(self)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        # Strict config makes pydantic want dataclass instances, not tables: accept a dict at
        # this level only (every field stays strict).
        schema = dict(handler(source))
        schema["strict"] = False
        return schema


def kebab(name: str) -> str:
    """`manifest_digest` → `manifest-digest`."""
    return name.replace("_", "-")


class TableError(ValueError):
    """pydantic refused the document; `errors` as `err.errors()` gives them, with the
    dataclass error kinds renamed to the model ones (these tables were pydantic models, and
    their messages and the manifest loader's translations use those names)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["msg"] if errors else "invalid")
        self.errors = errors


def load(cls: type[T], data: object, *, json: bool = False) -> T:
    """`data` (a parsed TOML document) as `cls`: the fast reader, else pydantic (`TableError`).
    `json`: validate as JSON, where arrays fill tuples."""
    found = fast(cls, data)
    return found if found is not None else validate(cls, data, json=json)


def validate(cls: type[T], data: object, *, json: bool = False) -> T:
    """pydantic's verdict alone (the slow path, and what tests compare `fast` against)."""
    import pydantic  # noqa: PLC0415 - about 150 ms: only for a document `fast` gave up on

    adapter = _adapter(cls)
    try:
        if json:
            import json as json_module  # noqa: PLC0415

            return adapter.validate_json(json_module.dumps(data, default=_not_json))
        return adapter.validate_python(data)
    except pydantic.ValidationError as err:
        raise TableError([_as_model(e, json=json) for e in err.errors()]) from None


def _not_json(value: object) -> object:
    """A TOML date or time, which JSON cannot carry, as an object no field of ours accepts:
    pydantic then names its key (it used to stop `json.dumps` with an internal error)."""
    return {"toml-datetime": str(value)}


_ADAPTERS: dict[type, Any] = {}


def _adapter(cls: type[T]) -> pydantic.TypeAdapter[T]:
    import pydantic  # noqa: PLC0415

    if cls not in _ADAPTERS:
        _ADAPTERS[cls] = pydantic.TypeAdapter(cls)
    return typing.cast("pydantic.TypeAdapter[T]", _ADAPTERS[cls])


_AS_MODEL = {
    "unexpected_keyword_argument": ("extra_forbidden", "Extra inputs are not permitted"),
    "missing_argument": ("missing", "Field required"),
    "dataclass_type": ("model_type", "Input should be a valid dictionary or instance of {}"),
}


def _as_model(error: Mapping[str, Any], *, json: bool) -> dict[str, Any]:
    renamed = _AS_MODEL.get(error["type"])
    if renamed is None:
        return dict(error)
    kind, message = renamed
    if kind == "model_type" and json:
        message = "Input should be an object"
    name = error.get("ctx", {}).get("class_name", "")
    return {**error, "type": kind, "msg": message.format(name)}


def fast(cls: type[T], data: object) -> T | None:
    """`data` as `cls` when it is plainly valid; None when pydantic should look at it."""
    try:
        return typing.cast(T, _table(cls, data))
    except (_Unusual, ValueError, TypeError):
        return None


def check_fields(table: object) -> None:
    """Apply the `Check` and `Bound` rules to a table (`Table.__post_init__`); a `Check` may
    normalize its field (sort it)."""
    cls: Any = type(table)
    for name, rules in _rules(cls).items():
        value = getattr(table, name)
        if value is None:
            continue
        for rule in rules:
            if not isinstance(rule, Before):
                value = rule.apply(value)
        object.__setattr__(table, name, value)


@functools.cache
def _fields(cls: type) -> dict[str, tuple[str, Any, bool]]:
    """Key as written (the alias) → (field name, annotation, required)."""
    alias = cls.__pydantic_config__["alias_generator"]  # type: ignore[attr-defined]
    hints = typing.get_type_hints(cls, include_extras=True)
    return {
        alias(f.name): (
            f.name,
            hints[f.name],
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    }


@functools.cache
def _rules(cls: type) -> dict[str, tuple[_Rule, ...]]:
    """Field name → the rules on its annotation (outside an optional: `Annotated[int, …] |
    None` too)."""
    found = {}
    for name, hint, _ in _fields(cls).values():
        for arm in typing.get_args(hint) if _is_union(hint) else (hint,):
            if typing.get_origin(arm) is Annotated:
                rules = tuple(m for m in arm.__metadata__ if isinstance(m, _Rule))
                if rules:
                    found[name] = rules
    return found


def _is_union(hint: object) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


Reader = Callable[[Any], Any]
"""Raw value → checked value, or _Unusual/ValueError."""


@functools.cache
def _reader(hint: Any) -> Reader:
    """A reader for an annotation, built once per annotation (a walk of the annotation for
    every value would cost as much as the TOML parse)."""
    origin = typing.get_origin(hint)
    if origin is Annotated:
        return _annotated(_reader(hint.__origin__), hint.__metadata__)
    if hint in (str, int, bool):
        return functools.partial(_exact, hint)
    if _is_union(hint):
        return _union(typing.get_args(hint))
    if origin is Literal:
        return functools.partial(_literal, typing.get_args(hint))
    if origin in (tuple, list):
        # tuple[X, ...] as JSON mode reads it (from an array); list[X] as both modes do.
        return functools.partial(_array, origin, _reader(typing.get_args(hint)[0]))
    if origin is dict:
        return functools.partial(_mapping, _reader(typing.get_args(hint)[1]))
    if isinstance(hint, type) and issubclass(hint, Table):
        return functools.partial(_table, hint)
    return _refuse


def _refuse(_value: object) -> object:
    raise _Unusual


def _exact(kind: type, value: object) -> object:
    if type(value) is not kind:  # strict: no bool for int, no int for str
        raise _Unusual
    return value


def _literal(allowed: tuple[object, ...], value: object) -> object:
    if not any(value == v and type(value) is type(v) for v in allowed):
        raise _Unusual
    return value


def _array(kind: type, item: Reader, value: object) -> object:
    if type(value) is not list:
        raise _Unusual
    return kind(item(v) for v in value)


def _mapping(item: Reader, value: object) -> object:
    if type(value) is not dict or not all(type(k) is str for k in value):
        raise _Unusual
    return {k: item(v) for k, v in value.items()}


def _union(arms: tuple[Any, ...]) -> Reader:
    readers = [_reader(arm) for arm in arms if arm is not type(None)]
    optional = len(readers) < len(arms)

    def read(value: object) -> object:
        if value is None and optional:
            return None
        for reader in readers:
            try:
                return reader(value)
            except (_Unusual, ValueError):
                continue
        raise _Unusual

    return read


def _annotated(inner: Reader, metadata: tuple[object, ...]) -> Reader:
    # `Check` and `Bound` are applied by the table itself (`Table.__post_init__`).
    before = [m.apply for m in metadata if isinstance(m, Before)]
    if not before:
        return inner

    def read(value: object) -> object:
        for rule in before:
            value = rule(value)
        return inner(value)

    return read


def _table(cls: type, data: object) -> object:
    if type(data) is not dict:
        raise _Unusual
    fields = _fields(cls)
    values = {}
    for key, value in data.items():
        spec = fields.get(key)
        if spec is None:
            raise _Unusual
        values[spec[0]] = _reader(spec[1])(value)
    if any(required and name not in values for name, _, required in fields.values()):
        raise _Unusual
    return cls(**values)
