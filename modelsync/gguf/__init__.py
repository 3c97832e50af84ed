"""GGUF headers without the gguf package: parse the metadata and tensor infos of a model file.

`header` is pure (bytes in, values out); `summary` reads a local file and builds the Hub-style
`gguf` object of `model_info()`.
"""

from modelsync.gguf.header import (
    DEFAULT_ALIGNMENT,
    GGML_TYPES,
    GGUF_MAGIC,
    INITIAL_WINDOW,
    INLINE_ARRAY_LIMIT,
    MAX_WINDOW,
    SUPPORTED_VERSIONS,
    Bytes,
    GgufArray,
    GgufFormatError,
    GgufHeader,
    GgufValueType,
    NeedMoreBytes,
    TensorInfo,
    next_window,
    parse_header,
)
from modelsync.gguf.summary import read_header, summarize_file, summarize_header

__all__ = [
    "DEFAULT_ALIGNMENT",
    "GGML_TYPES",
    "GGUF_MAGIC",
    "INITIAL_WINDOW",
    "INLINE_ARRAY_LIMIT",
    "MAX_WINDOW",
    "SUPPORTED_VERSIONS",
    "Bytes",
    "GgufArray",
    "GgufFormatError",
    "GgufHeader",
    "GgufValueType",
    "NeedMoreBytes",
    "TensorInfo",
    "next_window",
    "parse_header",
    "read_header",
    "summarize_file",
    "summarize_header",
]
