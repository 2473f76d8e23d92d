#!/usr/bin/env bash
# The connect flow's benchmark, rerunnable: emailoctopus-connect against the ceiling of
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
# Needs: cargo, taskset, and wrk (installed from Debian if missing). The
# pieces it shares with bench/proxy.sh and bench/instances.sh are in bench/lib.sh.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
STARTUP_RUNS=11

build bench_provider bench_ceiling bench_flows bench_startup bench_burst

# auth_load NAME URL: wrk on /auth; sets RPS, P50, P99.
auth_load() { wrk_load "$@"; }

# flow_load NAME BASE_URL: bench_flows; sets FLOWS, FP50, FP99, FERR.
flow_load() {
    driver_load "$1" "$2" "$CONNECTIONS" "$SECONDS_PER_RUN"
    FLOWS=$RATE
}

machine

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
