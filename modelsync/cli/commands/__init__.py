"""One module per command; `COMMANDS` is the order `modelsync --help` lists them in."""

from __future__ import annotations

from modelsync.cli.commands import (
    bench,
    export,
    gc,
    hw,
    import_,
    init,
    lock,
    outdated,
    publish,
    push,
    search,
    serve,
    status,
    store,
    sync,
    verify,
)
from modelsync.cli.commands.base import Command

COMMANDS: tuple[Command, ...] = (
    init.COMMAND,
    lock.COMMAND,
    sync.COMMAND,
    status.COMMAND,
    verify.COMMAND,
    outdated.COMMAND,
    bench.COMMAND,
    publish.COMMAND,
    push.COMMAND,
    gc.COMMAND,
    store.COMMAND,
    search.COMMAND,
    hw.COMMAND,
    export.COMMAND,
    import_.COMMAND,
    serve.COMMAND,
)
