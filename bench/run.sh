#!/usr/bin/env bash
# Whole-process benchmarks of border-release (BENCHMARKS.md): wall time and peak memory of
# one command over a generated workload, as Markdown table rows for BENCHMARKS.md.
#
#   bash bench/run.sh intake N   # `orders import` of N orders into a store holding the items and stock
#   bash bench/run.sh plan N     # `plan --day D --json` over a store holding N pending orders
#   bash bench/run.sh batch N    # `batch --day D` over a store holding N pending orders
#   bash bench/run.sh growth     # intake, plan and batch at 10k, 100k and 1M orders
#   bash bench/run.sh api N [C]  # `serve` taking N orders posted one per request over C connections
#   bash bench/run.sh startup N  # `serve` over a store holding N pending orders, until /healthz is 200
#   bash bench/run.sh page N     # the status page, an order's page and /metrics, over N open orders
#                                # and again after the day's batch (held orders to page through)
#   bash bench/run.sh peer N     # intake and batch of N orders by border-release and by the peer
#
# The workload (examples/workload.rs: N orders for 0.3 x N recipients, 5000 SKUs, a duty table of
# 10,000 rows, seed 1, for the release day 2026-12-01) is generated once into var/bench/<N>/ and reused while its parameters
# and the generator are unchanged. Stores to start from are prepared once per build of
# border-release in var/bench/<N>/templates/; every timed run gets a fresh copy, so runs are
# repeatable. Each measurement runs BENCH_REPEATS times (default 3) under /usr/bin/time and
# reports the median wall time and the highest peak RSS. The page cache is warm: the workload
# was just read or copied.
#
# `api` starts `border-release serve` on a fresh copy of the store holding the items and stock,
# with its API on a Unix socket (BENCH_API_LISTEN=tcp: a free loopback port) and a token file of
# its own, and runs the `apiload` example: N orders of the workload, each posted alone as
# `POST /v1/orders` over C keep-alive connections (default 64; a comma-separated list, e.g.
# 16,64,256, gives a row each), each connection sending its next order once the last one is
# answered. It reports the rate, the latencies (p50, p99, max; of the run with the median rate),
# the posts per group commit from /metrics, the daemon's CPU time and its peak RSS (VmHWM)
# just before SIGTERM; once the daemon has stopped, the store must hold the N orders.
# `startup` starts `serve` on a fresh copy of the store holding the N orders and times it from
# the spawn until GET /healthz answers 200 (asked every 2 ms), then reads its peak RSS and the
# orders it counts, and stops it (BENCH_DROP_CACHES=1: the page cache is dropped before each
# start, when this user may). The load generator and the daemon share the machine's cores.
# BENCH_API_STORED=M: `api` starts from the store holding the M orders of the M-order workload,
# and posts the N-order workload's orders under ids it does not hold (`A-...` for `W-...`).
#
# `peer` compares border-release with the script an experienced operator would write by hand
# for the same job, bench/peer_sqlite.py (Python 3.11+ standard library and SQLite, WAL with
# synchronous=FULL: each phase one durable transaction, like border-release's). In one run on
# the same workload, with the workload's border-release.toml as the config for both, it measures
# border-release's intake and batch as `intake` and `batch` do, the peer's intake (`intake` of
# orders.jsonl, items.csv and stock.csv into a fresh database each run) and the peer's batch
# (`batch` for the day on a fresh copy of a database the peer's intake prepared, kept in
# var/bench/<N>/peer-template/ while the workload, the peer and python3 are unchanged), each
# run by the interpreter python3 names (sys.executable), without a wrapper such as pyenv's. It
# prints a row for each, then the ratios peer / border-release of the median wall times (and of
# the peak RSS), and the releases and released orders of both batches: the peer's recipient key
# is simpler, so it makes a few more (bench/peer_sqlite.py says why). It needs python3 3.11 or
# later (tomllib).
#
# Stores of more than BENCH_IMPORT_PART orders (default 1000000) are prepared by importing the
# workload in parts of that many orders, so that preparing 10M needs the memory of 1M.
#
# The binaries are found in CARGO_TARGET_DIR when it is set (a relative one is taken from the
# folder this was started in, as cargo does), else in target/.
#
# Progress goes to standard error; the table goes to standard output, ready to paste.
set -euo pipefail
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR=$(realpath -m -- "$CARGO_TARGET_DIR")
fi
cd "$(dirname "$0")/.."
root=$PWD

day=2026-12-01
repeats=${BENCH_REPEATS:-3}
import_part=${BENCH_IMPORT_PART:-1000000}
api_listen=${BENCH_API_LISTEN:-unix}
api_stored=${BENCH_API_STORED:-}
skus=5000
seed=1

usage() {
  grep '^#   bash bench/run.sh' "$0" | sed 's/^#   /usage: /' >&2
  exit 2
}

say() { printf '%s\n' "$*" >&2; }
die() { say "bench/run.sh: $*"; exit 1; }

# --- arguments --------------------------------------------------------------------------------

[ $# -ge 1 ] || usage
what=$1
case $what in
  intake | plan | batch)
    [ $# -eq 2 ] || usage
    [[ $2 =~ ^[1-9][0-9]*$ ]] || die "the number of orders must be a whole number, not '$2'"
    sizes=("$2")
    kinds=("$what")
    ;;
  growth)
    [ $# -eq 1 ] || usage
    sizes=(10000 100000 1000000)
    kinds=(intake plan batch)
    ;;
  api)
    [ $# -eq 2 ] || [ $# -eq 3 ] || usage
    [[ $2 =~ ^[1-9][0-9]*$ ]] || die "the number of orders must be a whole number, not '$2'"
    sizes=("$2")
    kinds=(api)
    IFS=, read -r -a concurrencies <<<"${3:-64}"
    for c in "${concurrencies[@]}"; do
      [[ $c =~ ^[1-9][0-9]*$ ]] || die "the concurrency must be a whole number (or a comma-separated list), not '${3:-}'"
    done
    ;;
  startup)
    [ $# -eq 2 ] || usage
    [[ $2 =~ ^[1-9][0-9]*$ ]] || die "the number of orders must be a whole number, not '$2'"
    sizes=("$2")
    kinds=(startup)
    ;;
  page)
    [ $# -eq 2 ] || usage
    [[ $2 =~ ^[1-9][0-9]*$ ]] || die "the number of orders must be a whole number, not '$2'"
    sizes=("$2")
    kinds=(page)
    ;;
  peer)
    [ $# -eq 2 ] || usage
    [[ $2 =~ ^[1-9][0-9]*$ ]] || die "the number of orders must be a whole number, not '$2'"
    sizes=("$2")
    kinds=(intake peer-intake batch peer-batch)
    ;;
  *) usage ;;
esac
[[ $repeats =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEATS must be a whole number, not '$repeats'"
[[ $import_part =~ ^[1-9][0-9]*$ ]] || die "BENCH_IMPORT_PART must be a whole number, not '$import_part'"
case $api_listen in unix | tcp) ;; *) die "BENCH_API_LISTEN must be unix or tcp, not '$api_listen'" ;; esac
[[ $api_stored =~ ^([1-9][0-9]*)?$ ]] || die "BENCH_API_STORED must be a whole number, not '$api_stored'"

if [ ! -x /usr/bin/time ]; then
  die "/usr/bin/time is missing: install it (Debian/Ubuntu: sudo apt-get install time)"
fi

peer_script=$root/bench/peer_sqlite.py
if [ "$what" = peer ]; then
  # The peer reads the config with tomllib, new in Python 3.11.
  python_version=$(python3 --version 2>&1) || die "python3 is missing: the peer (bench/peer_sqlite.py) needs Python 3.11 or later"
  if ! [[ $python_version =~ ^Python\ 3\.([0-9]+)\. ]] || [ "${BASH_REMATCH[1]}" -lt 11 ]; then
    die "the peer (bench/peer_sqlite.py) needs Python 3.11 or later; python3 --version says '$python_version'"
  fi
  sqlite_version=$(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)') ||
    die "python3 has no sqlite3 module: the peer needs it"
  # The interpreter itself, not a wrapper in front of it (a pyenv shim costs about 60 ms a start).
  python_bin=$(python3 -c 'import sys; print(sys.executable)')
  [ -x "$python_bin" ] || die "python3 does not say where its interpreter is"
  peer_label="$python_version, SQLite $sqlite_version"
fi

# Only the settings below may reach the product: no config file or overrides from the caller.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^BORDER_RELEASE_' || true)
export BORDER_RELEASE_FAKE_NOW="${day}T07:00:00-08:00"

# --- build ------------------------------------------------------------------------------------

say "== cargo build --release --locked --bin border-release --example workload --example apiload"
cargo build --release --locked --quiet --bin border-release --example workload --example apiload
# Where cargo put them: CARGO_TARGET_DIR, a cargo config's build.target-dir, or target/.
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || die "cargo metadata did not name the target directory"
br_bin=$target_dir/release/border-release
workload_bin=$target_dir/release/examples/workload
apiload_bin=$target_dir/release/examples/apiload
[ -x "$br_bin" ] && [ -x "$workload_bin" ] && [ -x "$apiload_bin" ] ||
  die "the binaries are not in $target_dir/release"
build_id=$(sha256sum "$br_bin" | cut -c1-16)

# --- the machine ------------------------------------------------------------------------------

cores=$(nproc)
mem_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
machine="${cores} cores, ${cpu:-unknown CPU}, ${mem_gib} GiB"
today=$(date -u +%Y-%m-%d)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit+dirty"
fi

# --- workload and template stores -------------------------------------------------------------

# border-release on the workload of $dir with the store in $1 (a folder holding data/ and logs/).
br() {
  local store=$1
  shift
  BORDER_RELEASE__PATHS__DATA=$store/data BORDER_RELEASE__PATHS__LOGS=$store/logs \
    "$br_bin" --config "$dir/border-release.toml" "$@"
}

# Takes in one file; every line must be accepted.
take_in() {
  local store=$1 label=$2
  shift 2
  local out
  if ! out=$(br "$store" "$@" 2>&1); then
    say "$out"
    die "$label was not taken in whole"
  fi
  say "   $(printf '%s\n' "$out" | grep -v '^warning: BORDER_RELEASE_FAKE_NOW' | head -n 1)"
}

# Sets $dir to var/bench/<n>, generating the workload and the template stores there if needed.
prepare() {
  local n=$1
  local recipients=$((n * 3 / 10))
  [ "$recipients" -ge 1 ] || recipients=1
  dir=$root/var/bench/$n
  wl_recipients=$recipients

  local params
  params="orders=$n recipients=$recipients skus=$skus seed=$seed day=$day generator=$(sha256sum examples/workload.rs | cut -c1-16)"
  if [ "$(cat "$dir/workload.params" 2>/dev/null)" != "$params" ]; then
    say "== workload: $params"
    rm -rf "$dir"
    mkdir -p "$dir"
    "$workload_bin" --orders "$n" --recipients "$recipients" --skus "$skus" --seed "$seed" \
      --day "$day" --out "$dir" >&2
    printf '%s\n' "$params" >"$dir/workload.params"
  fi

  local templates=$dir/templates
  local stamp="$params border-release=$build_id"
  if [ "$n" -gt "$import_part" ]; then stamp="$stamp import-part=$import_part"; fi
  if [ "$(cat "$templates/stamp" 2>/dev/null)" != "$stamp" ]; then
    say "== template stores for $n orders (new workload or new build of border-release)"
    rm -rf "$templates"
    mkdir -p "$templates"
    take_in "$templates/stocked" "items.csv" items import "$dir/items.csv"
    take_in "$templates/stocked" "stock.csv" stock receive "$dir/stock.csv"
    take_in "$templates/stocked" "duties.csv" duties import "$dir/duties.csv"
    cp -a "$templates/stocked" "$templates/loaded"
    if [ "$n" -le "$import_part" ]; then
      take_in "$templates/loaded" "orders.jsonl" orders import "$dir/orders.jsonl"
    else
      # In parts, so that preparing a large store needs the memory of one part.
      mkdir -p "$templates/parts"
      split -l "$import_part" -d -a 4 --additional-suffix=.jsonl "$dir/orders.jsonl" "$templates/parts/orders-"
      local part
      for part in "$templates/parts"/orders-*.jsonl; do
        take_in "$templates/loaded" "$(basename "$part")" orders import "$part"
      done
      rm -rf "$templates/parts"
    fi
    printf '%s\n' "$stamp" >"$templates/stamp"
  fi
}

# Sets up var/bench/<n>/peer-template/store/peer.db, the peer's database after its intake of
# the workload of $dir, unless the one there is of this workload, peer and python3.
prepare_peer() {
  local templates=$dir/peer-template
  local stamp
  stamp="$(cat "$dir/workload.params") peer=$(sha256sum "$peer_script" | cut -c1-16) $peer_label"
  if [ "$(cat "$templates/stamp" 2>/dev/null)" != "$stamp" ]; then
    say "== peer template database for $n orders (new workload or new peer)"
    rm -rf "$templates"
    mkdir -p "$templates/store"
    local out
    if ! out=$("$python_bin" "$peer_script" intake "$templates/store/peer.db" "$dir/orders.jsonl" \
      "$dir/items.csv" "$dir/stock.csv" 2>&1); then
      say "$out"
      die "the peer did not take in orders.jsonl whole"
    fi
    say "   $out"
    printf '%s\n' "$stamp" >"$templates/stamp"
  fi
}

# --- measuring --------------------------------------------------------------------------------

# A fresh copy of template $1 at $dir/run, written to disk so that the timed command's fsyncs
# do not also pay for the copy.
fresh_store() {
  rm -rf "$dir/run"
  cp -a "${2:-$dir}/templates/$1" "$dir/run"
  sync
}

# A fresh folder $dir/run for the peer: empty, or with a copy of the peer's template database.
fresh_peer() {
  rm -rf "$dir/run"
  mkdir -p "$dir/run"
  if [ "$1" = loaded ]; then
    cp -a "$dir/peer-template/store/." "$dir/run/"
  fi
  sync
}

# Runs one measured command $repeats times; sets $median (s), $runs (s, in run order),
# $cpu_median (user + system CPU s, median), $rss_mib (the highest peak RSS), $notes and $label
# (the benchmark's name in the table).
measure() {
  local kind=$1
  local template cmd=() stdout_to
  local br_cmd=("$br_bin" --config "$dir/border-release.toml")
  label=$kind
  case $kind in
    intake) template=stocked; cmd=("${br_cmd[@]}" orders import "$dir/orders.jsonl"); stdout_to=$dir/run.out ;;
    plan) template=loaded; cmd=("${br_cmd[@]}" plan --day "$day" --json); stdout_to=/dev/null ;;
    batch) template=loaded; cmd=("${br_cmd[@]}" batch --day "$day"); stdout_to=$dir/run.out ;;
    peer-intake)
      template=empty
      cmd=("$python_bin" "$peer_script" intake "$dir/run/peer.db" "$dir/orders.jsonl" "$dir/items.csv" "$dir/stock.csv")
      stdout_to=$dir/run.out
      label="peer intake"
      ;;
    peer-batch)
      template=loaded
      cmd=("$python_bin" "$peer_script" batch "$dir/run/peer.db" "$day" "$dir/border-release.toml" "$dir/run/logs")
      stdout_to=$dir/run.out
      label="peer batch"
      ;;
  esac
  local times=() cpus=() rss_max=0 i status
  for ((i = 1; i <= repeats; i++)); do
    case $kind in
      peer-*) fresh_peer "$template" ;;
      *) fresh_store "$template" ;;
    esac
    status=0
    BORDER_RELEASE__PATHS__DATA=$dir/run/data BORDER_RELEASE__PATHS__LOGS=$dir/run/logs \
      /usr/bin/time -f '%e %M %U %S' -o "$dir/time.out" "${cmd[@]}" \
      >"$stdout_to" 2>"$dir/run.err" || status=$?
    if [ "$status" -ne 0 ]; then
      cat "$dir/run.err" >&2
      die "$kind of $n orders exited with $status"
    fi
    local wall rss user sys cpu
    read -r wall rss user sys < <(tail -n 1 "$dir/time.out")
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    times+=("$wall")
    cpus+=("$cpu")
    if [ "$rss" -gt "$rss_max" ]; then rss_max=$rss; fi
    say "   run $i: ${wall} s, CPU ${cpu} s (user ${user}, system ${sys}), peak RSS $((rss / 1024)) MiB"
  done
  runs=${times[*]}
  median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
  cpu_median=$(printf '%s\n' "${cpus[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
  rss_mib=$(awk -v k="$rss_max" 'BEGIN { printf "%.0f", k / 1024 }')

  case $kind in
    intake)
      notes="$(grep -o '[0-9]* accepted, [0-9]* unchanged, [0-9]* rejected' "$dir/run.out"); store $(du -sm "$dir/run/data" | cut -f1) MiB"
      ;;
    plan) notes="JSON plan written to /dev/null" ;;
    batch)
      notes=$(awk '
        /^  releases:/ { sub(/^  /, ""); r = $0 }
        /^  held:/ { sub(/^  /, ""); h = $0 }
        /^  waiting:/ { sub(/^  /, ""); w = $0 }
        END { print r "; " h "; " w }' "$dir/run.out")
      ;;
    peer-intake)
      notes="$(grep -o '[0-9]* accepted, [0-9]* skipped (already stored), [0-9]* rejected' "$dir/run.out"); database $(du -sm "$dir/run" | cut -f1) MiB; $peer_label"
      ;;
    peer-batch)
      notes="$(sed -n 's/^batch for [0-9-]*: \(releases: .*; waiting: [^;]*\);.*/\1/p' "$dir/run.out"); $peer_label"
      ;;
  esac
  case $kind in
    batch | peer-batch)
      # The releases and released orders, for comparing the two.
      released[$kind]=$(sed -n 's/^releases: \([0-9]*\) (\([0-9]*\) orders.*/\1 \2/p' <<<"$notes")
      ;;
  esac
  medians[$kind]=$median
  peaks[$kind]=$rss_mib
  rm -rf "$dir/run" "$dir/run.out" "$dir/run.err" "$dir/time.out"
}

# --- the daemon -------------------------------------------------------------------------------

serve_pid=
# A daemon left running by a failed run is stopped.
stop_left_daemon() {
  if [ -n "$serve_pid" ]; then
    kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
}
trap stop_left_daemon EXIT

# A loopback port nothing listens on.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

# Starts `serve` on the store at $dir/run, with its API on $listen and the token file
# $dir/run/api-token; sets $serve_pid, $serve_started (µs since the epoch, at the spawn) and
# $serve_ready (µs since the epoch, when /healthz first answered 200).
start_daemon() {
  local run=$dir/run
  (umask 077 && printf 'bench-%s\n' "$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" >"$run/api-token")
  case $api_listen in
    unix) listen=unix:$run/api.sock ;;
    tcp) listen=127.0.0.1:$(free_port) ;;
  esac
  serve_started=${EPOCHREALTIME/./}
  BORDER_RELEASE__PATHS__DATA=$run/data BORDER_RELEASE__PATHS__LOGS=$run/logs \
    BORDER_RELEASE__PATHS__SPOOL=$run/spool BORDER_RELEASE__API__LISTEN=$listen \
    BORDER_RELEASE__API__TOKEN_FILE=$run/api-token \
    "$br_bin" --config "$dir/border-release.toml" serve 2>"$run/serve.log" &
  serve_pid=$!
  # Whichever ends first: the wait for /healthz, or the daemon (which then failed to start).
  "$apiload_bin" --wait-healthz "$listen" 600 &
  local waiter=$! ended= status=0
  wait -n -p ended "$waiter" "$serve_pid" || status=$?
  serve_ready=${EPOCHREALTIME/./}
  if [ "$ended" != "$waiter" ]; then
    kill "$waiter" 2>/dev/null || true
    serve_pid=
    cat "$run/serve.log" >&2
    die "the daemon exited with $status before it answered /healthz"
  fi
  if [ "$status" -ne 0 ]; then
    cat "$run/serve.log" >&2
    die "the daemon did not answer /healthz"
  fi
}

# Stops the daemon with SIGTERM; sets $stop_s, the time it took to exit.
stop_daemon() {
  local from=${EPOCHREALTIME/./} status=0
  kill -TERM "$serve_pid"
  wait "$serve_pid" || status=$?
  local to=${EPOCHREALTIME/./}
  serve_pid=
  stop_s=$(awk -v us=$((to - from)) 'BEGIN { printf "%.2f", us / 1e6 }')
  if [ "$status" -ne 0 ]; then
    cat "$dir/run/serve.log" >&2
    die "the daemon exited with $status"
  fi
}

# The daemon's peak RSS in KiB, and its CPU time (user + system) in seconds.
daemon_hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$serve_pid/status"; }
daemon_cpu_s() {
  awk -v tck="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / tck }' \
    "/proc/$serve_pid/stat"
}

# One value of the Prometheus text in $1: the sum of the samples of metric $2.
metric() {
  awk -v name="$2" '$1 == name || index($1, name "{") == 1 { sum += $NF } END { printf "%.0f", sum }' <<<"$1"
}

# A field of the key=value line in $1.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

median_of() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# N orders posted through the API over $1 connections, $repeats times; sets $row.
measure_api() {
  local c=$1
  local i rates=() lines=() rss_max=0 cpus=() per_commit=() status
  local orders_file=$dir/orders.jsonl expected=$n
  if [ -n "$api_stored" ]; then
    # The same orders under ids the stored workload does not have.
    orders_file=$dir/orders-api.jsonl
    if [ ! -s "$orders_file" ] || [ "$orders_file" -ot "$dir/orders.jsonl" ]; then
      sed 's/^{"order_id":"W-/{"order_id":"A-/' "$dir/orders.jsonl" >"$orders_file"
    fi
    expected=$((n + api_stored))
  fi
  for ((i = 1; i <= repeats; i++)); do
    if [ -n "$api_stored" ]; then
      fresh_store loaded "$root/var/bench/$api_stored"
    else
      fresh_store stocked
    fi
    start_daemon
    status=0
    /usr/bin/time -f '%U %S' -o "$dir/time.out" \
      "$apiload_bin" "$listen" "$dir/run/api-token" "$orders_file" "$n" "$c" \
      >"$dir/apiload.out" || status=$?
    local line metrics posts commits rss cpu stored
    line=$(tail -n 1 "$dir/apiload.out")
    metrics=$("$apiload_bin" --get "$listen" /metrics)
    posts=$(metric "$metrics" border_release_api_order_posts_total)
    commits=$(metric "$metrics" border_release_api_order_commits_total)
    rss=$(daemon_hwm_kib)
    cpu=$(daemon_cpu_s)
    stop_daemon
    if [ "$status" -ne 0 ]; then
      say "$line"
      die "apiload exited with $status (see above); the daemon's log is $dir/run/serve.log"
    fi
    stored=$(br "$dir/run" orders list --json 2>/dev/null | wc -l)
    [ "$stored" -eq "$expected" ] || die "the store holds $stored orders after the run, not $expected"
    [ "$(field "$line" accepted)" -eq "$n" ] || die "not every order was accepted: $line"
    local load_cpu
    load_cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$dir/time.out")
    rates+=("$(field "$line" orders_per_s)")
    lines+=("$line")
    cpus+=("$cpu/$load_cpu")
    per_commit+=("$(awk -v p="$posts" -v c="$commits" 'BEGIN { printf "%.1f", c ? p / c : 0 }')")
    if [ "$rss" -gt "$rss_max" ]; then rss_max=$rss; fi
    say "   run $i: $line; $posts posts in $commits commits; daemon CPU $cpu s, apiload CPU $load_cpu s; peak RSS $((rss / 1024)) MiB; stop ${stop_s} s; store holds $stored orders"
  done
  local median pick=0
  median=$(median_of "${rates[@]}")
  for ((i = 0; i < repeats; i++)); do
    if [ "${rates[i]}" = "$median" ]; then pick=$i; break; fi
  done
  local line=${lines[pick]}
  rss_mib=$(awk -v k="$rss_max" 'BEGIN { printf "%.0f", k / 1024 }')
  local label="api ($api_listen)"
  [ -z "$api_stored" ] || label="api ($api_listen, onto $api_stored stored)"
  row="| $label | $n | $c | $median | ${rates[*]} | $(field "$line" p50_ms) | $(field "$line" p99_ms) | $(field "$line" max_ms) | ${per_commit[pick]} | ${cpus[pick]} | $rss_mib | $commit | $today | $machine |"
  rm -rf "$dir/run" "$dir/apiload.out" "$dir/time.out"
}

# `serve` over the N stored orders, $repeats times, until /healthz answers 200; sets $row.
measure_startup() {
  local i times=() rss_max=0 stops=() counted
  for ((i = 1; i <= repeats; i++)); do
    fresh_store loaded
    if [ "${BENCH_DROP_CACHES:-0}" = 1 ]; then
      sync
      echo 3 >/proc/sys/vm/drop_caches || die "BENCH_DROP_CACHES=1, but the page cache cannot be dropped by this user"
    fi
    start_daemon
    local rss metrics wall
    rss=$(daemon_hwm_kib)
    wall=$(awk -v us=$((serve_ready - serve_started)) 'BEGIN { printf "%.3f", us / 1e6 }')
    metrics=$("$apiload_bin" --get "$listen" /metrics)
    counted=$(metric "$metrics" border_release_orders)
    stop_daemon
    [ "$counted" -eq "$n" ] || die "the daemon counts $counted orders, not $n"
    times+=("$wall")
    stops+=("$stop_s")
    if [ "$rss" -gt "$rss_max" ]; then rss_max=$rss; fi
    say "   run $i: /healthz 200 after $wall s, peak RSS $((rss / 1024)) MiB, $counted orders counted; stopped in $stop_s s"
  done
  rss_mib=$(awk -v k="$rss_max" 'BEGIN { printf "%.0f", k / 1024 }')
  local cache=warm
  [ "${BENCH_DROP_CACHES:-0}" = 1 ] && cache=cold
  row="| startup | $n | $wl_recipients | $(median_of "${times[@]}") | ${times[*]} | $rss_mib | page cache $cache; store $(du -sm "$dir/templates/loaded/data" | cut -f1) MiB; SIGTERM to exit $(median_of "${stops[@]}") s | $commit | $today | $machine |"
  rm -rf "$dir/run"
}

# The time of one GET of $1 from the daemon, with the token, in milliseconds (curl's total).
get_ms() {
  local socket=()
  [[ $listen == unix:* ]] && socket=(--unix-socket "${listen#unix:}")
  local host=localhost
  [[ $listen == unix:* ]] || host=$listen
  curl -s -o "$dir/run/page.out" -w '%{http_code} %{time_total}' "${socket[@]}" \
    -H "Authorization: Bearer $(head -n 1 "$dir/run/api-token")" "http://$host$1" |
    awk '$1 != 200 { exit 1 } { printf "%.1f", $2 * 1000 }' || die "GET $1 did not answer 200"
}

# The status page (page 1 and the last page of held orders), an order's page and /metrics,
# each $repeats times, on a daemon over the N orders all open, then over the store after the
# day's batch; sets $rows_page.
measure_page() {
  command -v curl >/dev/null || die "curl is missing: the page benchmark times its requests with curl"
  rows_page=()
  local state
  for state in open batched; do
    fresh_store loaded
    if [ "$state" = batched ]; then
      BORDER_RELEASE__PATHS__DATA=$dir/run/data BORDER_RELEASE__PATHS__LOGS=$dir/run/logs \
        "$br_bin" --config "$dir/border-release.toml" batch --day "$day" >/dev/null
    fi
    start_daemon
    # The page counts from the order states the daemon reads after readiness: wait for them.
    local i
    for ((i = 0; i < 600; i++)); do
      [ "$(metric "$("$apiload_bin" --get "$listen" /metrics)" border_release_orders)" -eq "$n" ] && break
      sleep 0.1
    done
    local held pages last path times
    get_ms / >/dev/null
    held=$(sed -n 's/.*data-held-total="\([0-9]*\)".*/\1/p' "$dir/run/page.out" | head -n 1)
    pages=$(( (${held:-0} + 99) / 100 ))
    last=$(( pages > 1 ? pages : 1 ))
    for path in / "/?page=$last" /orders/W-00000001 /metrics; do
      times=()
      for ((i = 1; i <= repeats; i++)); do times+=("$(get_ms "$path")"); done
      local size
      size=$(stat -c %s "$dir/run/page.out")
      say "   $state: GET $path ${times[*]} ms, $size bytes"
      rows_page+=("| page, $state | $n | GET $path | $(median_of "${times[@]}") | ${times[*]} | $size | ${held:-0} held orders to decide | $commit | $today | $machine |")
    done
    stop_daemon
  done
  rm -rf "$dir/run"
}

# --- the table --------------------------------------------------------------------------------

rows=()
declare -A medians=() peaks=() released=()
if [ -n "$api_stored" ] && [ "$what" = api ]; then
  prepare "$api_stored"
fi
for n in "${sizes[@]}"; do
  prepare "$n"
  if [ "$what" = peer ]; then prepare_peer; fi
  for kind in "${kinds[@]}"; do
    case $kind in
      api)
        for c in "${concurrencies[@]}"; do
          say "== api ($api_listen), $n orders over $c connections ($repeats runs)"
          measure_api "$c"
          rows+=("$row")
        done
        ;;
      startup)
        say "== startup, $n stored orders ($repeats runs)"
        measure_startup
        rows+=("$row")
        ;;
      page)
        say "== page, $n stored orders ($repeats runs of each request)"
        measure_page
        rows+=("${rows_page[@]}")
        ;;
      *)
        say "== ${kind/-/ }, $n orders, $wl_recipients recipients ($repeats runs)"
        measure "$kind"
        rows+=("| $label | $n | $wl_recipients | $median | $runs | $cpu_median | $rss_mib | $notes | $commit | $today | $machine |")
        ;;
    esac
  done
done

printf '\nMachine: %s; date %s; commit %s; BORDER_RELEASE_FAKE_NOW=%s\n\n' \
  "$machine" "$today" "$commit" "$BORDER_RELEASE_FAKE_NOW"
case $what in
  api)
    echo "| benchmark | orders | connections | orders/s (median of $repeats) | runs orders/s | p50 ms | p99 ms | max ms | posts per commit | CPU s, daemon/apiload | peak RSS MiB | commit | date | machine |"
    echo "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | --- | --- | --- |"
    ;;
  startup)
    echo "| benchmark | orders | recipients | to /healthz 200, s (median of $repeats) | runs s | peak RSS MiB | notes | commit | date | machine |"
    echo "| --- | ---: | ---: | ---: | --- | ---: | --- | --- | --- | --- |"
    ;;
  page)
    echo "| benchmark | orders | request | ms (median of $repeats) | runs ms | bytes | notes | commit | date | machine |"
    echo "| --- | ---: | --- | ---: | --- | ---: | --- | --- | --- | --- |"
    ;;
  *)
    echo "| benchmark | orders | recipients | wall s (median of $repeats) | runs s | CPU s, user + system (median) | peak RSS MiB | notes | commit | date | machine |"
    echo "| --- | ---: | ---: | ---: | --- | ---: | ---: | --- | --- | --- | --- |"
    ;;
esac
printf '%s\n' "${rows[@]}"

if [ "$what" = peer ]; then
  # peer / border-release, to one decimal ("n/a" when border-release's figure is 0).
  ratio() { awk -v p="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", p / b; else print "n/a" }'; }
  printf '\nPeer (bench/peer_sqlite.py, %s) / border-release, median wall time: intake %s (%s s / %s s), batch %s (%s s / %s s); peak RSS: intake %s, batch %s\n' \
    "$peer_label" \
    "$(ratio "${medians[peer-intake]}" "${medians[intake]}")" "${medians[peer-intake]}" "${medians[intake]}" \
    "$(ratio "${medians[peer-batch]}" "${medians[batch]}")" "${medians[peer-batch]}" "${medians[batch]}" \
    "$(ratio "${peaks[peer-intake]}" "${peaks[intake]}")" "$(ratio "${peaks[peer-batch]}" "${peaks[batch]}")"
  read -r br_releases br_orders <<<"${released[batch]}"
  read -r peer_releases peer_orders <<<"${released[peer-batch]}"
  change() { awk -v p="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%+.1f%%", 100 * (p - b) / b; else print "n/a" }'; }
  printf 'Releases (released orders): border-release %s (%s), peer %s (%s); the peer %s releases, %s released orders (its recipient key is simpler: bench/peer_sqlite.py)\n' \
    "$br_releases" "$br_orders" "$peer_releases" "$peer_orders" \
    "$(change "$peer_releases" "$br_releases")" "$(change "$peer_orders" "$br_orders")"
fi
