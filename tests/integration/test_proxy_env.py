"""The session takes its proxy from HTTP(S)_PROXY / NO_PROXY itself (aiohttp's `trust_env` would
also send ~/.netrc logins, test_review_netrc): a request goes through the proxy the environment
names for its URL, and a host NO_PROXY lists is reached directly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest
from aiohttp import web

from modelsync.net.session import create_session


async def _serve(answer: str, seen: list[str]) -> AsyncGenerator[str, None]:
    async def handle(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.url}")
        return web.Response(text=answer)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture(autouse=True)
def _clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.mark.parametrize("bypass", [False, True])
def test_requests_use_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch, bypass: bool
) -> None:
    async def scenario() -> tuple[str, str, list[str], list[str]]:
        via_proxy: list[str] = []
        direct: list[str] = []
        proxies = _serve("proxied", via_proxy)
        origins = _serve("direct", direct)
        proxy_url = await anext(proxies)
        origin_url = await anext(origins)
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        if bypass:
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        try:
            async with create_session() as session, session.get(f"{origin_url}/f") as answer:
                body = await answer.text()
        finally:
            for gen in (proxies, origins):
                await gen.aclose()
        return body, origin_url, via_proxy, direct

    body, origin_url, via_proxy, direct = asyncio.run(scenario())
    if bypass:
        assert (body, via_proxy, len(direct)) == ("direct", [], 1)
    else:
        assert body == "proxied"
        assert direct == []
        assert via_proxy == [f"GET {origin_url}/f"]  # the absolute form a proxy is sent
