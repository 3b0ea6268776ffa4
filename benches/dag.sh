#!/usr/bin/env bash
# Benchmark: portcullis vs make on the same DAGs. Not a test: it asserts nothing about time.
#
#   benches/dag.sh
#
# 1. 200 trivial stages (`true`) in 10 layers of 20, each stage needing the whole layer before
#    it (20x20 edges between layers), at -j 2:
#      - portcullis `run: 'true'`       -> bash --noprofile --norc -eo pipefail -c 'true'
#      - portcullis `command: ['true']` -> execs true, no shell
#      - make -j2, recipe `@true`        -> GNU make's fast path execs true directly (no /bin/sh:
#                                           the line has no shell syntax), so this pairs with
#                                           `command:`
#      - make -j2 with SHELL=/bin/bash and portcullis's shell flags -> bash -c per recipe, pairs
#                                           with `run:`
# 2. 15 `sleep` stages (0.1-0.5 s) in a ladder whose critical path is known by construction, at
#    -j 8 (wider than the graph): wall time minus critical path, for portcullis and make -j8.
#
# Needs: cargo, make, python3, hyperfine (`apt-get install -y hyperfine` or
# `cargo install hyperfine`). Takes about 1.5 minutes on 2 cores (plus the build, if any).
# Env: RUNS (default 15), WARMUP (default 3), KEEP_LOGS=1 keeps portcullis's run folders.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
runs=${RUNS:-15}
warmup=${WARMUP:-3}

source "$here/common.sh"
require dag.sh hyperfine "apt-get install -y hyperfine, or: cargo install hyperfine"
require dag.sh cargo "install Rust from https://rustup.rs"
for tool in make python3; do require dag.sh "$tool"; done
build_release

work=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-dag-bench.XXXXXX")
results="$work/results"
mkdir -p "$results"
cd "$work"

python3 "$here/dag_helper.py" layered "$work" >&2
cp_secs=$(python3 "$here/dag_helper.py" sleep "$work")

export NO_COLOR=1
echo "machine: $(nproc) CPUs, $(uname -sr); $(make --version | head -1); $(bash --version | head -1)" >&2
echo "work dir: $work" >&2

# Other work on the machine skews everything (on 2 cores, one busy process doubles make's time):
# sample how busy the CPUs are for a second, before and after, and say what else is running.
busy_check() {
    local a b busy others
    read -r -a a < /proc/stat
    sleep 1
    read -r -a b < /proc/stat
    busy=$(awk -v u="$(( (b[1]+b[2]+b[3]+b[6]+b[7]+b[8]) - (a[1]+a[2]+a[3]+a[6]+a[7]+a[8]) ))" \
               -v i="$(( (b[4]+b[5]) - (a[4]+a[5]) ))" 'BEGIN { printf "%d", 100 * u / (u + i) }')
    others=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 10 && $2 != "ps" {printf "%s(%s%%) ", $2, $1}')
    echo "CPU busy $1: ${busy}% over 1 s${others:+; busy processes: $others}" >&2
    if (( busy > 10 )); then
        echo "warning: the machine is not idle; timings will be noisy (re-run when it is quiet)" >&2
    fi
}
busy_check "before"

# -N: no intermediate shell, so nothing is subtracted and nothing is added. Output goes to
# /dev/null (hyperfine's default), so portcullis sees a non-TTY stderr and prints plain lines.
# Run folders (.portcullis/runs/<id>/, ~200 files each) are kept until the end on purpose: on an
# ext4 without a journal, deleting them between runs (`--prepare 'rm -rf .portcullis'`) makes
# every later file creation scan the recently freed inodes, which added ~60 ms per 200-stage run
# here. They are removed after the measurements.
common=(--shell=none --warmup "$warmup" --runs "$runs" --style basic)

echo >&2
echo "== 1. 200-stage layered DAG, -j 2 ==" >&2
hyperfine "${common[@]}" --export-json "$results/layered.json" \
    -n "portcullis run: (bash -c)" "$bin run $work/layered-run.yml -j 2" \
    -n "portcullis command: (argv)" "$bin run $work/layered-command.yml -j 2" \
    -n "make -j2 (/bin/sh fast path: execs true)" "make -s -j2 -f $work/Makefile.layered all" \
    -n "make -j2 (SHELL=bash, like run:)" "make -s -j2 -f $work/Makefile.layered-bash all" >&2

echo >&2
echo "== 2. 15-stage sleep DAG, critical path ${cp_secs} s, -j 8 ==" >&2
hyperfine "${common[@]}" --export-json "$results/sleep.json" \
    -n "portcullis run: (bash -c)" "$bin run $work/sleep-run.yml -j 8" \
    -n "portcullis command: (argv)" "$bin run $work/sleep-command.yml -j 8" \
    -n "make -j8 (/bin/sh fast path: execs sleep)" "make -s -j8 -f $work/Makefile.sleep all" >&2

busy_check "after"
[[ ${KEEP_LOGS:-0} == 1 ]] || rm -rf "$work/.portcullis"

echo "machine: $(nproc) CPUs; hyperfine: $runs runs after $warmup warmup runs each"
python3 "$here/dag_helper.py" summary "$results" "$cp_secs"
echo
echo "hyperfine JSON: $results/"
