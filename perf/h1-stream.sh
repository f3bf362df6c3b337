#!/usr/bin/env bash
# HTTP/1.1 measurements for the data plane, all on loopback:
#   1. requests/s through ringside (1 worker) with wrk, 50 keep-alive connections, 128-byte
#      body, beside the same load sent straight to the origin (the ceiling of this placement);
#   2. ringside's memory while a large body streams through it, downloaded and uploaded.
# The origin is nginx (access log off). Each rps figure is the median of RUNS runs, with the
# spread (min..max). Tools missing on the machine (wrk, nginx, curl) are installed with apt.
#
#   perf/h1-stream.sh                  # defaults: RUNS=3 DURATION=10 SIZE_GIB=4
#   RUNS=5 DURATION=20 SIZE_GIB=8 perf/h1-stream.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
SIZE_GIB=${SIZE_GIB:-4}
CONNS=${CONNS:-50}

need=()
for tool in wrk nginx curl; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
    pkgs=()
    for t in "${need[@]}"; do case $t in nginx) pkgs+=(nginx-light) ;; *) pkgs+=("$t") ;; esac; done
    echo "installing: ${pkgs[*]}"
    apt-get update -qq && apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
NGINX=$(command -v nginx)

echo "building ringside (release)..."
cargo build --release --quiet --bin ringside
RINGSIDE=target/release/ringside

work=$(mktemp -d)
chmod 755 "$work" # nginx workers run unprivileged and must read the bodies
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ORIGIN=$(free_port)
PROXY=$(free_port)

# Placement: the proxy alone on the first CPU, origin and load generator on the others.
cpus=$(nproc)
PROXY_CPU=0
OTHER_CPUS="1-$((cpus - 1))"
[ "$cpus" -lt 2 ] && OTHER_CPUS=0

truncate -s "${SIZE_GIB}G" "$work/big.bin" # sparse: reads as zeros, costs no disk
head -c 128 /dev/zero | tr '\0' 'x' >"$work/small"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    sendfile on;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    server {
        listen 127.0.0.1:$ORIGIN;
        location = /small { alias $work/small; default_type text/plain; }
        location = /big { alias $work/big.bin; default_type application/octet-stream; }
        location = /upload { client_max_body_size 0; return 200 "ok\n"; }
    }
}
CONF
taskset -c "$OTHER_CPUS" "$NGINX" -c "$work/nginx.conf" -p "$work"

cat >"$work/ringside.toml" <<CONF
[proxy]
workers = 1
[[listeners]]
name = "in"
bind = "127.0.0.1:$PROXY"
[[routes]]
listener = "in"
name = "origin"
cluster = "origin"
[[clusters]]
name = "origin"
endpoints = ["127.0.0.1:$ORIGIN"]
CONF
taskset -c "$PROXY_CPU" "$RINGSIDE" run --config "$work/ringside.toml" --log-level warn &
RS_PID=$!
pids+=("$RS_PID")
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PROXY/small" >/dev/null && break; sleep 0.1; done

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

median_spread() { # prints "median (min..max)"
    sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f (%.0f..%.0f)", m, a[1], a[NR]}'
}

bench() { # url -> one rps figure per run; a run with errors or non-2xx answers fails the script
    for _ in $(seq "$RUNS"); do
        out=$(taskset -c "$OTHER_CPUS" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$1")
        if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
            echo "wrk reported errors against $1:" >&2
            echo "$out" >&2
            exit 1
        fi
        awk '/^Requests\/sec/ {print $2}' <<<"$out"
    done
}

echo "placement: ringside on cpu $PROXY_CPU; nginx origin and wrk on cpu $OTHER_CPUS ($(nproc) cpus, kernel $(uname -r))"
echo "idle RSS: $(rss_kib "$RS_PID") KiB"
echo "running wrk: $RUNS x ${DURATION}s, $CONNS connections, 128-byte body..."
direct=$(bench "http://127.0.0.1:$ORIGIN/small" | median_spread)
proxied=$(bench "http://127.0.0.1:$PROXY/small" | median_spread)
after_load=$(rss_kib "$RS_PID")

echo "streaming ${SIZE_GIB} GiB down and up through ringside..."
before_stream=$(rss_kib "$RS_PID")
t0=$(date +%s.%N)
got=$(curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$PROXY/big")
t1=$(date +%s.%N)
up=$(curl -s -o /dev/null -w '%{size_upload}' -X POST -T "$work/big.bin" "http://127.0.0.1:$PROXY/upload")
t2=$(date +%s.%N)
peak=$(hwm_kib "$RS_PID")
expect=$((SIZE_GIB * 1024 * 1024 * 1024))
[ "$got" = "$expect" ] || { echo "download size mismatch: $got != $expect"; exit 1; }
[ "$up" = "$expect" ] || { echo "upload size mismatch: $up != $expect"; exit 1; }
down_mibs=$(awk -v b="$got" -v s="$t0" -v e="$t1" 'BEGIN {printf "%.0f", b/1048576/(e-s)}')
up_mibs=$(awk -v b="$up" -v s="$t1" -v e="$t2" 'BEGIN {printf "%.0f", b/1048576/(e-s)}')

cat <<TABLE

| measurement | value |
|---|---|
| wrk direct to origin, req/s (median, min..max of $RUNS) | $direct |
| wrk through ringside, req/s (median, min..max of $RUNS) | $proxied |
| RSS after the wrk runs | $after_load KiB |
| RSS before streaming | $before_stream KiB |
| peak RSS of the process (VmHWM) after streaming ${SIZE_GIB} GiB down and up | $peak KiB |
| download through ringside | $down_mibs MiB/s |
| upload through ringside | $up_mibs MiB/s |
TABLE
