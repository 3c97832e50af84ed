"""Which secret goes to which host: the one rule (design.md section 10).

A secret reaches a host only if the user, not the project file, tied them together:

- the Hub token, found as huggingface_hub finds it (`HF_TOKEN`, then the file at
  `HF_TOKEN_PATH`, `$HF_HOME/token`, `~/.cache/huggingface/token`: what `hf auth login` writes),
  goes to the Hub and to `$HF_ENDPOINT`, nowhere else;
- any other registry's token comes from `MODELSYNC_REGISTRY_<NAME>_TOKEN`, the name derived from
  the registry's (uv's convention); there is no user config file yet;
- a project file's `token-env` may name only that derived variable or `HF_TOKEN` (which still
  follows the Hub token's rule), so a cloned project cannot ship `AWS_SECRET_ACCESS_KEY` anywhere;
- no token goes over plain http to a host that is not loopback.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from modelsync import paths
from modelsync.errors import UsageError
from modelsync.log import get_logger
from modelsync.rules import DEFAULT_HUB_ENDPOINT, HF_ENDPOINT_ENV, endpoint_key, hub_endpoint

log = get_logger(__name__)

HF_TOKEN_ENV = "HF_TOKEN"  # noqa: S105  the name of a variable, not a token
_HF_TOKEN_ALIAS = "HUGGING_FACE_HUB_TOKEN"  # noqa: S105  huggingface_hub's legacy name
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


def registry_token_env(registry: str) -> str:
    """`MODELSYNC_REGISTRY_<NAME>_TOKEN`: the name upper-cased, anything not alphanumeric `_`."""
    return f"MODELSYNC_REGISTRY_{_NOT_ALNUM.sub('_', registry.upper())}_TOKEN"


def allowed_token_env(registry: str, token_env: str) -> bool:
    """Whether a project file may name `token_env` for `registry`."""
    return token_env in (HF_TOKEN_ENV, registry_token_env(registry))


def may_carry_token(url: str) -> bool:
    """Whether a request to `url` may carry a token: https, or plain http to a loopback host."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def hub_may_receive(endpoint: str, environ: Mapping[str, str]) -> bool:
    """Whether the Hub token may go to `endpoint`: the Hub itself, or `$HF_ENDPOINT`."""
    trusted = [DEFAULT_HUB_ENDPOINT, environ.get(HF_ENDPOINT_ENV) or DEFAULT_HUB_ENDPOINT]
    return endpoint_key(endpoint) in {endpoint_key(t) for t in trusted}


def hub_token_file(environ: Mapping[str, str]) -> Path:
    """Where `hf auth login` keeps the token: `HF_TOKEN_PATH`, else `$HF_HOME/token`, else
    `$XDG_CACHE_HOME/huggingface/token`, else `~/.cache/huggingface/token`."""
    explicit = environ.get("HF_TOKEN_PATH")
    return Path(explicit).expanduser() if explicit else paths.hf_home(environ) / "token"


def hub_token(environ: Mapping[str, str]) -> str | None:
    """The Hub token as huggingface_hub finds it: the environment, then the login file."""
    found = environ.get(HF_TOKEN_ENV) or environ.get(_HF_TOKEN_ALIAS)
    if not found:
        try:
            found = hub_token_file(environ).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    return found.replace("\r", "").replace("\n", "").strip() or None


@dataclass(frozen=True, slots=True)
class Grant:
    """A registry's endpoint, the token its requests carry (None: none) and the variable that
    messages tell the user to set."""

    registry: str
    endpoint: str | None
    variable: str
    token: str | None = field(default=None, repr=False)


def grant(
    registry: str,
    kind: str,
    endpoint: str | None,
    token_env: str | None,
    environ: Mapping[str, str],
) -> Grant:
    """The credentials of one registry (`kind` "huggingface" or "url"; `endpoint` as declared,
    None for the Hub's default or the implicit `url` registry) by the rule above."""
    derived = registry_token_env(registry)  # the only variables read: this and the Hub token's
    base = hub_endpoint(endpoint, environ) if kind == "huggingface" else endpoint
    if base is None:
        return Grant(registry, None, derived)  # plain URLs: no host the user tied a token to
    hub_ok = hub_may_receive(base, environ)
    if token_env == HF_TOKEN_ENV and not hub_ok:
        raise UsageError(
            f"models.toml: registries.{registry}.token-env: {HF_TOKEN_ENV} goes only to the Hub "
            f"and $HF_ENDPOINT, not to {base}",
            hint=f"export this registry's token as {derived} and remove token-env",
        )
    wants_hub = token_env == HF_TOKEN_ENV or (token_env is None and kind == "huggingface")
    token = None if token_env == HF_TOKEN_ENV else environ.get(derived) or None
    variable = derived
    if token is None and wants_hub and hub_ok:
        token, variable = hub_token(environ), HF_TOKEN_ENV
    if token is not None and not may_carry_token(base):
        log.warning("credentials.withheld", registry=registry, endpoint=base, variable=variable)
        token = None
    return Grant(registry, base, variable, token)
