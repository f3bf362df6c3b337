#!/usr/bin/env bash
# Zero-loss operations under wrk load, on loopback, with the release binaries:
#   1. 100 configuration changes pushed through ringside-ctld with ringsidectl (weight
#      shifts, endpoint adds and removes, route additions) while wrk drives traffic;
#   2. a hot binary upgrade (ringsidectl upgrade) under wrk load;
#   3. a graceful drain (ringsidectl drain) under wrk load.
# For each it prints wrk's requests, non-2xx answers and socket errors. The origin is nginx
# (installed with apt if missing, like wrk).
#
#   perf/zero-loss.sh            # DURATION (seconds of load around each operation) = 10
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}

need=()
for tool in wrk nginx curl; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
    pkgs=()
    for t in "${need[@]}"; do case $t in nginx) pkgs+=(nginx-light) ;; *) pkgs+=("$t") ;; esac; done
    apt-get update -qq && apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

echo "building release binaries..."
cargo build --release --quiet --bin ringside --bin ringside-ctld --bin ringsidectl
BIN=$(pwd)/target/release

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    pkill -F "$work/nginx.pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
O1=$(free_port); O2=$(free_port); O3=$(free_port); PROXY=$(free_port)

cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    server { listen 127.0.0.1:$O1; location / { return 200 "one\n"; } }
    server { listen 127.0.0.1:$O2; location / { return 200 "two\n"; } }
    server { listen 127.0.0.1:$O3; location / { return 200 "three\n"; } }
}
CONF
nginx -c "$work/nginx.conf" -p "$work"

mkdir -p "$work/conf" "$work/state"
cat >"$work/conf/default.toml" <<CONF
[proxy]
workers = 2
drain_timeout_ms = 5000
[[listeners]]
name = "in"
bind = "127.0.0.1:$PROXY"
[[routes]]
listener = "in"
name = "api"
weighted = [ { cluster = "v1", weight = 90 }, { cluster = "v2", weight = 10 } ]
[[clusters]]
name = "v1"
endpoints = ["127.0.0.1:$O1"]
[[clusters]]
name = "v2"
endpoints = ["127.0.0.1:$O3"]
CONF
CTLD="$work/ctld.sock"
PROXY_SOCK="$work/proxy.sock"
"$BIN/ringside-ctld" --socket "$CTLD" --config-dir "$work/conf" --state-dir "$work/state" 2>"$work/ctld.log" &
pids+=($!)
for _ in $(seq 50); do [ -S "$CTLD" ] && break; sleep 0.1; done
cp "$work/conf/default.toml" "$work/boot.toml"
"$BIN/ringside" run --config "$work/boot.toml" --ctld "$CTLD" --node-id bench --control-socket "$PROXY_SOCK" --log-level warn 2>"$work/proxy.log" &
pids+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PROXY/" >/dev/null && break; sleep 0.1; done
ctl() { "$BIN/ringsidectl" --socket "$CTLD" "$@" >/dev/null; }

summary() { # label wrk-output-file
    awk -v label="$1" '
        /requests in/ {req=$1}
        /Non-2xx/ {non2xx=$NF}
        /Socket errors/ {gsub(",", ""); errs=sprintf("connect %s, read %s, write %s, timeout %s", $4, $6, $8, $10)}
        END {printf "| %s | %s | %s | %s |\n", label, req, (non2xx==""?0:non2xx), (errs==""?"none":errs)}' "$2"
}

echo "1/3: 100 configuration changes under load..."
wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$PROXY/" >"$work/wrk-reload.txt" &
WRK=$!
sleep 1
for i in $(seq 100); do
    case $((i % 4)) in
        0) ctl weights api v1=$((i % 10 * 10)) v2=$((100 - i % 10 * 10)) --node bench ;;
        1) ctl endpoints add v1 "127.0.0.1:$O2" --node bench ;;
        2) ctl endpoints remove v1 "127.0.0.1:$O2" --node bench ;;
        3) sed "s/name = \"api\"/name = \"api\"\nmatch = { path_prefix = \"\/\" }/" "$work/conf/default.toml" >"$work/step.toml"
           printf '\n[[routes]]\nlistener = "in"\nname = "extra-%s"\nmatch = { path_exact = "/extra-%s" }\ndirect_response = { status = 200, body = "x" }\n' "$i" "$i" >>"$work/step.toml"
           ctl apply -f "$work/step.toml" --node bench ;;
    esac
done
wait $WRK
generation=$("$BIN/ringsidectl" --proxy "$PROXY_SOCK" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])')

echo "2/3: hot upgrade under load..."
wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$PROXY/" >"$work/wrk-upgrade.txt" &
WRK=$!
sleep $((DURATION / 2))
"$BIN/ringsidectl" --proxy "$PROXY_SOCK" upgrade --binary "$BIN/ringside"
wait $WRK

echo "3/3: drain under load..."
wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$PROXY/" >"$work/wrk-drain.txt" &
WRK=$!
sleep $((DURATION / 2))
"$BIN/ringsidectl" --proxy "$PROXY_SOCK" drain
wait $WRK

echo
echo "proxy generation after the changes: $generation"
echo
echo "| operation under wrk -c$CONNS -d${DURATION}s | requests | non-2xx | socket errors |"
echo "|---|---|---|---|"
summary "100 configuration changes" "$work/wrk-reload.txt"
summary "hot upgrade" "$work/wrk-upgrade.txt"
summary "drain (port closes halfway: connect errors expected)" "$work/wrk-drain.txt"
