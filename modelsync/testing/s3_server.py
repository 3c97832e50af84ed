"""moto's standalone S3 server as a child process on 127.0.0.1, for the tests and benchmarks of
blob remotes (moto[server] is a dev dependency; nothing in the product imports this)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping

PART_MIN = 1024
"""The smallest multipart part the server accepts (S3's floor is 5 MiB): tests push a few KiB
in parts."""


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def moto_server(extra_env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Run `python -m moto.server` until the block ends; yields its endpoint URL once it
    answers. `extra_env` e.g. `INITIAL_NO_AUTH_ACTION_COUNT` (its credential-checking mode)."""
    port = free_port()
    env = {**os.environ, "S3_UPLOAD_PART_MIN_SIZE": str(PART_MIN), **(extra_env or {})}
    proc = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                # http to 127.0.0.1, built here: no file: or other scheme can reach it
                with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2):  # noqa: S310
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.05)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
