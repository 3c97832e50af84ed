"""The two aiohttp applications: the Hub (API, resolve, uploads, and an Ollama registry's
`/v2/` routes) and the CDN origin."""

from __future__ import annotations

from aiohttp import web

from modelsync.server import api, cdn, ollama, resolve, upload
from modelsync.server.context import CONTEXT, HubContext
from modelsync.server.responses import hub_middleware

MAX_JSON_BODY = 16 * 1024 * 1024
"""Upper bound of bodies read whole (preupload, batch, create); commits and PUTs are streamed."""


def build_hub_app(ctx: HubContext) -> web.Application:
    """The Hub-compatible application: `/api/...`, `/{repo}/resolve/...`, LFS and commits."""
    app = web.Application(middlewares=[hub_middleware], client_max_size=MAX_JSON_BODY)
    app[CONTEXT] = ctx
    ollama.add_routes(app)
    api.add_routes(app)
    upload.add_routes(app)
    resolve.add_routes(app)
    return app


def build_cdn_app(ctx: HubContext) -> web.Application:
    """The second origin: signed LFS downloads and signed LFS uploads, no Authorization."""
    app = web.Application(middlewares=[hub_middleware], client_max_size=MAX_JSON_BODY)
    app[CONTEXT] = ctx
    cdn.add_routes(app)
    ollama.add_cdn_routes(app)
    upload.add_upload_route(app)
    return app
