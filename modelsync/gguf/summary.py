"""Read the header of a local GGUF file and describe it as the Hub's `gguf` object.

The Hub answers `GET /api/models/{repo}?expand[]=gguf` with `total` (the parameter count),
`architecture`, `context_length`, `chat_template`, `bos_token`, `eos_token` and `totalFileSize`
(hub-protocol.md section 3); any field may be missing.
"""

from __future__ import annotations

from pathlib import Path

from modelsync.gguf.header import (
    GGUF_MAGIC,
    INITIAL_WINDOW,
    Bytes,
    GgufFormatError,
    GgufHeader,
    NeedMoreBytes,
    next_window,
    parse_header,
)


def summarize_file(path: Path) -> dict[str, object] | None:
    """The Hub-style `gguf` object of the file at `path`, or None if it is not a GGUF file.

    Raises GgufFormatError for a file that starts like GGUF but is truncated or malformed.
    """
    found = _read_prefix(path)
    if found is None:
        return None
    header, prefix = found
    return summarize_header(header, prefix, file_size=path.stat().st_size)


def read_header(path: Path) -> GgufHeader | None:
    """The parsed header of the file at `path`, or None if it is not a GGUF file.

    Reads a growing window from the start (2 MiB doubling to 64 MiB), never the whole file.
    Raises GgufFormatError for a file that starts like GGUF but is truncated or malformed.
    """
    found = _read_prefix(path)
    return None if found is None else found[0]


def summarize_header(
    header: GgufHeader, prefix: Bytes, *, file_size: int | None = None
) -> dict[str, object]:
    """The Hub-style `gguf` object of a parsed header; `prefix`: the bytes it was parsed from."""
    info: dict[str, object] = {"total": header.parameter_count}
    optional: dict[str, object | None] = {
        "architecture": header.architecture,
        "context_length": header.context_length,
        "chat_template": _as_str(header.metadata.get("tokenizer.chat_template")),
        "bos_token": _token_text(header, prefix, "tokenizer.ggml.bos_token_id"),
        "eos_token": _token_text(header, prefix, "tokenizer.ggml.eos_token_id"),
        "totalFileSize": file_size,
    }
    info.update({key: value for key, value in optional.items() if value is not None})
    return info


def _read_prefix(path: Path) -> tuple[GgufHeader, bytes] | None:
    with path.open("rb") as file:
        prefix = file.read(len(GGUF_MAGIC))
        if prefix != GGUF_MAGIC:
            return None
        window = INITIAL_WINDOW
        prefix += file.read(window - len(prefix))
        while True:
            try:
                return parse_header(prefix), prefix
            except NeedMoreBytes as more:
                if len(prefix) < window:
                    raise GgufFormatError(
                        f"{path}: the file ends at byte {len(prefix)}, inside its GGUF header "
                        f"(needs at least {more.needed}); download it again"
                    ) from more
                grown = next_window(window, more.needed)
                if grown is None:
                    raise GgufFormatError(
                        f"{path}: the GGUF header is larger than {window} bytes "
                        f"(needs at least {more.needed}); not reading further"
                    ) from more
                prefix += file.read(grown - len(prefix))
                window = grown
            except GgufFormatError as err:
                raise GgufFormatError(f"{path}: {err}") from err


def _token_text(header: GgufHeader, prefix: Bytes, id_key: str) -> str | None:
    token_id = header.metadata.get(id_key)
    if not isinstance(token_id, int) or isinstance(token_id, bool):
        return None
    try:
        text = header.array_item(prefix, "tokenizer.ggml.tokens", token_id)
    except (KeyError, IndexError):
        return None
    return _as_str(text)


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None
