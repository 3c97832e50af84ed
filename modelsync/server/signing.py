"""Self-authorising URLs (CDN downloads, LFS uploads): HMAC-SHA256 over path, query and expiry."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

from modelsync.server import names

EXPIRES = "exp"
SIGNATURE = "sig"


def _digest(key: bytes, path: str, params: Mapping[str, str]) -> str:
    canonical = json.dumps(
        [path, sorted((k, v) for k, v in params.items() if k != SIGNATURE)],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def sign(key: bytes, path: str, params: Mapping[str, str], *, expires: int) -> dict[str, str]:
    """`params` plus the expiry (epoch seconds) and a signature covering path, params and expiry."""
    signed = {**params, EXPIRES: str(expires)}
    return {**signed, SIGNATURE: _digest(key, path, signed)}


def verify(key: bytes, path: str, query: Mapping[str, str], *, now: float) -> bool:
    """Whether the query carries a valid signature for this path and has not expired."""
    signature = query.get(SIGNATURE, "")
    expires = query.get(EXPIRES, "")
    deadline = names.small_number(expires)
    if not signature or deadline is None or deadline < now:
        return False
    return hmac.compare_digest(signature, _digest(key, path, query))
