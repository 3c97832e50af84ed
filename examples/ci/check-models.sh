#!/usr/bin/env bash
# A CI step: fail when models.lock no longer matches models.toml (exit 3), then check that the
# pinned revisions still exist upstream and report any that moved.
set -euo pipefail
modelsync lock --check          # no network; exit 3 if someone edited models.toml without locking
modelsync --json outdated || {  # exit 3 when a pinned revision moved upstream
  status=$?
  [ "$status" -eq 3 ] && echo "models moved upstream: run 'modelsync lock --upgrade' in a PR"
  exit "$status"
}
