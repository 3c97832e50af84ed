"""Output: human lines, or one JSON object per line with `--json`. Logs go through structlog.

Where things go (the same for every command):
- stdout carries the command's result: its summary line, the tables of `status`, `hw`, `store`,
  `lock --explain`, a dry-run's plan; with `--json`, the events and the final report instead.
- stderr carries what happens along the way, for people: one short line per event (a file
  fetched, a retry, a wait for a lock), progress, warnings, and the error line.
So `modelsync status > status.txt` keeps the answer and `2>` keeps the story, TTY or not; `-q`
leaves only errors (and, on a failure, the last lines of what happened).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from modelsync.log import plain_line, recent_lines, redact_text
from modelsync.units import human_bytes


@dataclass(slots=True)
class Output:
    """Where a command's report goes; the CLI entry point owns one per invocation."""

    json: bool
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    """`-q`: no human result lines on success; a failure also prints the recent events."""

    def line(self, text: str) -> None:
        """A human result line on stdout; not in JSON mode (the report carries the data) nor
        with `-q`."""
        if not self.json and not self.quiet:
            print(text, file=self.stdout, flush=True)

    def report(self, command: str, **fields: Any) -> None:
        """The final report of a command: a JSON object in JSON mode."""
        if self.json:
            # A command that ends with another code (status: 3 for drift) passes `exit_code`.
            payload = {"event": "report", "command": command, "exit_code": 0, **fields}
            print(json.dumps(payload, default=str, sort_keys=False), file=self.stdout, flush=True)

    def error(self, message: str, *, exit_code: int) -> None:
        """One line on stderr (and a JSON error object on stdout in JSON mode); never a secret.

        A quiet run showed nothing so far: the last events come first, so a cron mail says
        what led up to the failure.
        """
        text = redact_text(message)
        if self.json:
            payload = {"event": "error", "message": text, "exit_code": exit_code}
            print(json.dumps(payload), file=self.stdout, flush=True)
        elif self.quiet:
            tail = recent_lines()
            if tail:
                print(f"modelsync: the last {len(tail)} events:", file=self.stderr)
                for line in tail:
                    print(f"  {line}", file=self.stderr)
        print(f"modelsync: error: {text}", file=self.stderr, flush=True)


def _seconds(event: Mapping[str, Any]) -> str:
    return f"{float(event.get('seconds') or 0):.1f} s"


def _fetched(e: Mapping[str, Any]) -> str:
    more = [f"from remote {e['remote']}"] if e.get("remote") else []
    if e.get("resumed_from"):
        more.append(f"{human_bytes(int(e['resumed_from']))} resumed")
    if int(e.get("attempts") or 1) > 1:
        more.append(f"{e['attempts']} attempts")
    extra = "".join(f", {m}" for m in more)
    return f"fetched {e['file']} ({human_bytes(int(e['bytes']))} in {_seconds(e)}{extra})"


def _lock_wait(e: Mapping[str, Any]) -> str:
    limit = f" (at most {e['timeout']:g} s)" if e.get("timeout") is not None else ""
    return f"waiting for {e['lock']}: held by {e['holder']}{limit}"


def _progress(e: Mapping[str, Any]) -> str:
    done, total = int(e["bytes"]), int(e["total"])
    pct = f" ({100 * done // total}%)" if total else ""
    rate = f", {human_bytes(int(e['rate']))}/s" if e.get("rate") is not None else ""
    return f"  {e['file']}: {human_bytes(done)} of {human_bytes(total)}{pct}{rate}"


_EVENTS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "fetch.done": _fetched,
    "fetch.progress": _progress,
    "fetch.resume": lambda e: (
        f"resuming {e['file']} ({human_bytes(int(e['bytes']))} of "
        f"{human_bytes(int(e['total']))} from an earlier run)"
    ),
    "fetch.wait": lambda e: f"waiting for {e['file']}: {e['why']}",
    "fetch.retry": lambda e: (
        f"retrying {e['file']} in {e['wait']} s (attempt {e['attempt']}): {e['reason']}"
    ),
    "registry.retry": lambda e: (
        f"retrying {e['url']} in {_seconds(e)} (attempt {e['attempt']}): {e['reason']}"
    ),
    "store.lock_wait": _lock_wait,
    "project.lock_wait": _lock_wait,
    "sync.adopted": lambda e: f"adopted {e['file']} from {e['source']} ({e['path']})",
    "sync.removed_stale": lambda e: f"removed {e['file']} (no longer in the lock)",
    "sync.link_mode": lambda e: f"placing into {e['target']} by {e['mode']}",
    "sync.gitignore_written": lambda e: f"wrote {e['path']} (keeps model files out of git)",
    "sync.relock": lambda e: f"re-locking first: {e['reason']}",
    "sync.does_not_fit": lambda e: f"{e['problem']}; {e['fix']}",
    "credentials.withheld": lambda e: (
        f"not sending {e['variable']} to {e['endpoint']}: tokens go over https (or to this "
        "machine) only"
    ),
    "sync.blob_bad": lambda e: (
        f"blob {e['blob']}: {e['found']}; moved to {e['quarantined']}, fetching it again"
    ),
    "fetch.partial_mismatch": lambda e: (
        f"{e['file']}: the partial from an earlier run hashes to {e['actual']}; starting over"
    ),
    "fetch.digest_mismatch": lambda e: (
        f"{e['file']}: the bytes hash to {e['actual']}, not {e['expected']}; fetching again"
    ),
    "fetch.range_ignored": lambda e: (
        f"{e['file']}: the server ignored the range; fetching from the start "
        f"({human_bytes(int(e['dropped']))} dropped)"
    ),
    "fetch.one_stream": lambda e: (
        f"{e['file']}: one stream is fast enough here; continuing without byte ranges "
        f"({human_bytes(int(e['kept']))} kept)"
    ),
    "fetch.ranges_refused": lambda e: (
        f"{e['file']}: the server answered a byte range with the whole file; one stream from "
        f"here ({human_bytes(int(e['kept']))} kept)"
    ),
    "sync.removal_held": lambda e: f"kept {e['file']}: {e['reason']}",
    "sync.stale_kept": lambda e: f"kept {e['file']}: {e['error']}",
    "store.adopt_mismatch": lambda e: (
        f"not adopting {e['source']}: it hashes to {e['actual']}, not {e['expected']}"
    ),
    "store.adopt_failed": lambda e: f"could not adopt {e['source']}: {e['error']}",
    "sync.gitignore_skipped": lambda e: f"no .gitignore written in {e['target']}: {e['reason']}",
    "sync.gitignore_failed": lambda e: f"could not write {e['path']}: {e['error']}",
    "sync.link_fallback": lambda e: (
        f"{e['target']} does not take {e['planned']} ({e['error']}); placing by {e['used']}"
    ),
    "lock.warning": lambda e: f"{e['model']}: {e['note']}",
    "bundle.blob": lambda e: (
        f"{e['how']} blob {e['blob'][:12]} into the bundle ({human_bytes(int(e['bytes']))})"
    ),
    "bundle.admitted": lambda e: (
        f"admitted {e['file'] or e['blob']} ({human_bytes(int(e['bytes']))}, SHA-256 verified)"
    ),
    "bundle.refused": lambda e: (
        f"refused {e['file'] or 'blob'} (sha256 {e['blob']}): {e['reason']}"
    ),
    "bundle.ignored": lambda e: f"ignored bundle member {e['member']!r}: {e['reason']}; not read",
    "remote.corrupt": lambda e: (
        f"remote {e['remote']}: {e['file']} "
        + (
            f"has the wrong size {e['actual']}"  # "(size N instead of M)"
            if str(e["actual"]).startswith("(")
            else f"hashes to {e['actual']}, not {e['blob']}"
        )
        + "; not admitted, fetching it from the next source (`modelsync push --check` on a "
        "machine that holds it replaces the object)"
    ),
    "remote.missing": lambda e: f"remote {e['remote']} lacks {e['file']}; trying the next source",
    "remote.unavailable": lambda e: (
        f"remote {e['remote']} skipped for this run ({e['reason']}); fetching from the registry "
        f"instead; {e['fix']}"
    ),
    "remote.upload_resumed": lambda e: (
        f"remote {e['remote']}: resuming the upload of {e['blob']} ({e['parts']} parts there)"
    ),
    "push.replacing": lambda e: (
        f"remote {e['remote']}: the object of {e['file']} does not hash to sha256 {e['blob']}; "
        "uploading it again"
    ),
    "push.completed_elsewhere": lambda e: (
        f"remote {e['remote']}: the upload of {e['blob']} was completed by another push"
    ),
    "push.part_size_small": lambda e: (
        f"--part-size {human_bytes(int(e['bytes']))} is below S3's minimum part of "
        f"{human_bytes(int(e['least']))} (all parts but the last): AWS S3 refuses such an "
        f"upload when it completes; use --part-size 5 or more for {e['remote']} on AWS"
    ),
    "push.uploaded": lambda e: (
        f"uploaded {e['file']} to {e['remote']} ({human_bytes(int(e['bytes']))} in {_seconds(e)}"
        + (f", {e['parts_reused']} parts from an earlier push" if e.get("parts_reused") else "")
        + ")"
    ),
    "serve.skipped": lambda e: (
        f"not serving {e['model']} of {e['lock']}: {e['reason']} (a Hub mirror serves Hub repos)"
    ),
    "import.busy": lambda e: f"not serving {e['repo']} yet: {e['path']} is being written",
    "server.started": lambda e: (
        f"listening on {e['endpoint']} ({e['repos']} repositories"
        + (f", CDN at {e['cdn']}" if e.get("cdn") else "")
        + ")"
    ),
    "serve.locked": lambda e: f"serving {e['repos']} locked repositories of {e['locks']} locks",
    "serve.reload_failed": lambda e: f"still serving the previous locks: {e['error']}",
    "serve.pull_through": lambda e: f"fetching missing locked files from {e['upstream']}",
    "serve.pulled": lambda e: (
        f"pulled {e['file']} ({human_bytes(int(e['bytes']))} in {e['seconds']} s) from upstream"
    ),
    "serve.pull_refused": lambda e: f"not serving {e['file']}: {e['error']}",
    "serve.pull_failed": lambda e: f"could not pull {e['file']}: {e['error']}",
    "serve.stream_cut": lambda e: (
        f"cut the answer streaming {e['file']} at byte {e['offset']}: {e['reason']}"
    ),
    "serve.listing_inexact": lambda e: f"listing {e['file']} as an LFS file for now: {e['error']}",
    "registry.ollama_layers_skipped": lambda e: (
        f"{e['registry']}:{e['repo']}:{e['tag']}: left out layers of unknown media type "
        f"{', '.join(e['media_types'])}"
    ),
}

# The command prints these itself (its summary, lock's line per model, a dry run's note on a
# stale lock, verify's error line); JSON and the -q tail keep them.
_SUMMARIES = frozenset(
    {
        "sync.done",
        "sync.planned",
        "sync.lock_stale",
        "lock.written",
        "lock.unchanged",
        "lock.resolved",
        "gc.done",
        "verify.mismatch",
        "search.done",
        "search.added",
        "export.ollama",
        "bundle.exported",
        "push.planned",
    }
)


def event_line(event: Mapping[str, Any]) -> str | None:
    """The human line of a log event (None: the command's own summary says it)."""
    name = str(event.get("event"))
    if name in _SUMMARIES:
        return None
    make = _EVENTS.get(name)
    if make is not None:
        try:
            return make(event)
        except (KeyError, TypeError, ValueError):
            pass  # a field renamed elsewhere: fall back to the plain form, never fail the run
    return plain_line(event)
