#!/usr/bin/env bash
# Runs border-release on the sample data with the example config: checks the config, takes in
# the sample items, stock count and orders, runs today's release batch, lists the orders, checks
# the store's invariants and shows the release log. State goes to var/ in the repository (see
# config/border-release.toml).
# Running it again is safe: orders already taken in are not taken in twice, and a second batch
# on the same day is a later wave that only adds what the day still allows.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --quiet
br() { ./target/release/border-release --config config/border-release.toml "$@"; }

step() { printf '\n== %s\n' "$*"; }

step "border-release check-config"
br check-config

step "border-release items import sample/items.csv"
br items import sample/items.csv

step "border-release stock count sample/stock.csv"
br stock count sample/stock.csv

step "border-release orders import sample/orders.jsonl"
# Two sample orders are bad on purpose (a placeholder name, a Canadian province as state):
# they are rejected with their line numbers, the rest are kept, and the exit code is 3.
status=0
br orders import sample/orders.jsonl || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then exit "$status"; fi

step "border-release batch"
summary=$(br batch)
printf '%s\n' "$summary"
log=$(printf '%s\n' "$summary" | sed -n 's/^  release log: //p')

step "border-release orders list"
br orders list

step "border-release check-store"
br check-store

step "the release log: $log"
cat "$log"
printf '\nrelease logs and broker manifests: %s\n' "$(dirname "$log")"
