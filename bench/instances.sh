#!/usr/bin/env bash
# shellcheck disable=SC2154 # the figures are set by name, with printf -v
# The scale-out benchmark, rerunnable: two instances on one PostgreSQL database
# against the fast local provider, beside one instance on PostgreSQL and one
# on SQLite, in the same run. Each configuration gets the same fixed work:
# INSTANCES_FLOWS full connect flows (default 10,000), each through a connect
# session for a connection id of its own, then INSTANCES_CALLS access-token
# calls (default 100,000), 50 workers; then `GET /connections` on every
# instance must list every connection the flows made. With two instances the
# driver (examples/bench_flows.rs) plays load balancer: requests alternate
# between them and every flow's callback lands on the other instance than its
# /auth. Last, a refresh storm across the two instances (examples/bench_storm.rs):
# one provider refresh for both processes.
#
#   bash bench/instances.sh        # about 2 minutes after the build
#
# Layout (bench/lib.sh): the server(s) on core 0 (both instances share it,
# so the two-instance figures have the same server CPU budget as one), the
# driver and the provider on core 1, PostgreSQL (a shared system service at
# 127.0.0.1:5432) wherever the kernel puts it. It creates the database
# eoc_bench for the run and drops it at the end.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
FLOWS_TOTAL=${INSTANCES_FLOWS:-10000}
CALLS_TOTAL=${INSTANCES_CALLS:-100000}
PG_HOST=127.0.0.1
PG_DB=eoc_bench
PG_URL=postgres://postgres@$PG_HOST:5432/$PG_DB

build bench_provider bench_flows bench_storm
machine
echo "postgres: $(psql -h "$PG_HOST" -U postgres -d postgres -Atc 'SHOW server_version')"

dropdb -h "$PG_HOST" -U postgres --if-exists "$PG_DB"
createdb -h "$PG_HOST" -U postgres "$PG_DB"
CLEANUPS+=("dropdb -h $PG_HOST -U postgres --if-exists $PG_DB")

start provider "$LOAD_CPU" "$BIN/examples/bench_provider" 127.0.0.1:0
PROVIDER=$ADDR
PROVIDER_PID=$PID
ADMIN=bench-admin-token
SERVER_ARGS=(--client-id=bench --client-secret=bench-secret
    "--authorize-url=http://$PROVIDER/authorize" "--token-url=http://$PROVIDER/token"
    "--api-base-url=http://$PROVIDER" "--token-encryption-key=$("$SERVER" gen-key)"
    "--admin-token=$ADMIN")
# shellcheck disable=SC2206 # PACING is a list of flags
SERVER_ARGS+=($PACING)

# workload LABEL BASES PIDS: the fixed flows, the fixed calls, the check for
# lost connections; sets LABEL_* figures.
workload() {
    local label=$1 bases=$2
    TARGET_PID=$3
    echo "-- $FLOWS_TOTAL connect flows through connect sessions, $CONNECTIONS workers, then GET /connections"
    driver_load "$label-flows" "$bases" "$CONNECTIONS" 0 "--total=$FLOWS_TOTAL" --sessions \
        "--admin=$ADMIN" "--prefix=$label" --check-lost
    printf -v "${label}_FLOWS" %s "$RATE"
    printf -v "${label}_FP99" %s "$FP99"
    printf -v "${label}_FDONE" %s "$DONE"
    printf -v "${label}_FERR" %s "$FERR"
    printf -v "${label}_LOST" %s "$LOST"
    printf -v "${label}_MADE" %s "$MADE"
    printf -v "${label}_FLOW_US" %s "$(per_op_us "$TARGET_SHARE" "$RATE")"
    printf -v "${label}_FLOW_PG" %s "$PG_CPU"
    printf -v "${label}_FLOW_LOAD" %s "$CORE_LOAD"
    printf -v "${label}_FLOW_OTHERS" %s "$OTHERS"
    echo "-- $CALLS_TOTAL access-token calls, $CONNECTIONS workers"
    driver_load "$label-calls" "$bases" "$CONNECTIONS" 0 "--total=$CALLS_TOTAL" \
        "--admin=$ADMIN" "--calls=/connections/$label-0-0/access-token"
    printf -v "${label}_CALLS" %s "$RATE"
    printf -v "${label}_CP99" %s "$FP99"
    printf -v "${label}_CDONE" %s "$DONE"
    printf -v "${label}_CERR" %s "$FERR"
    printf -v "${label}_CALL_US" %s "$(per_op_us "$TARGET_SHARE" "$RATE")"
    printf -v "${label}_CALL_PG" %s "$PG_CPU"
    printf -v "${label}_CALL_LOAD" %s "$CORE_LOAD"
    printf -v "${label}_CALL_OTHERS" %s "$OTHERS"
}

echo
echo "== one instance on SQLite (core $SERVER_CPU)"
start sqlite "$SERVER_CPU" "$SERVER" --listen-addr=127.0.0.1:0 "${SERVER_ARGS[@]}" \
    "--database-url=sqlite://$WORK/instances.db"
SQLITE_PID=$PID
workload sqlite "http://$ADDR" "$SQLITE_PID"
stop "$SQLITE_PID"

echo
echo "== one instance on PostgreSQL (core $SERVER_CPU)"
start pg-a "$SERVER_CPU" "$SERVER" --listen-addr=127.0.0.1:0 "${SERVER_ARGS[@]}" "--database-url=$PG_URL"
A_ADDR=$ADDR A_PID=$PID
workload pg1 "http://$A_ADDR" "$A_PID"

echo
echo "== two instances on the same PostgreSQL database (both on core $SERVER_CPU), the same redirect URI and key"
start pg-b "$SERVER_CPU" "$SERVER" --listen-addr=127.0.0.1:0 "${SERVER_ARGS[@]}" "--database-url=$PG_URL" \
    "--redirect-uri=http://$A_ADDR/callback"
B_ADDR=$ADDR B_PID=$PID
workload pg2 "http://$A_ADDR,http://$B_ADDR" "$A_PID $B_PID"

echo
echo "-- refresh storm across the two instances: 500 callers alternating, 3 rounds, refresh held 200 ms"
TARGET_PID="$A_PID $B_PID"
measured "$WORK/storm" "$BIN/examples/bench_storm" "http://$A_ADDR,http://$B_ADDR" "http://$PROVIDER" "$ADMIN" 500 3 200
S_P99=$(result_field "$WORK/storm" lag_p99_ms)
S_MAX=$(result_field "$WORK/storm" lag_max_ms)
S_ERR=$(result_field "$WORK/storm" errors)
S_ONE=$(result_field "$WORK/storm" one_refresh_rounds)
stop "$A_PID"
stop "$B_PID"

echo
echo "== summary (Markdown)"
cat <<SUMMARY
| figure | 2 instances, PostgreSQL | 1 instance, PostgreSQL | 1 instance, SQLite | target | |
| --- | --- | --- | --- | --- | --- |
| connect flows/s ($CONNECTIONS workers) | $pg2_FLOWS | $pg1_FLOWS | $sqlite_FLOWS | 1 PG ≥ 50% of SQLite: $(ratio "$pg1_FLOWS" "$sqlite_FLOWS") | $(verdict "$pg1_FLOWS >= 0.5 * $sqlite_FLOWS") |
| connect flow p99 | $pg2_FP99 ms | $pg1_FP99 ms | $sqlite_FP99 ms | | |
| access-token calls/s ($CONNECTIONS workers) | $pg2_CALLS | $pg1_CALLS | $sqlite_CALLS | 1 PG ≥ 50% of SQLite: $(ratio "$pg1_CALLS" "$sqlite_CALLS") | $(verdict "$pg1_CALLS >= 0.5 * $sqlite_CALLS") |
| access-token call p99 | $pg2_CP99 ms | $pg1_CP99 ms | $sqlite_CP99 ms | | |
| flows done; errors; connections made; lost | $pg2_FDONE; $pg2_FERR; $pg2_MADE; $pg2_LOST | $pg1_FDONE; $pg1_FERR; $pg1_MADE; $pg1_LOST | $sqlite_FDONE; $sqlite_FERR; $sqlite_MADE; $sqlite_LOST | 2 instances: $FLOWS_TOTAL, 0 errors, 0 lost | $(verdict "$pg2_FDONE >= $FLOWS_TOTAL && $pg2_FERR == 0 && \"$pg2_LOST\" == \"0\"") |
| access-token calls done; errors | $pg2_CDONE; $pg2_CERR | $pg1_CDONE; $pg1_CERR | $sqlite_CDONE; $sqlite_CERR | 2 instances: $CALLS_TOTAL, 0 errors | $(verdict "$pg2_CDONE >= $CALLS_TOTAL && $pg2_CERR == 0") |
| refresh storm across both instances (500 callers × 3): rounds with one refresh; after the provider's answer p99 / max; errors | $S_ONE of 3; $S_P99 / $S_MAX ms; $S_ERR | | | | |

| diagnostic | 2 instances, PostgreSQL | 1 instance, PostgreSQL | 1 instance, SQLite |
| --- | --- | --- | --- |
| server CPU per flow; per access-token call | $pg2_FLOW_US µs; $pg2_CALL_US µs | $pg1_FLOW_US µs; $pg1_CALL_US µs | $sqlite_FLOW_US µs; $sqlite_CALL_US µs |
| PostgreSQL CPU during flows; calls (% of a core) | $pg2_FLOW_PG%; $pg2_CALL_PG% | $pg1_FLOW_PG%; $pg1_CALL_PG% | $sqlite_FLOW_PG%; $sqlite_CALL_PG% |
| load core busy during flows; calls | $pg2_FLOW_LOAD%; $pg2_CALL_LOAD% | $pg1_FLOW_LOAD%; $pg1_CALL_LOAD% | $sqlite_FLOW_LOAD%; $sqlite_CALL_LOAD% |
| other processes during flows; calls (% of a core) | $pg2_FLOW_OTHERS%; $pg2_CALL_OTHERS% | $pg1_FLOW_OTHERS%; $pg1_CALL_OTHERS% | $sqlite_FLOW_OTHERS%; $sqlite_CALL_OTHERS% |
SUMMARY
