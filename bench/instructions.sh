#!/usr/bin/env bash
# Work per operation on the hot paths: GET /auth, the full connect flow and a
# proxied API call. Two passes over the same operations:
#
# - instructions, counted by `valgrind --tool=callgrind` on the server (all
#   its threads, user space only);
# - system calls and context switches, counted by `perf stat` on the server
#   running natively (what callgrind leaves out: a write per log line, a
#   hand-off to a database worker thread).
#
# Counts, unlike the rates of bench/hot_paths.sh, barely move with the
# machine's load, so they compare builds on a busy machine.
#
#   bash bench/instructions.sh                     # about a minute after the build
#   BENCH_SERVER=/tmp/older/emailoctopus-connect bash bench/instructions.sh
#                                                  # another build of the server
#   INSTRUCTIONS_OPS=2000 bash bench/instructions.sh   # operations per path (default 1000)
#
# Each path is warmed up (a tenth of the count), then counted over the
# operations, made one after another on one keep-alive connection. The
# server's settings are those of bench/hot_paths.sh (SQLite, --open-connect).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
OPS=${INSTRUCTIONS_OPS:-1000}
WARMUP=$((OPS / 10))
BIN=${CARGO_TARGET_DIR:-target}/release
SERVER=${BENCH_SERVER:-$BIN/emailoctopus-connect}
ADMIN=bench-admin-token
API_KEY=bench-api-key

build bench_provider bench_flows
echo "server under test: $SERVER"
start provider "$LOAD_CPU" "$BIN/examples/bench_provider" 127.0.0.1:0
PROVIDER=$ADDR
KEY=$("$SERVER" gen-key)

# serve NAME [WRAPPER...]: the server (under WRAPPER), with its API-key
# connection `bench`; sets SERVER_PID and URL. Waits longer than `start`:
# under callgrind the start takes seconds.
serve() {
    local name=$1
    shift
    : >"$WORK/$name.out"
    "$@" "$SERVER" --listen-addr=127.0.0.1:0 --client-id=bench \
        --client-secret=bench-secret "--authorize-url=http://$PROVIDER/authorize" \
        "--token-url=http://$PROVIDER/token" "--api-base-url=http://$PROVIDER" \
        "--token-encryption-key=$KEY" "--admin-token=$ADMIN" --open-connect=true $PACING \
        "--database-url=sqlite://$WORK/$name.db" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    local addr=
    for _ in $(seq 600); do
        addr=$(sed -n 's#^listening on http://##p' "$WORK/$name.out")
        [ -n "$addr" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "the server did not start:" >&2; cat "$WORK/$name.err" >&2; exit 1; }
    URL=http://$addr
    curl -sS -f -o /dev/null -X PUT -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
        -d "{\"api_key\":\"$API_KEY\"}" "$URL/connections/bench/api-key"
}

# The operations: N of them, failing unless every one succeeded.
auth() {
    local n=$1 config=$WORK/auth.curl
    for _ in $(seq "$n"); do printf 'url = "%s/auth"\noutput = "/dev/null"\n' "$URL"; done >"$config"
    local redirects
    # One curl for all: it keeps the connection alive between them.
    redirects=$(curl -sS -K "$config" -w '%{http_code}\n' | grep -c '^303$' || true)
    [ "$redirects" = "$n" ] || { echo "only $redirects of $n GET /auth answered 303" >&2; exit 1; }
}
flows() { "$BIN/examples/bench_flows" "$URL" 1 --total="$1" >"$WORK/flows.out" && all_done; }
calls() {
    "$BIN/examples/bench_flows" "$URL" 1 --total="$1" "--admin=$ADMIN" \
        --calls=/connections/bench/api/lists >"$WORK/flows.out" && all_done
}
all_done() {
    [ "$(result_field "$WORK/flows.out" errors)" = 0 ] || { cat "$WORK/flows.out" >&2; exit 1; }
}
PATHS=(auth flows calls)
declare -A LABEL=([auth]='`GET /auth`' [flows]='full flow (server side of /auth + /callback)'
    [calls]='proxied `GET .../api/lists`')
declare -A INSTRUCTIONS SYSCALLS SWITCHES

echo "-- instructions (callgrind)"
serve callgrind valgrind --tool=callgrind "--callgrind-out-file=$WORK/callgrind.out"
dumps=0
for op in "${PATHS[@]}"; do
    "$op" "$WARMUP"
    callgrind_control -z "$SERVER_PID" >/dev/null 2>&1
    "$op" "$OPS"
    callgrind_control -d "$SERVER_PID" >/dev/null 2>&1
    dumps=$((dumps + 1))
    INSTRUCTIONS[$op]=$(awk -v n="$OPS" '/^summary:/ { printf "%.0f", $2 / n }' "$WORK/callgrind.out.$dumps")
    echo "${LABEL[$op]}: ${INSTRUCTIONS[$op]} instructions per operation"
done
stop "$SERVER_PID"

echo "-- system calls and context switches (perf stat)"
serve native
for op in "${PATHS[@]}"; do
    "$op" "$WARMUP"
    perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$SERVER_PID" -o "$WORK/perf.$op" &
    perf=$!
    sleep 0.2 # perf attaches to every thread before the operations start
    "$op" "$OPS"
    kill -INT "$perf"
    wait "$perf" || true
    SYSCALLS[$op]=$(awk -F, -v n="$OPS" '$3 == "raw_syscalls:sys_enter" { printf "%.1f", $1 / n }' "$WORK/perf.$op")
    SWITCHES[$op]=$(awk -F, -v n="$OPS" '$3 == "context-switches" { printf "%.1f", $1 / n }' "$WORK/perf.$op")
    echo "${LABEL[$op]}: ${SYSCALLS[$op]} system calls, ${SWITCHES[$op]} context switches per operation"
done
stop "$SERVER_PID"

echo
echo "== summary (Markdown), $OPS operations per path"
echo "| per op | instructions | system calls | context switches |"
echo "| --- | --- | --- | --- |"
for op in "${PATHS[@]}"; do
    echo "| ${LABEL[$op]} | ${INSTRUCTIONS[$op]} | ${SYSCALLS[$op]} | ${SWITCHES[$op]} |"
done
