#!/usr/bin/env bash
# Issue 2's benchmark, rerunnable: emailoctopus-connect against the ceiling of
# a bare axum server, on loopback, the server side pinned to one core and the
# load (and the fast local provider, which stands outside the server) to the
# other. Prints every figure as it goes and a Markdown summary at the end;
# bench/RESULTS.md records a run of it.
#
#   bash bench/run.sh                   # 10 s per load run, about 2 minutes after the build
#   BENCH_SECONDS=30 bash bench/run.sh
#
# A shared machine makes figures lie, so each load run first waits (up to
# BENCH_QUIET_WAIT seconds, default 900) until the machine is idle, and then
# reports how much CPU went to anything but the benchmark while it ran.
#
# Needs: cargo, taskset, and wrk (installed from Debian if missing).
set -euo pipefail

cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
QUIET_WAIT=${BENCH_QUIET_WAIT:-900}
CONNECTIONS=50
STARTUP_RUNS=11
SERVER_CPU=0
LOAD_CPU=1
if [ "$(nproc)" -lt 2 ]; then
    echo "warning: one core only; server and load share it, figures are not comparable" >&2
    LOAD_CPU=0
fi

if ! command -v wrk >/dev/null; then
    # Another apt may be running; wait for its lock rather than fail.
    apt-get update -qq && apt-get -o DPkg::Lock::Timeout=300 install -y -qq wrk
fi

cargo build --release --quiet --bin emailoctopus-connect \
    --example bench_provider --example bench_ceiling --example bench_flows \
    --example bench_startup --example bench_burst
BIN=target/release
SERVER=$BIN/emailoctopus-connect

WORK=$(mktemp -d /tmp/eoc-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# start NAME CPU CMD...: runs CMD on core CPU in the background, waits for its
# "listening on http://ADDR" line and sets ADDR and PID. taskset execs the
# command, so PID is the command's own (for /proc and for kill).
start() {
    local name=$1 cpu=$2
    shift 2
    taskset -c "$cpu" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 500); do
        ADDR=$(sed -n 's#^listening on http://##p' "$WORK/$name.out")
        [ -n "$ADDR" ] && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.01
    done
    echo "$name did not start:" >&2
    cat "$WORK/$name.err" >&2
    exit 1
}

stop() {
    kill "$1"
    wait "$1" 2>/dev/null || true
}

rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# CPU time, in clock ticks, from /proc: a core's busy and total time, the
# time all tasks ran (user, nice, system: what a process is charged for), and
# one process's own (fields 14 and 15; our commands' names hold no spaces).
core_busy() { awk -v cpu="cpu$1" '$1 == cpu { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
core_total() { awk -v cpu="cpu$1" '$1 == cpu { s = 0; for (i = 2; i <= NF; i++) s += $i; print s }' /proc/stat; }
tasks_time() { awk '$1 == "cpu" { print $2 + $3 + $4 }' /proc/stat; }
process_time() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# Waits until the whole machine has been under 10% busy for a second.
wait_quiet() {
    local waited=0 b0 t0 busy
    while :; do
        b0=$(($(core_busy 0) + $(core_busy "$LOAD_CPU"))) t0=$(($(core_total 0) + $(core_total "$LOAD_CPU")))
        sleep 1
        busy=$((100 * ($(core_busy 0) + $(core_busy "$LOAD_CPU") - b0) / ($(core_total 0) + $(core_total "$LOAD_CPU") - t0 + 1)))
        [ "$busy" -lt 10 ] && return 0
        if [ "$waited" -ge "$QUIET_WAIT" ]; then
            echo "  warning: the machine is still ${busy}% busy after ${QUIET_WAIT}s; measuring anyway"
            return 0
        fi
        [ "$waited" -eq 0 ] && echo "  (waiting for a quiet machine: ${busy}% busy now)"
        waited=$((waited + 1))
    done
}

# measured FILE CMD...: once the machine is quiet, runs CMD on the load core
# with its output in FILE (and shown), then tells how busy each core was, how
# much of a core the process under test ($TARGET_PID) used, and how much CPU
# went to anything but the benchmark: so that a figure limited by the load
# core or by a neighbour can be told apart from one limited by the server.
# Not in a pipeline: it sets CORE_SERVER, CORE_LOAD, TARGET_CPU (percent),
# TARGET_SHARE (the same as a fraction) and OTHERS.
measured() {
    local file=$1 b0 t0 b1 t1 target0 provider0 tasks0 wall ours driver
    shift
    wait_quiet
    b0=$(core_busy "$SERVER_CPU") t0=$(core_total "$SERVER_CPU")
    b1=$(core_busy "$LOAD_CPU") t1=$(core_total "$LOAD_CPU")
    target0=$(process_time "$TARGET_PID") provider0=$(process_time "$PROVIDER_PID") tasks0=$(tasks_time)
    # A small shell runs the driver and, once it has reaped it, reads the
    # driver's CPU time from its own children's account (fields 16 and 17).
    # shellcheck disable=SC2016 # the inner shell expands them
    taskset -c "$LOAD_CPU" sh -c '"$@"; status=$?
        awk "{ print \$16 + \$17 }" "/proc/$$/stat" >"$0"; exit $status' "$WORK/driver-ticks" "$@" >"$file"
    cat "$file"
    driver=$(cat "$WORK/driver-ticks")
    wall=$(($(core_total "$SERVER_CPU") - t0 + 1))
    CORE_SERVER=$((100 * ($(core_busy "$SERVER_CPU") - b0) / wall))
    CORE_LOAD=$((100 * ($(core_busy "$LOAD_CPU") - b1) / ($(core_total "$LOAD_CPU") - t1 + 1)))
    TARGET_CPU=$((100 * ($(process_time "$TARGET_PID") - target0) / wall))
    TARGET_SHARE=$(awk -v t="$(($(process_time "$TARGET_PID") - target0))" -v w="$wall" 'BEGIN { print t / w }')
    ours=$(($(process_time "$TARGET_PID") - target0 + $(process_time "$PROVIDER_PID") - provider0 + driver))
    OTHERS=$((100 * ($(tasks_time) - tasks0 - ours) / wall))
    ((OTHERS >= 0)) || OTHERS=0
    echo "  (core $SERVER_CPU: ${CORE_SERVER}% busy, the process under test ${TARGET_CPU}% of a core;" \
        "core $LOAD_CPU: ${CORE_LOAD}% busy; other processes: ${OTHERS}% of a core)"
}

# wrk's latency figures in ms, whatever unit it chose.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
        printf "%.2f", n
    }'
}

# auth_load NAME URL: wrk on /auth; sets RPS, P50, P99.
auth_load() {
    local name=$1 url=$2 non2xx
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d2s "$url" >/dev/null # warm up
    measured "$WORK/$name.wrk" wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency "$url"
    RPS=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$WORK/$name.wrk")
    P50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$WORK/$name.wrk")")
    P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$WORK/$name.wrk")")
    non2xx=$(awk '/Non-2xx or 3xx/ { print $NF }' "$WORK/$name.wrk")
    [ -z "$non2xx" ] || echo "  warning: $non2xx answers were not 2xx/3xx"
}

# flow_load NAME BASE_URL: bench_flows; sets FLOWS, FP50, FP99, FERR.
flow_load() {
    local name=$1 url=$2 result
    measured "$WORK/$name.flows" "$BIN/examples/bench_flows" "$url" "$CONNECTIONS" "$SECONDS_PER_RUN"
    result=$(grep '^RESULT' "$WORK/$name.flows")
    FLOWS=$(sed -n 's/.*flows_per_sec=\([^ ]*\).*/\1/p' <<<"$result")
    FP50=$(sed -n 's/.*p50_ms=\([^ ]*\).*/\1/p' <<<"$result")
    FP99=$(sed -n 's/.*p99_ms=\([^ ]*\).*/\1/p' <<<"$result")
    FERR=$(sed -n 's/.*errors=\([^ ]*\).*/\1/p' <<<"$result")
}

# per_op_us SHARE RATE: CPU time of the process under test per request or
# flow, in µs. Unlike the rate it does not depend on whether the load core
# kept up, so it compares the server with the ceiling even when it did not.
per_op_us() { awk -v s="$1" -v r="$2" 'BEGIN { printf "%.1f", 1e6 * s / r }'; }

# The RESULT field $2 of the output file $1.
result_field() { sed -n "s/^RESULT.* $2=\([^ ]*\).*/\1/p" "$1"; }

echo "== machine"
echo "cores: $(nproc); cpu: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); kernel: $(uname -r)"
echo "$(rustc --version); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "commit: $(git describe --always --dirty 2>/dev/null || echo unknown); date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "somaxconn: $(cat /proc/sys/net/core/somaxconn); tcp_max_syn_backlog: $(cat /proc/sys/net/ipv4/tcp_max_syn_backlog)"

start provider "$LOAD_CPU" "$BIN/examples/bench_provider" 127.0.0.1:0
PROVIDER=$ADDR
PROVIDER_PID=$PID
KEY=$("$SERVER" gen-key)
SERVER_ARGS=(--client-id=bench --client-secret=bench-secret
    "--authorize-url=http://$PROVIDER/authorize" "--token-url=http://$PROVIDER/token"
    "--token-encryption-key=$KEY" --open-connect=true)

echo
echo "== exec to /healthz 200, $STARTUP_RUNS runs each (server on core $SERVER_CPU)"
wait_quiet
echo "-- a new database each run (creates the file, runs the migrations)"
taskset -c "$LOAD_CPU" "$BIN/examples/bench_startup" "$STARTUP_RUNS" taskset -c "$SERVER_CPU" "$SERVER" \
    "${SERVER_ARGS[@]}" "--database-url=sqlite://$WORK/startup-{run}.db" | tee "$WORK/startup-new"
echo "-- the same database each run (the usual restart)"
taskset -c "$LOAD_CPU" "$BIN/examples/bench_startup" "$STARTUP_RUNS" taskset -c "$SERVER_CPU" "$SERVER" \
    "${SERVER_ARGS[@]}" "--database-url=sqlite://$WORK/startup-again.db" | tee "$WORK/startup-again"
START_NEW=$(result_field "$WORK/startup-new" median_ms)
START_AGAIN=$(result_field "$WORK/startup-again" median_ms)

echo
echo "== emailoctopus-connect (core $SERVER_CPU), its log on stderr to a file"
start server "$SERVER_CPU" "$SERVER" --listen-addr=127.0.0.1:0 "${SERVER_ARGS[@]}" \
    "--database-url=sqlite://$WORK/bench.db"
TARGET_PID=$PID
SERVER_ADDR=$ADDR
sleep 1
RSS_IDLE=$(rss_mib "$TARGET_PID")
echo "idle RSS after start: $RSS_IDLE MiB"

echo "-- GET /auth, wrk -c$CONNECTIONS"
auth_load server-auth "http://$SERVER_ADDR/auth"
AUTH_RPS=$RPS AUTH_P50=$P50 AUTH_P99=$P99 AUTH_CPU=$TARGET_CPU AUTH_OTHERS=$OTHERS
AUTH_US=$(per_op_us "$TARGET_SHARE" "$RPS")

echo "-- full flows, $CONNECTIONS workers"
flow_load server-flows "http://$SERVER_ADDR"
FLOW_RATE=$FLOWS FLOW_P50=$FP50 FLOW_P99=$FP99 FLOW_ERR=$FERR
FLOW_CPU=$TARGET_CPU FLOW_LOAD_CORE=$CORE_LOAD FLOW_OTHERS=$OTHERS
FLOW_US=$(per_op_us "$TARGET_SHARE" "$FLOWS")

echo "-- a burst of 500 new connections at once on /healthz, 5 rounds"
wait_quiet
taskset -c "$LOAD_CPU" "$BIN/examples/bench_burst" "$SERVER_ADDR" 500 5 | tee "$WORK/burst"
BURST_SLOWEST=$(result_field "$WORK/burst" slowest_ms)
BURST_STALLS=$(result_field "$WORK/burst" stalls)
BURST_ERR=$(result_field "$WORK/burst" errors)
BURST_OVERFLOWS=$(result_field "$WORK/burst" listen_overflows)

sleep 2
RSS_AFTER=$(rss_mib "$TARGET_PID")
echo "idle RSS after the load: $RSS_AFTER MiB"
stop "$TARGET_PID"

echo
echo "== the same server with request logging off (RUST_LOG=warn), to see what the log costs"
RUST_LOG=warn start quiet-server "$SERVER_CPU" "$SERVER" --listen-addr=127.0.0.1:0 "${SERVER_ARGS[@]}" \
    "--database-url=sqlite://$WORK/bench.db"
TARGET_PID=$PID
echo "-- GET /auth, wrk -c$CONNECTIONS"
auth_load quiet-auth "http://$ADDR/auth"
QUIET_RPS=$RPS QUIET_P99=$P99 QUIET_US=$(per_op_us "$TARGET_SHARE" "$RPS")
echo "-- full flows, $CONNECTIONS workers"
flow_load quiet-flows "http://$ADDR"
QUIET_FLOWS=$FLOWS QUIET_FP99=$FP99 QUIET_FLOW_US=$(per_op_us "$TARGET_SHARE" "$FLOWS")
stop "$TARGET_PID"

echo
echo "== ceiling: bare axum (core $SERVER_CPU)"
start ceiling "$SERVER_CPU" "$BIN/examples/bench_ceiling" \
    "http://$PROVIDER/authorize" "http://$PROVIDER/token" 127.0.0.1:0
TARGET_PID=$PID
CEILING_ADDR=$ADDR
echo "-- GET /auth (a bare 303), wrk -c$CONNECTIONS"
auth_load ceiling-auth "http://$CEILING_ADDR/auth"
BARE_RPS=$RPS BARE_P50=$P50 BARE_P99=$P99 BARE_CPU=$TARGET_CPU BARE_OTHERS=$OTHERS
BARE_US=$(per_op_us "$TARGET_SHARE" "$RPS")
echo "-- full flows (the bare token round trip), $CONNECTIONS workers"
flow_load ceiling-flows "http://$CEILING_ADDR"
BARE_FLOWS=$FLOWS BARE_FP50=$FP50 BARE_FP99=$FP99
BARE_FLOW_CPU=$TARGET_CPU BARE_LOAD_CORE=$CORE_LOAD BARE_FLOW_OTHERS=$OTHERS
BARE_FLOW_US=$(per_op_us "$TARGET_SHARE" "$FLOWS")
stop "$TARGET_PID"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo missed; fi; }

echo
echo "== summary (Markdown)"
cat <<EOF
| figure | emailoctopus-connect | bare axum ceiling | ratio | target | |
| --- | --- | --- | --- | --- | --- |
| GET /auth, requests/s (50 connections) | $AUTH_RPS | $BARE_RPS | $(ratio "$AUTH_RPS" "$BARE_RPS") | ≥ 70% | $(verdict "$AUTH_RPS >= 0.7 * $BARE_RPS") |
| GET /auth, latency p50 / p99 | $AUTH_P50 / $AUTH_P99 ms | $BARE_P50 / $BARE_P99 ms | | p99 < 5 ms | $(verdict "$AUTH_P99 < 5") |
| full flows/s (50 workers) | $FLOW_RATE | $BARE_FLOWS | $(ratio "$FLOW_RATE" "$BARE_FLOWS") | ≥ 50% | $(verdict "$FLOW_RATE >= 0.5 * $BARE_FLOWS") |
| full flow, latency p50 / p99 | $FLOW_P50 / $FLOW_P99 ms | $BARE_FP50 / $BARE_FP99 ms | | | |
| flow errors | $FLOW_ERR | | | 0 | $(verdict "$FLOW_ERR == 0") |
| idle RSS, after start / after the load | $RSS_IDLE / $RSS_AFTER MiB | | | < 20 MiB | $(verdict "$RSS_AFTER < 20 && $RSS_IDLE < 20") |
| exec to /healthz 200, median of $STARTUP_RUNS: new DB / existing DB | $START_NEW / $START_AGAIN ms | | | < 100 ms | $(verdict "$START_NEW < 100 && $START_AGAIN < 100") |
| burst of 500 new connections, 5 rounds: slowest; over 1 s; errors; listen overflows | $BURST_SLOWEST ms; $BURST_STALLS; $BURST_ERR; $BURST_OVERFLOWS | | | no stalls | $(verdict "$BURST_STALLS == 0 && $BURST_ERR == 0") |

| diagnostic | emailoctopus-connect | bare axum ceiling |
| --- | --- | --- |
| CPU of the process under test per /auth request (ratio: ceiling ÷ server) | $AUTH_US µs ($(ratio "$BARE_US" "$AUTH_US")) | $BARE_US µs |
| CPU of the process under test per full flow (ratio: ceiling ÷ server) | $FLOW_US µs ($(ratio "$BARE_FLOW_US" "$FLOW_US")) | $BARE_FLOW_US µs |
| process under test, share of its core: /auth; flows | $AUTH_CPU%; $FLOW_CPU% | $BARE_CPU%; $BARE_FLOW_CPU% |
| load core busy during flows | $FLOW_LOAD_CORE% | $BARE_LOAD_CORE% |
| other processes during /auth; flows (% of a core) | $AUTH_OTHERS%; $FLOW_OTHERS% | $BARE_OTHERS%; $BARE_FLOW_OTHERS% |
| with RUST_LOG=warn: /auth requests/s, p99, CPU per request | $QUIET_RPS, $QUIET_P99 ms, $QUIET_US µs | |
| with RUST_LOG=warn: flows/s, p99, CPU per flow | $QUIET_FLOWS, $QUIET_FP99 ms, $QUIET_FLOW_US µs | |
EOF
