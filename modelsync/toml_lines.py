"""Where a key path is set in TOML text: the line that `models.toml` and `models.lock` errors name.

Neither tomlkit nor tomllib keeps line numbers on values, so the text is scanned: table headers,
arrays of tables (`[[model.file]]`, counted per parent entry, so `("model", 2, "file", 0)` is the
first file of the third model), dotted and quoted keys, inline tables; multi-line strings are
skipped.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tomllib

Loc = tuple[str | int, ...]
_INLINE_KEY = re.compile(r"([A-Za-z0-9_-]+)\s*=")
_TOMLLIB_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


def syntax_error(err: tomllib.TOMLDecodeError) -> tuple[int, str]:
    """The line tomllib's message names (1 if none) and the message without its position."""
    match = _TOMLLIB_AT.search(str(err))
    return (int(match.group(1)) if match else 1), _TOMLLIB_AT.sub("", str(err)).strip()


def locate(text: str, loc: Loc) -> int:
    """The 1-based line where `loc` (or its closest parent) is set; else 1."""
    lines = key_lines(text)
    for length in range(len(loc), 0, -1):
        line = lines.get(loc[:length])
        if line is not None:
            return line
    return 1


def key_lines(text: str) -> dict[Loc, int]:
    """First line of every key path set in the text."""
    found: dict[Loc, int] = {}
    arrays: dict[Loc, int] = {}
    """The current entry's index of each array of tables seen."""
    table: Loc = ()
    in_multiline: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if in_multiline:
            if raw.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        if not line or line.startswith("#"):
            continue
        if line.startswith("[["):
            parts = _split_key(line.lstrip("[").split("]", 1)[0])
            array = (*_within(parts[:-1], arrays), parts[-1])
            arrays[array] = arrays.get(array, -1) + 1
            found.setdefault(array, number)
            table = (*array, arrays[array])
            found.setdefault(table, number)
            continue
        if line.startswith("["):
            table = _within(_split_key(line.lstrip("[").split("]", 1)[0]), arrays)
            found.setdefault(table, number)
            continue
        key_text, sep, rest = line.partition("=")
        if not sep:
            continue
        path = (*table, *_split_key(key_text))
        found.setdefault(path, number)
        for inner in _INLINE_KEY.finditer(rest):
            found.setdefault((*path, inner.group(1)), number)
        for quote in ('"""', "'''"):
            if rest.count(quote) % 2 == 1:
                in_multiline = quote
    return found


def _within(parts: list[str], arrays: dict[Loc, int]) -> Loc:
    """A header's key path, with the current entry's index after each array of tables."""
    path: Loc = ()
    for part in parts:
        path = (*path, part)
        if path in arrays:
            path = (*path, arrays[path])
    return path


def _split_key(text: str) -> list[str]:
    """`a."b.c".d` → ["a", "b.c", "d"]."""
    parts: list[str] = []
    current = ""
    quote: str | None = None
    for char in text.strip():
        if quote:
            if char == quote:
                quote = None
            else:
                current += char
        elif char in "\"'":
            quote = char
        elif char == ".":
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [p for p in parts if p]
