#!/usr/bin/env bash
# The `pg-dump` stage with `offsite:` against plain `pg_dump -Fc` followed by a plain upload of
# the file, on the same database of at least 1 GB as benches/pg_dump.sh.
#
# Starts a throwaway PostgreSQL cluster (as the `postgres` user when run as root) and fills one
# database exactly as benches/pg_dump.sh does, starts `rclone serve s3` on a free loopback port
# (one bucket, a folder of the work dir), makes an age key, then, RUNS times and interleaved,
# times:
#   - plain:  `pg_dump -Fc -f FILE` alone (pg_dump fsyncs its output, as the stage does);
#   - pair:   `pg_dump -Fc -f FILE`, then `rclone copyto FILE` to the same server with rclone as
#             an S3 client (its defaults: multipart above 200 MiB, 4 parts at once), timed as one;
#   - stage:  `portcullis run` of a one-stage `pg-dump` pipeline with `offsite:` (age encryption
#             and the multipart upload, and pg_restore reading every block, while pg_dump
#             streams; then `pg_restore --list` and the row counts
#             beside the read-back of the object; then the remote manifest). Its log gives the
#             backup step (`dump:`), the verification (`verify:`) and the offsite step
#             (`offsite:`, timed from the start of the verification to the remote manifest);
#   - local:  the same stage without `offsite:`, for reference (LOCAL=0 skips it).
# Each backup and uploaded object is deleted (the objects through the server), outside the timed
# part, once timed, so that at most two dumps' worth is on disk; `keep:` is large so retention
# deletes nothing inside it.
# Also prints the CPU seconds (user + sys) of the timed client processes and of the rclone
# server per variant, and the load average before each run. Prints the medians and the ratios.
# LOGS=DIR keeps each stage run's folder there. Run by hand from the repository root:
#   cargo build --release && bash benches/offsite.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
source "$here/common.sh"
require offsite rclone
require offsite age-keygen "apt-get install -y age"
require offsite bc
require offsite /usr/bin/time "apt-get install -y time"

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PORTCULLIS=${PORTCULLIS:-$PWD/target/release/portcullis}
TARGET_BYTES=${TARGET_BYTES:-1100000000}
RUNS=${RUNS:-3}
LOCAL=${LOCAL:-1}
[ -x "$PORTCULLIS" ] || { echo "build first: cargo build --release (or set PORTCULLIS)" >&2; exit 2; }

work=$(mktemp -d /tmp/portcullis-bench-XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres: "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
rclone_pid=
cleanup() {
    if [ -n "$rclone_pid" ]; then kill "$rclone_pid" 2>/dev/null || true; wait "$rclone_pid" 2>/dev/null || true; fi
    as_pg "$PGBIN/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# The database: as in benches/pg_dump.sh.
as_pg "$PGBIN/initdb" -D "$work/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$work/data" -l "$work/log" -w -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c shared_buffers=128MB -c max_wal_size=4GB" start >/dev/null
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
psql() { "$PGBIN/psql" -XAtq -v ON_ERROR_STOP=1 "$@"; }

psql -d postgres -c "create database bench"
psql -d bench -c "create table accounts(id int primary key, name text, created_at timestamptz default now())" \
    -c "insert into accounts(id, name) select g, 'account ' || g from generate_series(1, 100000) g" \
    -c "create table events(id bigint primary key, account_id int references accounts(id), kind text, amount numeric(12,2), payload text, created_at timestamptz)" \
    -c "alter database bench set work_mem = '16MB'"
start_id=1
batch=2000000
echo "generating at least $TARGET_BYTES bytes..." >&2
while [ "$(psql -d bench -c "select pg_database_size('bench')")" -lt "$TARGET_BYTES" ]; do
    psql -d bench -c "insert into events select g, 1 + g % 100000, (array['sale','refund','fee'])[1 + g % 3], (g % 100000) / 100.0, md5(g::text) || ' ' || md5((g * 31)::text), timestamptz '2026-01-01' + g * interval '1 second' from generate_series($start_id, $((start_id + batch - 1))) g"
    start_id=$((start_id + batch))
done
psql -d bench -c "vacuum analyze"
size=$(psql -d bench -c "select pg_database_size('bench')")
rows=$(psql -d bench -c "select count(*) from events")
echo "database: $size bytes, $rows events" >&2

# The S3 server: rclone serving a folder, its subfolder `bench` the bucket.
akid=AKID
secret=bench-secret-$RANDOM$RANDOM
s3port=$(free_port)
mkdir -p "$work/s3/bench"
rclone serve s3 --auth-key "$akid,$secret" --addr "127.0.0.1:$s3port" "$work/s3" >"$work/rclone.log" 2>&1 &
rclone_pid=$!
for _ in $(seq 1 100); do
    (echo >"/dev/tcp/127.0.0.1/$s3port") 2>/dev/null && break
    kill -0 "$rclone_pid" 2>/dev/null || { cat "$work/rclone.log" >&2; exit 1; }
    sleep 0.1
done
# rclone as the plain S3 client of the pair, a remote `bench` defined by variables.
export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other \
    RCLONE_CONFIG_BENCH_ENDPOINT=http://127.0.0.1:$s3port \
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$akid RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$secret
export S3_SECRET=$secret

age-keygen -o "$work/key.txt" 2>/dev/null
recipient=$(age-keygen -y "$work/key.txt")

pipeline() { # pipeline FOLDER [offsite]
    mkdir -p "$work/$1/pipelines"
    {
        cat <<EOF
version: 1
secrets:
  S3_SECRET: { env: S3_SECRET }
stages:
  backup:
    uses: pg-dump
    with:
      url: postgresql://postgres@127.0.0.1:$port/bench
      dir: $work/backups-$1
      keep: 1000
      restore-on-failure: false
EOF
        if [ "${2:-}" = offsite ]; then
            cat <<EOF
      offsite:
        url: s3://bench/stage
        endpoint: http://127.0.0.1:$s3port
        region: us-east-1
        access-key-id: $akid
        secret-access-key: \${S3_SECRET}
        recipients: [$recipient]
EOF
        fi
    } >"$work/$1/pipelines/backup.yml"
}
pipeline project offsite
pipeline local

now() { date +%s.%N; }
secs() { printf '%.2f' "$(echo "$1" | bc -l)"; } # secs EXPR: seconds, two decimals
# CPU seconds (user + sys) of the rclone server so far.
server_cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$rclone_pid/stat"; }
# timed FILE CMD...: runs CMD under /usr/bin/time, adding its CPU seconds to FILE.
timed() { local f=$1; shift; /usr/bin/time -f '%U %S' -a -o "$f" "$@"; }
client_cpu() { awk '{s += $1 + $2} END {printf "%.1f", s}' "$1"; }
sub() { printf '%.2f' "$(echo "$1 - ($2)" | bc -l)"; }
# s3_delete PREFIX: deletes the objects under bench/PREFIX through the server; removing the
# folder behind `rclone serve s3` would leave them in its directory cache, and the next stage's
# retention would then spend seconds retrying the GET of a manifest that is gone.
s3_delete() { rclone -q purge "bench:bench/$1"; }
stage_step() { sed -n "s/^$1: .*(\([0-9.]*\)s)\$/\1/p" "$2"; }
run_stage() { # run_stage FOLDER: times one `portcullis run`, leaves its log in $work/FOLDER.log
    rm -f "$work/cpu"
    sync
    local s0 t0 t1
    s0=$(server_cpu)
    t0=$(now)
    (cd "$work/$1" && timed "$work/cpu" "$PORTCULLIS" run backup >/dev/null 2>"$work/stage.err") \
        || { cat "$work/stage.err" "$work/$1/.portcullis/runs/latest/backup.log" >&2; exit 1; }
    t1=$(now)
    last=$(secs "$t1 - $t0")
    last_cpu=$(client_cpu "$work/cpu")
    last_server=$(sub "$(server_cpu)" "$s0")
    cp "$work/$1/.portcullis/runs/latest/backup.log" "$work/$1.log"
    if [ -n "${LOGS:-}" ]; then # LOGS=DIR keeps each stage run's folder (logs, report)
        mkdir -p "$LOGS" && cp -rL "$work/$1/.portcullis/runs/latest" "$LOGS/$1-$(date +%H%M%S)"
    fi
}

plain=() pair=() pairdump=() pairup=() stage=() dumpstep=() verifystep=() offsitestep=() local_=()
for i in $(seq 1 "$RUNS"); do
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    rm -f "$work/cpu"
    sync
    t0=$(now)
    timed "$work/cpu" "$PGBIN/pg_dump" -Fc -f "$work/plain.dump" bench
    t1=$(now)
    plain+=("$(secs "$t1 - $t0")")
    plain_cpu=$(client_cpu "$work/cpu")
    dump_size=$(stat -c %s "$work/plain.dump")
    rm -f "$work/plain.dump"

    rm -f "$work/cpu"
    sync
    s0=$(server_cpu)
    t0=$(now)
    timed "$work/cpu" "$PGBIN/pg_dump" -Fc -f "$work/pair.dump" bench
    t1=$(now)
    timed "$work/cpu" rclone -q copyto "$work/pair.dump" bench:bench/plain/pair.dump
    t2=$(now)
    pair+=("$(secs "$t2 - $t0")")
    pairdump+=("$(secs "$t1 - $t0")")
    pairup+=("$(secs "$t2 - $t1")")
    pair_cpu=$(client_cpu "$work/cpu")
    pair_server=$(sub "$(server_cpu)" "$s0")
    rm -f "$work/pair.dump"
    s3_delete plain

    run_stage project
    stage+=("$last")
    dumpstep+=("$(stage_step dump "$work/project.log")")
    verifystep+=("$(stage_step verify "$work/project.log")")
    offsitestep+=("$(stage_step offsite "$work/project.log")")
    object_size=$(sed -n 's/^offsite: \(.*\) encrypted to .*/\1/p' "$work/project.log")
    stage_cpu=$last_cpu stage_server=$last_server
    rm -rf "$work/backups-project"
    s3_delete stage

    local_line=
    if [ "$LOCAL" = 1 ]; then
        run_stage local
        local_+=("$last")
        local_line="; local-only stage ${last}s (backup step $(stage_step dump "$work/local.log")s, verify $(stage_step verify "$work/local.log")s; cpu ${last_cpu}s)"
        rm -rf "$work/backups-local"
    fi
    echo "run $i (load $load): plain pg_dump ${plain[-1]}s (cpu ${plain_cpu}s);" \
        "pair ${pair[-1]}s = pg_dump ${pairdump[-1]}s + rclone copyto ${pairup[-1]}s (cpu ${pair_cpu}s, server ${pair_server}s);" \
        "stage ${stage[-1]}s (backup step ${dumpstep[-1]}s, verify ${verifystep[-1]}s, offsite ${offsitestep[-1]}s, rest $(sub "${stage[-1]}" "${dumpstep[-1]} + ${offsitestep[-1]}")s; cpu ${stage_cpu}s, server ${stage_server}s)$local_line" >&2
done

ratio() { printf '%.3f' "$(echo "$1 / $2" | bc -l)"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
mp=$(median "${plain[@]}"); mpa=$(median "${pair[@]}"); mpd=$(median "${pairdump[@]}"); mpu=$(median "${pairup[@]}")
ms=$(median "${stage[@]}"); md=$(median "${dumpstep[@]}"); mv=$(median "${verifystep[@]}"); mo=$(median "${offsitestep[@]}")
cat <<EOF
database            $size bytes ($rows events), custom dump $dump_size bytes, encrypted object $object_size, $RUNS runs, medians
plain pg_dump -Fc   ${mp}s
pair                ${mpa}s   (pg_dump -Fc ${mpd}s, then rclone copyto ${mpu}s)
stage with offsite  ${ms}s   stage/pair $(ratio "$ms" "$mpa")x, stage/plain $(ratio "$ms" "$mp")x
  backup step       ${md}s   ratio $(ratio "$md" "$mp")x  (snapshot, dump + sha256 + age + multipart upload, fsync)
  verification      ${mv}s   (after the dump: --list, row counts; pg_restore read every block during the dump)
  offsite           ${mo}s   (from the verification's start: the upload's end, the read-back, the remote manifest)
EOF
if [ "$LOCAL" = 1 ]; then
    ml=$(median "${local_[@]}")
    echo "stage, no offsite  ${ml}s   ratio $(ratio "$ml" "$mp")x to plain (reference)"
fi
