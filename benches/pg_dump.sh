#!/usr/bin/env bash
# The `pg-dump` stage against plain `pg_dump -Fc` on the same database of at least 1 GB.
#
# Starts a throwaway PostgreSQL cluster (as the `postgres` user when run as root), fills one
# database with `generate_series` until `pg_database_size` passes TARGET_BYTES, then, RUNS times
# and interleaved, times:
#   - plain:  `pg_dump -Fc -f FILE` (pg_dump fsyncs its output, as the stage does);
#   - stage:  `portcullis run` of a one-stage `pg-dump` pipeline; its log gives the backup step
#             (snapshot, dump streamed through sha256 into the file, fsync) and the verification
#             (`pg_restore -f /dev/null` plus `--list`, row counts meanwhile) separately;
#   - restore: `portcullis backups restore` (sha256 check, fresh database, pg_restore in one
#             transaction, row counts, settings, swap) against `pg_restore --single-transaction`
#             into a new empty database.
# Prints the medians and the ratios. Run by hand from the repository root:
#   cargo build --release && bash benches/pg_dump.sh
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PORTCULLIS=${PORTCULLIS:-$PWD/target/release/portcullis}
TARGET_BYTES=${TARGET_BYTES:-1100000000}
RUNS=${RUNS:-3}
[ -x "$PORTCULLIS" ] || { echo "build first: cargo build --release (or set PORTCULLIS)" >&2; exit 2; }

work=$(mktemp -d /tmp/portcullis-bench-XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres: "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { as_pg "$PGBIN/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

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

mkdir -p "$work/project/pipelines"
cat > "$work/project/pipelines/backup.yml" <<EOF
version: 1
stages:
  backup:
    uses: pg-dump
    with:
      url: postgresql://postgres@127.0.0.1:$port/bench
      dir: $work/backups
      keep: 1
      restore-on-failure: false
EOF

now() { date +%s.%N; }
plain=() stage=() dumpstep=() verifystep=() prestore=() srestore=()
for i in $(seq 1 "$RUNS"); do
    sync
    t0=$(now)
    "$PGBIN/pg_dump" -Fc -f "$work/plain.dump" bench
    t1=$(now)
    plain+=("$(echo "$t1 - $t0" | bc -l)")

    sync
    t0=$(now)
    (cd "$work/project" && "$PORTCULLIS" run backup >/dev/null 2>"$work/stage.err") || { cat "$work/stage.err" >&2; exit 1; }
    t1=$(now)
    stage+=("$(echo "$t1 - $t0" | bc -l)")
    log="$work/project/.portcullis/runs/latest/backup.log"
    dumpstep+=("$(sed -n 's/^dump: .*(\([0-9.]*\)s)$/\1/p' "$log")")
    verifystep+=("$(sed -n 's/^verify: .*(\([0-9.]*\)s)$/\1/p' "$log")")
    echo "run $i: plain pg_dump ${plain[-1]}s; stage ${stage[-1]}s (backup step ${dumpstep[-1]}s, verify ${verifystep[-1]}s)" >&2
done

# Restores: plain into a new database, then the stage's swap restore over `bench`.
for i in $(seq 1 "$RUNS"); do
    psql -d postgres -c "drop database if exists plain_restore" -c "create database plain_restore template template0"
    t0=$(now)
    "$PGBIN/pg_restore" --single-transaction --exit-on-error -d plain_restore "$work/plain.dump"
    t1=$(now)
    prestore+=("$(echo "$t1 - $t0" | bc -l)")
    id=$(ls "$work/backups" | grep -v '\.partial$' | tail -1)
    t0=$(now)
    "$PORTCULLIS" backups restore "$id" --dir "$work/backups" --url "postgresql://postgres@127.0.0.1:$port/bench" 2>"$work/restore.err" || { cat "$work/restore.err" >&2; exit 1; }
    t1=$(now)
    srestore+=("$(echo "$t1 - $t0" | bc -l)")
    psql -d postgres -c "select format('drop database %I', datname) from pg_database where datname like 'bench\_\_failed\_%'" | while read -r q; do psql -d postgres -c "$q"; done
    echo "restore $i: plain ${prestore[-1]}s; portcullis ${srestore[-1]}s" >&2
done

ratio() { printf '%.3f' "$(echo "$1 / $2" | bc -l)"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
mp=$(median "${plain[@]}"); md=$(median "${dumpstep[@]}"); mv=$(median "${verifystep[@]}"); ms=$(median "${stage[@]}")
mpr=$(median "${prestore[@]}"); msr=$(median "${srestore[@]}")
dump_size=$(stat -c %s "$work/plain.dump")
cat <<EOF
database            $size bytes ($rows events), custom dump $dump_size bytes, $RUNS runs, medians
plain pg_dump -Fc   ${mp}s
backup step         ${md}s   ratio $(ratio "$md" "$mp")x  (snapshot, dump + sha256, fsync)
verification        ${mv}s   (pg_restore reads every block, then --list; row counts meanwhile)
whole stage         ${ms}s   ratio $(ratio "$ms" "$mp")x  (process start, preflight, verify, manifest, retention)
plain restore       ${mpr}s  (pg_restore --single-transaction into a new empty database)
portcullis restore  ${msr}s  ratio $(ratio "$msr" "$mpr")x  (sha256 check, restore, row counts, settings, swap)
EOF
