"""HTTP for registries: retries with backoff on 5xx/429 (honouring Retry-After), bounded bodies.

The session, the credentials and the retry policy are `net.session`'s and `net.retry`'s (the
same leaves downloads use), so this module holds no second session factory and no second
policy: only the loop that applies them. Credentials are looked up per URL, so a token goes to
its registry's own origin and nowhere else.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from modelsync.errors import RemoteError
from modelsync.log import get_logger, redact_url
from modelsync.net.retry import RETRYABLE_STATUS, RetryPolicy, retry_after_seconds
from modelsync.net.session import Credentials
from modelsync.registry.errors import RegistryProtocolError
from modelsync.registry.model import RemoteFile

log = get_logger(__name__)

MAX_JSON_BYTES = 64 << 20
MAX_SMALL_FILE = 64 << 20
"""Non-LFS files are hashed in memory; the Hub keeps anything larger than 10 MB in LFS."""


@dataclass(frozen=True, slots=True)
class Rules:
    """How to retry: the policy, which statuses, and how to read a server's requested wait."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    retryable: frozenset[int] = RETRYABLE_STATUS
    retry_after: Callable[[Mapping[str, str]], float | None] = retry_after_seconds
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)
    rand: Callable[[], float] = field(default=random.random)


@dataclass(frozen=True, slots=True)
class Answer:
    """A response read into memory (at most the limit asked for)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    attempts: int
    truncated: bool = False


class Http:
    """GET/HEAD with retries over a caller's aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, auth: Credentials, rules: Rules) -> None:
        self.session = session
        self.auth = auth
        self.rules = rules
        self.requests = 0
        """Requests sent, retries included (the lock benchmark reports it)."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        limit: int = MAX_JSON_BYTES,
    ) -> Answer:
        """Send with retries; the final answer whatever its status (callers map errors).

        Connection errors and timeouts are retried too; after the last attempt they raise
        RemoteError naming the URL without credentials. At most `limit` body bytes are read:
        a server that ignores `Range` cannot make us download a whole model.
        """
        attempts = max(self.rules.policy.attempts, 1)
        for attempt in range(1, attempts + 1):
            self.requests += 1
            try:
                answer = await self._once(
                    method, url, params=params, headers=headers, limit=limit, attempt=attempt
                )
            except (aiohttp.ClientError, TimeoutError) as err:
                if attempt == attempts:
                    raise RemoteError(
                        f"cannot reach {redact_url(url)} after {attempts} attempts: "
                        f"{type(err).__name__}: {err}",
                        hint="check the network and the registry endpoint; safe to retry later",
                    ) from err
                await self._wait(url, attempt, None, reason=type(err).__name__)
                continue
            if answer.status in self.rules.retryable and attempt < attempts:
                await self._wait(url, attempt, answer.headers, reason=str(answer.status))
                continue
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    async def sha256_of(
        self, url: str, file: RemoteFile, where: str, check: Callable[[Answer], None]
    ) -> str:
        """SHA-256 of a small file fetched once (`check` maps error answers); its size must
        match the listing. `where` names the file in messages."""
        if file.size > MAX_SMALL_FILE:
            raise RegistryProtocolError(
                f"{where} ({file.size} bytes) has no SHA-256 in the listing and is too large "
                "to hash while locking",
                hint="store it in LFS on the registry, or exclude it",
            )
        answer = await self.request("GET", url, limit=file.size + 1)
        check(answer)
        if len(answer.body) != file.size or answer.truncated:
            raise RegistryProtocolError(
                f"{where} is {len(answer.body)} bytes, the listing says {file.size}",
                hint="the registry is inconsistent; retry later",
            )
        return hashlib.sha256(answer.body).hexdigest()

    async def _once(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        limit: int,
        attempt: int,
    ) -> Answer:
        sent = {**self.auth.headers_for(url), **(headers or {})}
        async with self.session.request(method, url, params=params, headers=sent) as response:
            body = bytearray()
            truncated = False
            if method != "HEAD":
                async for chunk in response.content.iter_chunked(1 << 16):
                    body += chunk
                    if len(body) >= limit:
                        truncated = len(body) > limit or not response.content.at_eof()
                        del body[limit:]
                        break
            return Answer(
                status=response.status,
                headers=response.headers.copy(),
                body=bytes(body),
                url=str(response.url),
                attempts=attempt,
                truncated=truncated,
            )

    async def _wait(
        self, url: str, attempt: int, headers: Mapping[str, str] | None, *, reason: str
    ) -> None:
        asked = self.rules.retry_after(headers) if headers else None
        delay = self.rules.policy.delay(attempt, retry_after=asked, rand=self.rules.rand())
        log.info(
            "registry.retry",
            url=redact_url(url),
            attempt=attempt,
            reason=reason,
            retry_after=asked,
            seconds=round(delay, 3),
        )
        await self.rules.sleep(delay)
