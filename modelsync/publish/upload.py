"""The Hub side of publish, through huggingface_hub (we do not rewrite the upload protocol):
the repository's listing, then `create_repo(exist_ok=True)` and one `create_commit`.

huggingface_hub is imported only here, when publish runs. Xet is switched off for endpoints
that are not huggingface.co before the import: the client then uploads through LFS, which any
Hub-compatible server offers (a Xet attempt against one that lacks it fails without falling
back, notes/hub-protocol.md section 5). Errors are translated here, at the boundary: 401/403
name the variable to set and the repository, never the token (exit 5).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelsync.credentials import Grant
from modelsync.errors import AuthError, IntegrityError, RemoteError
from modelsync.publish.plan import RemoteFile, UploadPlan
from modelsync.rules import DEFAULT_HUB_ENDPOINT, endpoint_key

if TYPE_CHECKING:
    from huggingface_hub import HfApi

REVISION = "main"


@dataclass(frozen=True, slots=True)
class Listing:
    """The repository's head commit and files; `files` None when it does not exist."""

    head: str | None
    files: tuple[RemoteFile, ...] | None


class HubClient:
    """One repository on one Hub-compatible endpoint, with the token the credentials rule
    gives it (none: anonymous, never the client's own implicit token)."""

    def __init__(self, access: Grant, repo: str) -> None:
        assert access.endpoint is not None
        self.endpoint = access.endpoint
        self.variable = access.variable
        self.repo = repo
        self.authenticated = access.token is not None
        self._api = _api(access.endpoint, access.token)

    def listing(self) -> Listing:
        """The files of `main` with their LFS SHA-256 (git blob ids for regular files)."""
        from huggingface_hub.errors import RepositoryNotFoundError  # noqa: PLC0415

        with self._translated("read"):
            if self.authenticated:
                self._api.whoami()  # a refused token fails here, before a dry run says "add"
            try:
                info = self._api.model_info(self.repo, revision=REVISION, files_metadata=True)
            except RepositoryNotFoundError:
                return Listing(None, None)
        files = tuple(
            RemoteFile(
                s.rfilename,
                s.lfs.size if s.lfs else s.size or 0,
                s.lfs.sha256 if s.lfs else None,
                s.blob_id,
            )
            for s in info.siblings or ()
        )
        return Listing(info.sha, files)

    def apply(self, plan: UploadPlan, *, private: bool, message: str) -> str:
        """Create the repository if needed and make one commit; returns its id."""
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete  # noqa: PLC0415

        adds = []
        for item in (*plan.add, *plan.replace):
            data = item.content if item.content is not None else str(item.source)
            op = CommitOperationAdd(path_in_repo=item.path, path_or_fileobj=data)
            # The client hashes what it sends anyway: bytes that changed since the plan are
            # refused rather than published under another digest than the one shown.
            if op.upload_info.sha256.hex() != item.sha256:
                raise IntegrityError(
                    f"{item.source or item.path}: changed while publishing (planned sha256 "
                    f"{item.sha256}, now {op.upload_info.sha256.hex()})",
                    hint="run `modelsync publish` again",
                )
            adds.append(op)
        deletes = [CommitOperationDelete(path_in_repo=d.path) for d in plan.delete]
        with self._translated("write"):
            if not plan.exists:
                self._api.create_repo(self.repo, private=private, exist_ok=True)
            info = self._api.create_commit(
                self.repo,
                [*adds, *deletes],
                commit_message=message,
                revision=REVISION,
                parent_commit=plan.head,
            )
        return info.oid

    @contextlib.contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        import httpx2  # noqa: PLC0415  huggingface_hub's HTTP client
        from huggingface_hub.errors import HfHubHTTPError  # noqa: PLC0415

        where = f"{self.endpoint}/{self.repo}"
        try:
            yield
        except HfHubHTTPError as err:
            status = err.response.status_code if err.response is not None else None
            if status in (401, 403):
                had = "was refused" if self.authenticated else "is not set"
                raise AuthError(
                    f"{where}: {status} on {action}: the token from {self.variable} {had}",
                    hint=f"export {self.variable} with a token that may write to {self.repo}",
                ) from err
            if status == 412:
                raise RemoteError(
                    f"{where}: the repository changed while publishing",
                    hint="run `modelsync publish` again",
                ) from err
            raise RemoteError(
                f"{where}: HTTP {status} on {action}: {err.server_message or 'no message'}",
                hint="check the registry's endpoint, then retry",
            ) from err
        except (httpx2.HTTPError, OSError) as err:
            raise RemoteError(
                f"{where}: unreachable ({type(err).__name__})",
                hint="check the network and the registry's endpoint, then retry",
            ) from err


def _api(endpoint: str, token: str | None) -> HfApi:
    hub = endpoint_key(endpoint) == endpoint_key(DEFAULT_HUB_ENDPOINT)
    if not hub:
        os.environ["HF_HUB_DISABLE_XET"] = "1"
    from huggingface_hub import HfApi, constants  # noqa: PLC0415  only when publishing

    if not hub:
        # Read at import time; it may have been imported already in this process.
        constants.HF_HUB_DISABLE_XET = True
    # token=False: anonymous; None would let the client send its own token to any endpoint.
    return HfApi(endpoint=endpoint, token=token or False, library_name="modelsync")
