#!/usr/bin/env bash
# Benchmark: failed requests during a blue-green cutover and a rollback, measured, not assumed.
# Not a test: it asserts nothing; it prints counts and times.
#
#   benches/bluegreen.sh
#
# For each switch method (METHODS, default "nginx haproxy") a router on the host proxies to the
# colour containers of one service (a FROM-scratch busybox httpd image built here; no registry):
# nginx (own prefix and free port in a temp dir, reloaded on a switch) or HAProxy (own config,
# admin socket and port, switched through its runtime API). For each client type, steady load
# runs through the router while portcullis
#   1. cuts the service over to the other colour (`cutover`), then
#   2. cuts over again with a later stage that fails, so the stage's rollback switches back
#      (`rollback`), and, through HAProxy,
#   3. cuts over as a canary, 10% then 50% of the traffic for 2s each (`canary`), each step
#      judged on HAProxy's counters for the new colour (printed under the line).
# Client types (benches/bg_load.py): `close` (new connection per request), `keepalive`
# (persistent connections, every error counted), `retry` (keepalive that resends a request once
# when a reused connection dies before any answer byte, as browsers and most client libraries
# do for idempotent requests).
# Each line: failed/total requests, failures by class, the switch time and the whole deploy time
# (from the stage's own log line). Takes about 1.5 minutes.
# Needs: docker (engine reachable), nginx, haproxy, busybox-static, python3, cargo.
# Env: WORKERS (default 8 load threads), WATCH (default 3s), DRAIN (default 1s),
# KEEPALIVE_TIMEOUT (nginx's client `keepalive_timeout`; default Debian's 75s; 0 turns client
# keep-alive off at the edge), CLIENTS (default "close keepalive retry"), METHODS.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
workers=${WORKERS:-8}
watch=${WATCH:-3s}
drain=${DRAIN:-1s}
keepalive_timeout=${KEEPALIVE_TIMEOUT:-75s}
clients=${CLIENTS:-close keepalive retry}
methods=${METHODS:-nginx haproxy}

source "$here/common.sh"
require bluegreen.sh docker "see https://docs.docker.com/engine/install/"
require bluegreen.sh busybox "apt-get install -y busybox-static"
require bluegreen.sh cargo "install Rust from https://rustup.rs"
for tool in nginx haproxy python3; do require bluegreen.sh "$tool"; done

cargo build --quiet --manifest-path "$repo/Cargo.toml" </dev/null
bin="${CARGO_TARGET_DIR:-$repo/target}/debug/portcullis"

work=$(mktemp -d)
prefix="bgbench$$"
cleanup() {
    nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -s stop 2>/dev/null || true
    [ ! -f "$work/haproxy.pid" ] || kill "$(cat "$work/haproxy.pid")" 2>/dev/null || true
    for method in $methods; do
        ids=$(docker ps -aq --filter "label=dev.portcullis.blue-green.service=$prefix$method")
        [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# The colour image: static busybox serving /healthz and /colour.
mkdir -p "$work/image/rootfs/bin" "$work/image/rootfs/www"
cp "$(command -v busybox)" "$work/image/rootfs/bin/busybox"
ln -s busybox "$work/image/rootfs/bin/sh"
cat >"$work/image/rootfs/start" <<'EOF'
#!/bin/sh
echo "$PORTCULLIS_COLOUR" > /www/colour
echo ok > /www/healthz
trap "exit 0" TERM
/bin/busybox httpd -f -p 8080 -h /www &
wait $!
EOF
cat >"$work/image/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
HEALTHCHECK --interval=1s --timeout=1s --retries=2 CMD ["/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/bin/sh", "/start"]
EOF
image="portcullis-bg-bench:$(cat "$work/image/Dockerfile" "$work/image/rootfs/start" "$work/image/rootfs/bin/busybox" | sha256sum | cut -c1-16)"
docker image inspect "$image" >/dev/null 2>&1 ||
    docker build -q -t "$image" "$work/image" >/dev/null 2>&1


free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# nginx with Debian's default client keep-alive (keepalive_timeout 75s) unless told otherwise.
nginx_port=$(free_port)
n="$work/nginx"
mkdir -p "$n/tmp"
cat >"$n/nginx.conf" <<EOF
worker_processes 2;
user root;
pid $n/nginx.pid;
error_log $n/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout $keepalive_timeout;
  client_body_temp_path $n/tmp; proxy_temp_path $n/tmp; fastcgi_temp_path $n/tmp;
  uwsgi_temp_path $n/tmp; scgi_temp_path $n/tmp;
  include $n/upstream.conf;
  server { listen 127.0.0.1:$nginx_port; location / { proxy_pass http://${prefix}nginx; } }
}
EOF
echo "upstream ${prefix}nginx { server 127.0.0.1:9; }" >"$n/upstream.conf"
nginx -p "$n" -c "$n/nginx.conf"

# HAProxy with the two server slots portcullis re-addresses; client keep-alive is its default.
haproxy_port=$(free_port)
cat >"$work/haproxy.cfg" <<EOF
global
    stats socket $work/haproxy.sock mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 75s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$haproxy_port
    default_backend ${prefix}haproxy
backend ${prefix}haproxy
    server blue 127.0.0.1:1 disabled
    server green 127.0.0.1:1 disabled
EOF
haproxy -D -p "$work/haproxy.pid" -f "$work/haproxy.cfg"

pipeline() { # $1: method, $2: more settings of the stage, $3: more stages
    local port switch
    if [ "$1" = nginx ]; then
        port=$nginx_port
        switch="{ nginx: { upstream-file: \"$n/upstream.conf\", command: [nginx, -p, \"$n\", -c, \"$n/nginx.conf\"] } }"
    else
        port=$haproxy_port
        switch="{ haproxy: { socket: \"$work/haproxy.sock\" } }"
    fi
    cat >"$work/pipelines/deploy.yml" <<EOF
version: 1
stages:
  cutover:
    uses: blue-green
    with:
      service: ${prefix}$1
      image: $image
      port: 8080
      health: { path: /healthz, interval: 200ms, timeout: 1s, healthy-after: 3, unhealthy-after: 3, within: 30s }
      switch: $switch
      drain: $drain
      watch: $watch
      watch-url: http://127.0.0.1:$port/healthz
$2
$3
EOF
}
mkdir -p "$work/pipelines"
deploy() {
    (cd "$work" && "$bin" run deploy </dev/null >/dev/null 2>&1) || true
}

echo "nginx keepalive_timeout $keepalive_timeout, $workers load threads"
printf '%-8s %-10s %-9s %12s %-60s %s\n' method client scenario failed "by class" times
for method in $methods; do
    if [ "$method" = nginx ]; then port=$nginx_port; else port=$haproxy_port; fi
    pipeline "$method" "" ""
    deploy # the first deploy, without load
    scenarios="cutover rollback"
    [ "$method" != haproxy ] || scenarios="cutover rollback canary"
    for client in $clients; do
        for scenario in $scenarios; do
            case $scenario in
                rollback) pipeline "$method" "" "  smoke:
    needs: [cutover]
    run: exit 1" ;;
                canary) pipeline "$method" "      canary: { steps: [10, 50], interval: 2s, max-error-rate: 1%, min-requests: 1 }" "" ;;
                *) pipeline "$method" "" "" ;;
            esac
            rm -f "$work/stop"
            python3 "$here/bg_load.py" "$port" "$client" "$workers" "$work/stop" >"$work/load.json" &
            load=$!
            sleep 1
            deploy
            sleep 1
            touch "$work/stop"
            wait "$load"
            log="$work/.portcullis/runs/latest/cutover.log"
            times=$(grep -ho 'switch took [0-9]* ms, the whole deploy [0-9]* ms' "$log" || true)
            if [ "$scenario" = rollback ]; then
                back=$(grep -ho 'back to `[^`]*`; switch took [0-9]* ms' \
                    "$work/.portcullis/runs/latest/cutover.rollback.log" || echo "NO ROLLBACK")
                times="$times; rollback: $back"
            fi
            python3 - "$work/load.json" "$method" "$client" "$scenario" "$times" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
total = c["ok"] + c["failed"]
classes = ", ".join(f"{k} {c[k]}" for k in ("non2xx", "connect", "reset_or_eof", "timeout", "retried"))
print(f"{sys.argv[2]:<8} {sys.argv[3]:<10} {sys.argv[4]:<9} {c['failed']:>5}/{total:<6} {classes:<60} {sys.argv[5]}")
PY
            if [ "$scenario" = canary ]; then
                # Each step as HAProxy counted it for the new colour.
                grep -h '^canary [0-9]*%: ' "$log" | sed 's/^/    /' || true
            fi
        done
    done
done
