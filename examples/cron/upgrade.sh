#!/bin/sh
# Scheduled upgrade of one project: what moved upstream, re-lock, sync, bench, publish.
# Its stdout is one summary of what changed: `lock --upgrade` names each model that moved
# (old -> new commit, files, size, choice per profile), `sync` the bytes fetched, `bench` the
# tokens/s against the previous file ("vs previous"), `publish` the commit it made.
#   17 3 * * * cd /srv/app && /usr/local/bin/upgrade.sh
# Exit codes: 0 done (or nothing moved), 5 a registry is down (nothing local changed: the next
# run tries again), 6 another run holds the project or store lock past WAIT seconds; others:
# the failing step's (see README "Output, logs and exit codes").
# BENCH=0 / PUBLISH=0 skip those steps (bench needs llama-cpp-python, publish [publish.*]).
set -u
MODELSYNC=${MODELSYNC:-modelsync}
WAIT=${WAIT:-1800}

"$MODELSYNC" --wait-timeout "$WAIT" outdated
code=$?
case $code in
  0) exit 0 ;;                    # nothing moved: nothing to do
  3) ;;                           # something moved: upgrade below
  *) exit "$code" ;;              # 5: registry down, 2: a bad manifest or lock, ...
esac
"$MODELSYNC" --wait-timeout "$WAIT" lock --upgrade || exit
"$MODELSYNC" --wait-timeout "$WAIT" sync || exit
if [ "${BENCH:-1}" = 1 ]; then "$MODELSYNC" bench || exit; fi
if [ "${PUBLISH:-1}" = 1 ]; then "$MODELSYNC" publish || exit; fi
