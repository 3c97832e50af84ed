"""Add a model to `models.toml` text, keeping every byte of what the user wrote (pure).

The entry is appended as its own `[models.NAME]` table: the text before it is untouched, so
comments, spacing and key order survive exactly. Only where a table cannot be appended (the
models written as one inline table, say) is it inserted through tomlkit's round trip instead.
"""

from __future__ import annotations

import tomllib

import tomlkit
from tomlkit.items import InlineTable, Table

from modelsync.errors import UsageError
from modelsync.toml_lines import locate


def model_names(text: str) -> set[str]:
    """The names under `[models]` in the text (which must be valid TOML)."""
    models = tomllib.loads(text).get("models", {})
    return set(models) if isinstance(models, dict) else set()


def add_model(text: str, name: str, source: str, quant: str | None, *, where: str) -> str:
    """`text` with a `[models.<name>]` table holding `source` (and `quant`); `where` names the
    file in the message refusing a name that is taken."""
    if name in model_names(text):
        line = locate(text, ("models", name))
        raise UsageError(
            f'{where}:{line}: a model named "{name}" already exists',
            hint="pick another name for --add, or edit that entry",
        )
    entry = tomlkit.table()
    entry["source"] = source
    if quant is not None:
        entry["quant"] = quant
    appended = _append(text, tomlkit.dumps({"models": {name: entry}}))
    try:
        tomllib.loads(appended)
    except tomllib.TOMLDecodeError:
        return _insert(text, name, entry)
    return appended


def _append(text: str, table: str) -> str:
    newline = "\r\n" if "\r\n" in text else "\n"  # a Windows-edited file keeps its line ends
    table = table.replace("\n", newline)
    if not text.strip():
        return table
    body = text if text.endswith("\n") else text + newline
    return body + ("" if body.endswith(newline * 2) else newline) + table


def _insert(text: str, name: str, entry: Table) -> str:
    document = tomlkit.parse(text)
    models = document.get("models")
    if isinstance(models, InlineTable):
        inline = tomlkit.inline_table()
        inline.update(entry.unwrap())
        models[name] = inline
    else:
        document.setdefault("models", tomlkit.table())[name] = entry
    return tomlkit.dumps(document)
