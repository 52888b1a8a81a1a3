#!/usr/bin/env bash
# cron-run.sh — run a reproduction pipeline unattended (from cron), safely.
#
#   pipelines/cron-run.sh [-r RESULTS_ROOT] [-n NAME] PIPELINE.mk [make arguments...]
#
# - Lock: only one run at a time per RESULTS_ROOT (flock on RESULTS_ROOT/.lock). A run that finds
#   the lock held exits 75 (EX_TEMPFAIL) at once, printing who holds it.
# - A dated results directory per run: RESULTS_ROOT/YYYY-MM-DDTHHMMSSZ-NAME/, holding run.log
#   (everything the pipeline printed), STATUS ("ok", or "failed: stage STAGE (exit N)"), and
#   work/ (the pipeline's outputs: make is called with OUT=that directory).
#   RESULTS_ROOT/latest points at the newest run.
# - Exit status: 0 when the pipeline succeeded; otherwise the make exit status, with the failing
#   stage (the make target that failed) named on stderr and in STATUS, for cron's mail.
#
# Example crontab line (weekly, Sunday 03:00):
#   0 3 * * 0  cd /srv/cpo && pipelines/cron-run.sh -r /srv/cpo-results pipelines/dolly.mk MODEL=gpt2-xl
set -uo pipefail

root="${CPO_RESULTS:-results}"
name=""
while getopts "r:n:h" opt; do
  case $opt in
    r) root=$OPTARG ;;
    n) name=$OPTARG ;;
    h) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -lt 1 ]; then
  echo "usage: cron-run.sh [-r RESULTS_ROOT] [-n NAME] PIPELINE.mk [make arguments...]" >&2
  exit 2
fi
pipeline=$1
shift
if [ ! -f "$pipeline" ]; then
  echo "cron-run: no pipeline file $pipeline" >&2
  exit 2
fi
[ -n "$name" ] || name=$(basename "$pipeline" .mk)
mkdir -p "$root" || exit 1

exec 9>>"$root/.lock"
if ! flock -n 9; then
  echo "cron-run: another run holds $root/.lock ($(cat "$root/.lock.owner" 2>/dev/null || echo unknown)); not starting" >&2
  exit 75
fi
echo "pid $$ since $(date -u +%FT%TZ) running $pipeline" > "$root/.lock.owner"

run="$root/$(date -u +%Y-%m-%dT%H%M%SZ)-$name"
mkdir -p "$run/work"
ln -sfn "$(basename "$run")" "$root/latest"
echo "running" > "$run/STATUS"

start=$(date +%s)
{
  echo "# cron-run: $pipeline $* at $(date -u +%FT%TZ) on $(hostname)"
  echo "# commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
} > "$run/run.log"
make -f "$pipeline" OUT="$run/work" "$@" >> "$run/run.log" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))

if [ $rc -eq 0 ]; then
  echo "ok" > "$run/STATUS"
  echo "cron-run: $name ok in ${secs}s: $run" >&2
else
  # make reports the failing target as: make: *** [file:line: TARGET] Error N
  stage=$(grep -Eo '\*\*\* \[[^]]*\]' "$run/run.log" | head -1 | sed -E 's/^\*\*\* \[//; s/\]$//; s/^.*: //')
  [ -n "$stage" ] || stage="unknown"
  echo "failed: stage $stage (exit $rc)" > "$run/STATUS"
  echo "cron-run: $name FAILED at stage $stage (exit $rc) after ${secs}s; log: $run/run.log" >&2
  tail -n 20 "$run/run.log" >&2
fi
rm -f "$root/.lock.owner"
exit $rc
