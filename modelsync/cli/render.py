"""Output: human lines, or one JSON object per line with `--json`. Logs go through structlog."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from modelsync.log import redact_text


@dataclass(slots=True)
class Output:
    """Where a command's report goes; the CLI entry point owns one per invocation."""

    json: bool
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    def line(self, text: str) -> None:
        """A human line on stdout; suppressed in JSON mode, where `report` carries the data."""
        if not self.json:
            print(text, file=self.stdout, flush=True)

    def report(self, command: str, **fields: Any) -> None:
        """The final report of a command: a JSON object in JSON mode."""
        if self.json:
            payload = {"event": "report", "command": command, **fields}
            print(json.dumps(payload, default=str, sort_keys=False), file=self.stdout, flush=True)

    def error(self, message: str, *, exit_code: int) -> None:
        """One line on stderr (and a JSON error object on stdout in JSON mode); never a secret."""
        text = redact_text(message)
        if self.json:
            payload = {"event": "error", "message": text, "exit_code": exit_code}
            print(json.dumps(payload), file=self.stdout, flush=True)
        print(f"modelsync: error: {text}", file=self.stderr, flush=True)
