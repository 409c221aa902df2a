#!/usr/bin/env bash
# Runs the border-release daemon on the example config with the sample data: starts `serve`,
# drops the sample catalogue, stock count and orders into its spool inbox, waits for them to be
# taken in, runs today's release batch through the running daemon (as an operator would from the
# command line), shows the release log and release summary it wrote, and stops the daemon with SIGTERM.
# State goes to var/ in the repository (see config/border-release.toml); the daemon's own log
# goes to var/serve.log.
# `bash sample/run.sh --keep` leaves the daemon running in the foreground afterwards (Ctrl-C
# stops it).
# Running it again is safe: orders already taken in are not taken in twice, and a second batch
# on the same day is a later wave that only adds what the day still allows.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=${1:-}

config=config/border-release.toml
br() { ./target/release/border-release --config "$config" "$@"; }
step() { printf '\n== %s\n' "$*"; }

# The first build takes a few minutes; cargo shows its progress.
step "cargo build --release --locked (the first build takes a few minutes)"
cargo build --release --locked

# The API token the example config names; under systemd it lives in /etc/border-release.
mkdir -p var
if [ ! -s var/api-token ]; then
  (umask 077; head -c 32 /dev/urandom | base64 > var/api-token)
fi

step "border-release check-config"
br check-config

step "border-release serve (log: var/serve.log)"
# The binary itself in the background (not through a function), so that $! is the daemon.
./target/release/border-release --config "$config" serve 2> var/serve.log &
daemon=$!
stop() { kill -TERM "$daemon" 2>/dev/null && wait "$daemon" || true; }
trap stop EXIT
for _ in $(seq 1 100); do
  if grep -q "border-release is ready" var/serve.log 2>/dev/null; then break; fi
  if ! kill -0 "$daemon" 2>/dev/null; then cat var/serve.log; exit 1; fi
  sleep 0.1
done
grep "border-release is ready" var/serve.log

step "the sample files into the spool: var/spool/inbox/"
# Written under a .tmp name, then renamed: the daemon never reads a half-written file.
stamp=$(date -u +%Y%m%dT%H%M%S)
# The example duty table goes too, so that each release carries its duty and fee estimate.
for pair in "sample/items.csv items-$stamp.csv" "config/duties-example.csv duties-$stamp.csv" \
  "sample/stock.csv stock-count-$stamp.csv" "sample/orders.jsonl orders-$stamp.jsonl"; do
  set -- $pair
  cp "$1" "var/spool/inbox/$2.tmp"
  mv "var/spool/inbox/$2.tmp" "var/spool/inbox/$2"
  echo "$2"
done
for _ in $(seq 1 100); do
  if [ -z "$(ls -A var/spool/inbox)" ]; then break; fi
  sleep 0.1
done
# Two sample orders are bad on purpose (a placeholder name, a Canadian province as state):
# the orders file goes to rejected/ with a report naming those lines; the rest are taken in.
ls var/spool/done var/spool/rejected
cat "var/spool/rejected/orders-$stamp.jsonl.report.txt"

step "border-release stock list (through the running daemon)"
br stock list

step "border-release duties list (the example table: EXAMPLES, check them before use)"
br duties list

step "border-release batch (through the running daemon)"
summary=$(br batch)
printf '%s\n' "$summary"
log=$(printf '%s\n' "$summary" | sed -n 's/^  release log: //p')
releases=$(printf '%s\n' "$summary" | sed -n 's/^  summary: *//p')

step "border-release orders list"
br orders list

step "border-release check-store"
br check-store

step "the daemon's log: var/serve.log"
cat var/serve.log

step "the release log: $log"
cat "$log"

step "the release summary: $releases"
cat "$releases"
printf '\nrelease logs, broker manifests and release summaries: %s\n' "$(dirname "$log")"

if [ "$keep" = "--keep" ]; then
  step "the daemon keeps running (Ctrl-C stops it); API on 127.0.0.1:8321, /metrics open"
  trap - EXIT
  wait "$daemon"
else
  step "stopping the daemon (SIGTERM)"
  stop
  trap - EXIT
  tail -n 2 var/serve.log
fi
