"""README.md front matter (the model card's YAML block): parsing and the tags it implies; pure."""

from __future__ import annotations

import re
from collections.abc import Mapping

import yaml

# The block huggingface_hub's repocard reads: `---` line, YAML, `---` line, at the very start.
_BLOCK = re.compile(r"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))")


MAX_CARD_BYTES = 1024 * 1024
"""Larger READMEs are not parsed: the Hub's cards are kilobytes."""
MAX_DEPTH = 64
"""Card metadata nests a few levels; a deep one only exhausts the recursive composer."""


class CardError(ValueError):
    """The front matter is not YAML, not a mapping, too large, or uses aliases or deep nesting."""


class _CardLoader(yaml.SafeLoader):
    """`SafeLoader` refusing aliases and nesting past `MAX_DEPTH`.

    An alias repeats a node without repeating its text: a few hundred bytes of nested aliases
    expand to gigabytes once converted to JSON (a "billion laughs"). Cards have no use for them.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            problem = "aliases (*name) are not allowed"
        elif self._depth >= MAX_DEPTH:
            problem = f"nested too deep: at most {MAX_DEPTH} levels"
        else:
            self._depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        raise yaml.composer.ComposerError(None, None, problem, self.get_mark())


def _json_safe(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # dates and other YAML scalars the client cannot get from JSON anyway


def parse_front_matter(text: str) -> dict[str, object] | None:
    """The card data of a README, `None` without a front matter block; `CardError` if malformed.

    CPU-bound (pure-Python YAML, up to `MAX_CARD_BYTES`): callers run it off the event loop.
    """
    if len(text) > MAX_CARD_BYTES:
        raise CardError(f"the model card is over {MAX_CARD_BYTES} characters: shorten it")
    match = _BLOCK.search(text)
    if match is None:
        return None
    try:
        data = yaml.load(match.group(2), Loader=_CardLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise CardError(f"invalid YAML in the model card metadata: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise CardError("the model card metadata must be a mapping")
    safe = _json_safe(data)
    assert isinstance(safe, dict)
    return safe


def card_tags(card: Mapping[str, object]) -> list[str]:
    """Tags the Hub derives from card data: `tags`, the library, the pipeline, the license."""
    tags: list[str] = []
    raw = card.get("tags")
    if isinstance(raw, str):
        tags.append(raw)
    elif isinstance(raw, list):
        tags.extend(str(tag) for tag in raw)
    for key in ("library_name", "pipeline_tag"):
        value = card.get(key)
        if isinstance(value, str):
            tags.append(value)
    license_ = card.get("license")
    if isinstance(license_, str):
        tags.append(f"license:{license_}")
    return tags
