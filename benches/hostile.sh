#!/usr/bin/env bash
# Measures what a run leaves behind and what hostile input costs. Not a test: it prints figures
# and asserts nothing.
#
#   benches/hostile.sh            # the release build of this checkout
#   PORTCULLIS_BIN=/path/to/portcullis benches/hostile.sh
#
# 1. kill -9 of portcullis mid-run: 6 stages start 14 processes (children, grandchildren,
#    `sleep &`, `setsid`, `nohup`, one that ignores SIGTERM); survivors 15 s after the kill, and
#    after the next portcullis command in the same project.
# 2. A passing stage that starts processes outside its group (`setsid`, GNU `timeout`,
#    `set -m`): survivors after the run.
# 3. A 200 MB pipeline file (`validate`): exit code, seconds, peak resident memory.
# 4. A stage writing 300 MB to `$PORTCULLIS_OUTPUT`: exit code, seconds, peak memory.
# 5. A pipeline with 20,000 mistakes (`validate`): seconds, peak memory, bytes of diagnostics.
#
# Needs GNU time (/usr/bin/time, Debian package `time`). Takes about a minute.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
source "$here/common.sh"
[ -x /usr/bin/time ] || { echo "hostile.sh: /usr/bin/time is missing (apt-get install -y time)" >&2; exit 2; }
build_release

work=$(mktemp -d)
trap 'pkill -KILL -f "sleep 9[0-9]{4}" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
mkdir pipelines

# Every process the stages start sleeps a duration of the form 9NNNN, found with pgrep.
survivors() { pgrep -cf "sleep 9[0-9]{4}" || true; }

cat > pipelines/orphans.yml <<'EOF'
version: 1
stages:
  child:
    run: sleep 90001
  grandchild:
    run: bash -c 'bash -c "sleep 90002"'
  background:
    run: |
      sleep 90003 &
      sleep 90004 &
      sleep 90005
  setsid:
    run: |
      setsid sleep 90006 &
      setsid bash -c 'sleep 90007' &
      sleep 90008
  nohup:
    run: |
      nohup sleep 90009 > /dev/null 2>&1 &
      sleep 90010
  stubborn:
    grace: 30s
    run: |
      trap '' TERM
      bash -c "trap '' TERM; sleep 90011" &
      sleep 90012 &
      sleep 90013 &
      sleep 90014
EOF
"$bin" run orphans -j 6 > /dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do
    [ "$(survivors)" -ge 14 ] && break
    sleep 0.1
done
started=$(survivors)
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
sleep 15
after_15s=$(survivors)
"$bin" validate orphans > /dev/null 2>&1 || true
after_next=$(survivors)
echo "1. kill -9 mid-run: $started processes started; alive 15 s later: $after_15s; after the next command: $after_next"
pkill -KILL -f "sleep 9[0-9]{4}" 2>/dev/null || true

cat > pipelines/escapes.yml <<'EOF'
version: 1
stages:
  escapes:
    run: |
      setsid sleep 91001 &
      timeout 300 sleep 91002 &
      set -m
      sleep 91003 &
      true
EOF
"$bin" run escapes > /dev/null 2>&1 || true
sleep 1
echo "2. passing stage with setsid, timeout, set -m: alive after the run: $(survivors)"
pkill -KILL -f "sleep 9[0-9]{4}" 2>/dev/null || true

measure() { # measure LABEL CMD...: exit code, seconds, peak RSS in MB
    local label=$1; shift
    local code=0
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2> "$work/err" || code=$?
    read -r secs kib < <(tail -1 "$work/time")
    printf '%s: exit %s, %s s, %s MB peak, %s bytes on stderr\n' \
        "$label" "$code" "$secs" "$((kib / 1024))" "$(wc -c < "$work/err")"
}

python3 - > pipelines/big.yml <<'EOF'
import sys
sys.stdout.write("version: 1\nstages:\n  a:\n    run: 'true'\n")
line = "# " + "x" * 98 + "\n"
sys.stdout.write(line * 2_000_000)
EOF
measure "3. 200 MB pipeline, validate" "$bin" validate big

cat > pipelines/outputs.yml <<'EOF'
version: 1
stages:
  big:
    run: head -c 300000000 /dev/zero | tr '\0' x | fold -w 100 | sed 's/^/K=/' >> "$PORTCULLIS_OUTPUT"
EOF
measure "4. 300 MB of outputs, run" "$bin" run outputs

python3 - > pipelines/mistakes.yml <<'EOF'
import sys
sys.stdout.write("version: 1\nstages:\n  a:\n    run: 'true'\n")
for i in range(20_000):
    sys.stdout.write(f"    bogus{i}: 1\n")
EOF
measure "5. 20,000 mistakes, validate" "$bin" validate mistakes
