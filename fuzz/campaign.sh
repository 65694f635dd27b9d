#!/usr/bin/env bash
# A fuzz campaign: every target for SECONDS (default 1800) each, JOBS
# (default 2) at a time, at the lowest CPU priority so other work on the
# machine goes first. Needs the targets built once:
#
#   cd fuzz && cargo +nightly fuzz build -s none -a
#   fuzz/campaign.sh 1800 2>&1 | tee campaign.log
#
# Each target starts from its committed corpus (fuzz/corpus/TARGET, read
# only) and its regressions; what it learns goes to $OUT/TARGET/corpus and
# crashes to $OUT/TARGET/artifacts. The last lines of $OUT/TARGET/log are
# libFuzzer's final stats (executions, coverage, peak RSS): the table in
# docs/benchmarks.md is made from them. To keep what a campaign learned,
# minimise it into the committed corpus (`-merge=1`, as cmin does):
#
#   target/x86_64-unknown-linux-gnu/release/TARGET -merge=1 corpus/TARGET $OUT/TARGET/corpus
set -euo pipefail

secs=${1:-1800}
jobs=${JOBS:-2}
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/target/x86_64-unknown-linux-gnu/release
out=${OUT:-/tmp/custos-fuzz}
targets=${TARGETS:-"policy mask chunk chain ingest asciicast replay_index"}

for t in $targets; do
    [[ -x $bin/$t ]] || { echo "campaign.sh: $bin/$t is not built (cargo +nightly fuzz build -s none -a)" >&2; exit 2; }
done

one() {
    local t=$1 dir=$out/$1
    mkdir -p "$dir/corpus" "$dir/artifacts"
    local dirs=("$dir/corpus" "$here/corpus/$t")
    [[ -d $here/regressions/$t ]] && dirs+=("$here/regressions/$t")
    echo "$(date -u +%FT%TZ) start $t"
    # -timeout: one input taking 10 s is a hang (the policy checker's
    # brace bomb took minutes); -rss_limit_mb: an input that makes a
    # parser allocate 2 GB is a bug too.
    nice -n 19 "$bin/$t" "${dirs[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$dir/artifacts/" >"$dir/log" 2>&1 || true
    echo "$(date -u +%FT%TZ) end $t: $(grep -E '^stat::number_of_executed_units' "$dir/log" || echo 'no stats') $(ls "$dir/artifacts" | wc -l) artifacts"
}
export -f one
export secs bin out here
printf '%s\n' $targets | xargs -P "$jobs" -I{} bash -c 'one {}'
