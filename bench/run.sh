#!/usr/bin/env bash
# Whole-process benchmarks of border-release (DESIGN section 7): wall time and peak memory of
# one command over a generated workload, as Markdown table rows for BENCHMARKS.md.
#
#   bash bench/run.sh intake N   # `orders import` of N orders into a store holding the items and stock
#   bash bench/run.sh plan N     # `plan --day D --json` over a store holding N pending orders
#   bash bench/run.sh batch N    # `batch --day D` over a store holding N pending orders
#   bash bench/run.sh growth     # intake, plan and batch at 10k, 100k and 1M orders
#
# The workload (examples/workload.rs: N orders for 0.3 x N recipients, 5000 SKUs, seed 1, for the
# release day 2026-12-01) is generated once into var/bench/<N>/ and reused while its parameters
# and the generator are unchanged. Stores to start from are prepared once per build of
# border-release in var/bench/<N>/templates/; every timed run gets a fresh copy, so runs are
# repeatable. Each measurement runs BENCH_REPEATS times (default 3) under /usr/bin/time and
# reports the median wall time and the highest peak RSS. The page cache is warm: the workload
# was just read or copied.
#
# Progress goes to standard error; the table goes to standard output, ready to paste.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

day=2026-12-01
repeats=${BENCH_REPEATS:-3}
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
  *) usage ;;
esac
[[ $repeats =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEATS must be a whole number, not '$repeats'"

if [ ! -x /usr/bin/time ]; then
  die "/usr/bin/time is missing: install it (Debian/Ubuntu: sudo apt-get install time)"
fi

# Only the settings below may reach the product: no config file or overrides from the caller.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^BORDER_RELEASE_' || true)
export BORDER_RELEASE_FAKE_NOW="${day}T07:00:00-08:00"

# --- build ------------------------------------------------------------------------------------

say "== cargo build --release --locked --bin border-release --example workload"
cargo build --release --locked --quiet --bin border-release --example workload
br_bin=$root/target/release/border-release
workload_bin=$root/target/release/examples/workload
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
  if [ "$(cat "$templates/stamp" 2>/dev/null)" != "$stamp" ]; then
    say "== template stores for $n orders (new workload or new build of border-release)"
    rm -rf "$templates"
    mkdir -p "$templates"
    take_in "$templates/stocked" "items.csv" items import "$dir/items.csv"
    take_in "$templates/stocked" "stock.csv" stock receive "$dir/stock.csv"
    cp -a "$templates/stocked" "$templates/loaded"
    take_in "$templates/loaded" "orders.jsonl" orders import "$dir/orders.jsonl"
    printf '%s\n' "$stamp" >"$templates/stamp"
  fi
}

# --- measuring --------------------------------------------------------------------------------

# A fresh copy of template $1 at $dir/run, written to disk so that the timed command's fsyncs
# do not also pay for the copy.
fresh_store() {
  rm -rf "$dir/run"
  cp -a "$dir/templates/$1" "$dir/run"
  sync
}

# Runs one measured command $repeats times; sets $median (s), $runs (s, in run order),
# $rss_mib (the highest peak RSS) and $notes.
measure() {
  local kind=$1
  local template cmd=() stdout_to
  case $kind in
    intake) template=stocked; cmd=(orders import "$dir/orders.jsonl"); stdout_to=$dir/run.out ;;
    plan) template=loaded; cmd=(plan --day "$day" --json); stdout_to=/dev/null ;;
    batch) template=loaded; cmd=(batch --day "$day"); stdout_to=$dir/run.out ;;
  esac
  local times=() rss_max=0 i status
  for ((i = 1; i <= repeats; i++)); do
    fresh_store "$template"
    status=0
    BORDER_RELEASE__PATHS__DATA=$dir/run/data BORDER_RELEASE__PATHS__LOGS=$dir/run/logs \
      /usr/bin/time -f '%e %M' -o "$dir/time.out" \
      "$br_bin" --config "$dir/border-release.toml" "${cmd[@]}" \
      >"$stdout_to" 2>"$dir/run.err" || status=$?
    if [ "$status" -ne 0 ]; then
      cat "$dir/run.err" >&2
      die "$kind of $n orders exited with $status"
    fi
    local wall rss
    read -r wall rss < <(tail -n 1 "$dir/time.out")
    times+=("$wall")
    if [ "$rss" -gt "$rss_max" ]; then rss_max=$rss; fi
    say "   run $i: ${wall} s, peak RSS $((rss / 1024)) MiB"
  done
  runs=${times[*]}
  median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
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
  esac
  rm -rf "$dir/run" "$dir/run.out" "$dir/run.err" "$dir/time.out"
}

# --- the table --------------------------------------------------------------------------------

rows=()
for n in "${sizes[@]}"; do
  prepare "$n"
  for kind in "${kinds[@]}"; do
    say "== $kind, $n orders, $wl_recipients recipients ($repeats runs)"
    measure "$kind"
    rows+=("| $kind | $n | $wl_recipients | $median | $runs | $rss_mib | $notes | $commit | $today | $machine |")
  done
done

printf '\nMachine: %s; date %s; commit %s; BORDER_RELEASE_FAKE_NOW=%s\n\n' \
  "$machine" "$today" "$commit" "$BORDER_RELEASE_FAKE_NOW"
echo "| benchmark | orders | recipients | wall s (median of $repeats) | runs s | peak RSS MiB | notes | commit | date | machine |"
echo "| --- | ---: | ---: | ---: | --- | ---: | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
