"""The `/api` read routes, repository creation and the small account endpoints."""

from __future__ import annotations

import asyncio
import html
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import MultiDict, MultiMapping

from modelsync.server import bodies, info, listing, names, treeview
from modelsync.server.auth import can_see, check_content_access, check_write
from modelsync.server.card import CardError, parse_front_matter
from modelsync.server.context import caller, commit_at, context, next_link, visible_repo
from modelsync.server.hub_errors import (
    BadRequestError,
    ConflictError,
    EntryNotFoundError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from modelsync.server.model import Commit, Gated, iso_z
from modelsync.server.responses import json_answer
from modelsync.server.source import DEFAULT_BRANCH

TREE_EXPAND_PAGE_SIZE = 50
FORM = "application/x-www-form-urlencoded"


def _flag(query: MultiMapping[str], name: str) -> bool:
    return bool(listing.parse_bool(query.get(name), name=name))


async def model_info(request: web.Request) -> web.Response:
    """`GET /api/models/{repo}[/revision/{rev}]`: `blobs=true`, repeated `expand`."""
    ctx = context(request)
    repo, _ = visible_repo(request)
    commit = await commit_at(ctx, repo.repo_id, request.match_info.get("rev", DEFAULT_BRANCH))
    expand = listing.expand_values(request.query)
    view = await asyncio.to_thread(ctx.meta.view, repo, commit)
    fields = expand or info.INFO_FIELDS
    return json_answer(info.model_json(view, fields, blobs=_flag(request.query, "blobs")))


async def list_models(request: web.Request) -> web.Response:
    """`GET /api/models`: search, author, filter, sort (descending), limit, cursor pages."""
    ctx = context(request)
    query = listing.parse_model_query(request.query)
    who = caller(request)
    repos = [ctx.store.get(r) for r in ctx.store.repo_ids()]
    visible = [r for r in repos if can_see(r, who)]

    def views() -> list[info.RepoView]:
        return [
            ctx.meta.view(r, ctx.store.head(r.repo_id, DEFAULT_BRANCH))
            for r in visible
            if DEFAULT_BRANCH in r.branches
        ]

    by_id = {v.repo.repo_id: v for v in await asyncio.to_thread(views)}
    rows = listing.select_models([v.row() for v in by_id.values()], query)
    size = listing.page_size(query.limit, ctx.config.page_size)
    page = rows[query.offset : query.offset + size]
    if query.expand:
        fields: tuple[str, ...] = query.expand
    else:
        fields = info.FULL_LIST_FIELDS if query.full else info.LIST_FIELDS
        fields = (*fields, "cardData") if query.card_data else fields
    items = [info.model_json(by_id[row.repo_id], fields) for row in page]
    cursor = listing.next_offset(len(rows), query.offset, size)
    return json_answer(items, headers=next_link(request, cursor))


def _tree_path(raw: str) -> str:
    path = raw.strip("/")
    if not names.is_folder_path(path):
        raise BadRequestError(f"Invalid path in repo: {raw!r}")
    return path


async def list_tree(request: web.Request) -> web.Response:
    """`GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=&expand=`, 1000 entries a page."""
    ctx = context(request)
    repo, _ = visible_repo(request)
    commit = await commit_at(ctx, repo.repo_id, request.match_info["rev"])
    folder = _tree_path(request.match_info.get("path", ""))
    items = treeview.list_folder(commit.files, folder, recursive=_flag(request.query, "recursive"))
    if items is None:
        raise EntryNotFoundError(folder, commit.id, f"{folder} does not exist on {commit.id}")
    expand = _flag(request.query, "expand")
    size = min(ctx.config.page_size, TREE_EXPAND_PAGE_SIZE if expand else listing.MAX_PAGE_SIZE)
    offset = listing.parse_cursor(request.query.get("cursor"))
    page = items[offset : offset + size]
    answer = _entries_json(ctx.store.list_commits(repo.repo_id, commit.id) if expand else [], page)
    cursor = listing.next_offset(len(items), offset, size)
    return json_answer(answer, headers=next_link(request, cursor))


def _entries_json(history: list[Commit], items: list[treeview.TreeItem]) -> list[dict[str, object]]:
    last = treeview.last_commits(history, (i.path for i in items)) if history else {}
    return [treeview.item_json(item, last.get(item.path)) for item in items]


async def paths_info(request: web.Request) -> web.Response:
    """`POST /api/models/{repo}/paths-info/{rev}`, form (or JSON) `paths` and `expand`."""
    ctx = context(request)
    repo, _ = visible_repo(request)
    commit = await commit_at(ctx, repo.repo_id, request.match_info["rev"])
    if request.content_type == "application/json":
        body = await bodies.json_object(request)
        raw_paths = body.get("paths", [])
        paths = [p for p in raw_paths if isinstance(p, str)] if isinstance(raw_paths, list) else []
        expand = body.get("expand") is True
    elif request.content_type in (FORM, "application/octet-stream"):  # the latter: none given
        form = await bodies.off_loop(_form, await request.read())
        paths = form.getall("paths", [])
        expand = bool(listing.parse_bool(form.get("expand"), name="expand"))
    else:
        raise UnsupportedMediaTypeError(f"send 'paths' as {FORM} (or JSON)")
    items = treeview.paths_info(commit.files, paths)
    history = ctx.store.list_commits(repo.repo_id, commit.id) if expand else []
    return json_answer(_entries_json(history, items))


def _form(data: bytes) -> MultiDict[str]:
    """An urlencoded form (the only form huggingface_hub sends; multipart is refused)."""
    try:
        return MultiDict(parse_qsl(data.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError as exc:
        raise BadRequestError("The form is not UTF-8") from exc


async def list_refs(request: web.Request) -> web.Response:
    """`GET /api/models/{repo}/refs[?include_prs=1]`: branches, converts, tags (+ PRs)."""
    repo, _ = visible_repo(request)
    answer: dict[str, object] = {
        "branches": [
            {"name": n, "ref": f"refs/heads/{n}", "targetCommit": c}
            for n, c in sorted(repo.branches.items())
        ],
        "converts": [],
        "tags": [
            {"name": n, "ref": f"refs/tags/{n}", "targetCommit": c}
            for n, c in sorted(repo.tags.items())
        ],
    }
    if _flag(request.query, "include_prs"):
        answer["pullRequests"] = []
    return json_answer(answer)


async def list_commits(request: web.Request) -> web.Response:
    """`GET /api/models/{repo}/commits/{rev}`, newest first, paginated."""
    ctx = context(request)
    repo, _ = visible_repo(request)
    history = ctx.store.list_commits(repo.repo_id, request.match_info["rev"])
    formatted = "formatted" in listing.expand_values(request.query)
    offset = listing.parse_cursor(request.query.get("cursor"))
    size = listing.page_size(None, ctx.config.page_size)
    items = []
    for commit in history[offset : offset + size]:
        item: dict[str, object] = {
            "id": commit.id,
            "title": commit.title,
            "message": commit.message,
            "authors": [{"user": commit.author}],
            "date": iso_z(commit.date),
        }
        if formatted:
            item["formatted"] = {
                "title": html.escape(commit.title),
                "message": html.escape(commit.message),
            }
        items.append(item)
    cursor = listing.next_offset(len(history), offset, size)
    return json_answer(items, headers=next_link(request, cursor))


async def whoami(request: web.Request) -> web.Response:
    """`GET /api/whoami-v2`: the token's user, organisations and role; 401 without one."""
    who = caller(request)
    if who is None:
        raise UnauthorizedError()
    return json_answer(
        {
            "type": "user",
            "id": who.user,
            "name": who.user,
            "fullname": who.user,
            "orgs": [{"type": "org", "name": org} for org in who.orgs],
            "auth": {
                "type": "access_token",
                "accessToken": {"displayName": "modelsync", "role": who.role},
            },
        }
    )


async def auth_check(request: web.Request) -> web.Response:
    """`GET /api/models/{repo}/auth-check[/write]`: 200 if the caller may read (or write)."""
    repo, who = visible_repo(request)
    if request.match_info.route.name == "auth_check_write":
        check_write(repo.namespace, who)
    else:
        check_content_access(repo, who)
    return json_answer({})


async def create_repo(request: web.Request) -> web.Response:
    """`POST /api/repos/create`; a 409 (JSON, with `url`) if it exists."""
    ctx = context(request)
    who = caller(request)
    body = await bodies.json_object(request)
    name, organization = body.get("name"), body.get("organization")
    if body.get("type") not in (None, "model"):
        raise BadRequestError("Only model repositories are supported by this server")
    if not isinstance(name, str) or not (organization is None or isinstance(organization, str)):
        raise BadRequestError("'name' must be a string and 'organization' a string or null")
    namespace = organization or (who.user if who else "")
    writer = check_write(namespace, who)
    repo_id = f"{namespace}/{name}"
    url = f"{ctx.endpoint}/{repo_id}"
    private = _visibility(body) is True
    try:
        await asyncio.to_thread(ctx.writable.create_repo, repo_id, private, author=writer.user)
    except ConflictError as exc:
        raise ConflictError(exc.message, url=url) from exc
    return json_answer({"url": url, "name": repo_id, "id": repo_id})


def _visibility(body: dict[str, object]) -> bool | None:
    """`private` from `visibility` (huggingface_hub 2.x) or the older `private` flag."""
    visibility, private = body.get("visibility"), body.get("private")
    if visibility is not None:
        if visibility not in ("public", "private"):
            raise BadRequestError("'visibility' must be 'public' or 'private'")
        return visibility == "private"
    if private is not None and not isinstance(private, bool):
        raise BadRequestError("'private' must be a boolean")
    return private


def _gated(value: object) -> Gated | None:
    if value is None:
        return None
    if value is False:
        return False
    if value == "auto":
        return "auto"
    if value == "manual":
        return "manual"
    raise BadRequestError("'gated' must be false, 'auto' or 'manual'")


async def update_settings(request: web.Request) -> web.Response:
    """`PUT /api/models/{repo}/settings`: `gated` and `visibility`/`private`."""
    ctx = context(request)
    repo, who = visible_repo(request)
    check_write(repo.namespace, who)
    body = await bodies.json_object(request)
    ctx.writable.set_settings(
        repo.repo_id, private=_visibility(body), gated=_gated(body.get("gated"))
    )
    return json_answer({})


async def create_branch(request: web.Request) -> web.Response:
    """`POST /api/models/{repo}/branch/{branch}` with optional `startingPoint` (default main)."""
    ctx = context(request)
    repo, who = visible_repo(request)
    check_write(repo.namespace, who)
    body = await bodies.json_object(request) if request.can_read_body else {}
    start = body.get("startingPoint") or DEFAULT_BRANCH
    if not isinstance(start, str):
        raise BadRequestError("'startingPoint' must be a revision")
    ctx.writable.create_branch(repo.repo_id, request.match_info["branch"], start)
    return json_answer({})


async def create_tag(request: web.Request) -> web.Response:
    """`POST /api/models/{repo}/tag/{rev}` with `{"tag": name}`."""
    ctx = context(request)
    repo, who = visible_repo(request)
    check_write(repo.namespace, who)
    tag = (await bodies.json_object(request)).get("tag")
    if not isinstance(tag, str):
        raise BadRequestError("'tag' must be a string")
    ctx.writable.create_tag(repo.repo_id, tag, request.match_info["rev"])
    return json_answer({})


async def validate_yaml(request: web.Request) -> web.Response:
    """`POST /api/validate-yaml`: the model card's front matter, always answered in JSON."""
    body = await bodies.json_object(request)
    content = body.get("content")
    if not isinstance(content, str):
        raise BadRequestError("'content' must be a string")
    try:
        await asyncio.to_thread(parse_front_matter, content)  # YAML is slow: never on the loop
    except CardError as exc:
        return json_answer(
            {"error": str(exc), "errors": [{"message": str(exc)}], "warnings": []}, status=400
        )
    return json_answer({"errors": [], "warnings": []})


def add_routes(app: web.Application) -> None:
    """Register the `/api` routes on the main app."""
    repo = "/api/models/{ns}/{name}"
    app.router.add_get("/api/models", list_models, name="list_models")
    app.router.add_get(repo, model_info, name="model_info")
    app.router.add_get(repo + "/revision/{rev}", model_info, name="model_info_revision")
    app.router.add_get(repo + "/tree/{rev}", list_tree, name="tree")
    app.router.add_get(repo + "/tree/{rev}/{path:.*}", list_tree, name="tree_path")
    app.router.add_post(repo + "/paths-info/{rev}", paths_info, name="paths_info")
    app.router.add_get(repo + "/refs", list_refs, name="refs")
    app.router.add_get(repo + "/commits/{rev}", list_commits, name="commits")
    app.router.add_get(repo + "/auth-check", auth_check, name="auth_check")
    app.router.add_get(repo + "/auth-check/write", auth_check, name="auth_check_write")
    app.router.add_put(repo + "/settings", update_settings, name="settings")
    app.router.add_post(repo + "/branch/{branch}", create_branch, name="create_branch")
    app.router.add_post(repo + "/tag/{rev}", create_tag, name="create_tag")
    app.router.add_get("/api/whoami-v2", whoami, name="whoami")
    app.router.add_post("/api/repos/create", create_repo, name="create_repo")
    app.router.add_post("/api/validate-yaml", validate_yaml, name="validate_yaml")
