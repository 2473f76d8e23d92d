#!/usr/bin/env bash
# shellcheck disable=SC2154 # the figures are set by name, with printf -v
# GET /connections at 100,000 connections, rerunnable: a page of 100
# (limit=100) with no filter, a deep page (after a cursor near the end), and
# by end_user_id, end_user_email, status, kind and tag; on SQLite and on
# PostgreSQL; each beside the same-work ceiling, the same page statement run
# straight through sqlx with each row turned into the same JSON
# (examples/bench_listing.rs ceiling), so the gap is what HTTP, the admin
# bearer and our code add.
#
#   bash bench/listing.sh      # about 8 minutes after the build
#   LISTING_SEEDED=20000 BENCH_SECONDS=5 bash bench/listing.sh
#
# The database is seeded straight through SQL (examples/bench_listing.rs
# seed): an end user each, three tags, mixed status and kind. PostgreSQL is
# the server at TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres);
# the script makes the database eoc_bench_listing there and drops it after.
# Layout (bench/lib.sh): the server, and then the ceiling, on core 0; wrk on
# core 1; PostgreSQL wherever the kernel puts it.
set -euo pipefail
export BENCH_QUIET_WAIT=${BENCH_QUIET_WAIT:-10}
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
SEEDED=${LISTING_SEEDED:-100000}
PG_ADMIN_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_DB=eoc_bench_listing
PG_URL="${PG_ADMIN_URL%/*}/$PG_DB"
ADMIN=bench-admin-token
# No provider in this bench: the CPU accounting counts none.
PROVIDER_PID=
FILTERS=(none deep end_user_id end_user_email status kind tag)
# The cursor of the page after seed-099000 (base64url of the id), as a
# client would have it from the page before.
DEEP=$(printf %s seed-099000 | base64 | tr '+/' '-_' | tr -d '=')
declare -A QUERY=(
    [none]="limit=100"
    [deep]="limit=100&after=$DEEP"
    [end_user_id]="limit=100&end_user_id=user-4242"
    [end_user_email]="limit=100&end_user_email=USER4242%40example.com"
    [status]="limit=100&status=needs_reauth"
    [kind]="limit=100&kind=oauth"
    [tag]="limit=100&tag=cohort:c42"
)

build bench_listing
KEY=$("$SERVER" gen-key)
machine
lscpu | head
echo "load: $(uptime)"
echo "postgres: $(psql "$PG_ADMIN_URL" -Atc 'SHOW server_version')"

# backend NAME URL POOL: seeds URL, prints the plans, then times each filter
# on the server and on the ceiling (POOL database connections, as the server's default).
backend() {
    local name=$1 url=$2 pool=$3 filter answer
    echo
    echo "== $name: seeding $SEEDED connections"
    "$BIN/examples/bench_listing" seed "$url" "$SEEDED" | tee "$WORK/$name.seed"
    printf -v "${name}_SEED_S" %s "$(result_field "$WORK/$name.seed" seconds)"
    "$BIN/examples/bench_listing" plans "$url" | tee "$WORK/$name.plans"

    start server "$SERVER_CPU" "$SERVER" --listen-addr=127.0.0.1:0 "--database-url=$url" \
        "--token-encryption-key=$KEY" "--admin-token=$ADMIN" --maintenance=false
    TARGET_PID=$PID
    for filter in "${FILTERS[@]}"; do
        answer=$(curl -sS -f -H "Authorization: Bearer $ADMIN" "http://$ADDR/connections?${QUERY[$filter]}")
        printf -v "${name}_${filter}_ROWS" %s "$(grep -o '"id":"seed-' <<<"$answer" | wc -l)"
        echo "-- $name server: GET /connections?${QUERY[$filter]} ($(eval echo "\$${name}_${filter}_ROWS") rows)"
        wrk_load "$name-$filter" "http://$ADDR/connections?${QUERY[$filter]}" -H "Authorization: Bearer $ADMIN"
        printf -v "${name}_${filter}" %s "$RPS / $P50 / $P99 ($TARGET_CPU% core, pg $PG_CPU%, others $OTHERS%)"
    done
    stop "$TARGET_PID"
    TARGET_PID=

    for filter in "${FILTERS[@]}"; do
        echo "-- $name ceiling: $filter, $CONNECTIONS tasks on $pool connection(s)"
        measured "$WORK/$name-$filter.ceiling" taskset -c "$SERVER_CPU" "$BIN/examples/bench_listing" ceiling \
            "$url" "$filter" "$SECONDS_PER_RUN" "$CONNECTIONS" "$pool"
        local file="$WORK/$name-$filter.ceiling"
        printf -v "${name}_${filter}_CEILING" %s \
            "$(result_field "$file" per_sec) / $(result_field "$file" p50_ms) / $(result_field "$file" p99_ms) (pg $PG_CPU%, others $OTHERS%)"
    done
}

backend SQLITE "sqlite://$WORK/listing.db" 1
psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)"
psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $PG_DB"
CLEANUPS+=("psql '$PG_ADMIN_URL' -qc 'DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)'")
backend POSTGRES "$PG_URL" 10

echo
echo "== summary: requests/s / p50 ms / p99 ms, limit=100, wrk -c$CONNECTIONS for ${SECONDS_PER_RUN}s"
echo "seeded $SEEDED: SQLite in ${SQLITE_SEED_S}s, PostgreSQL in ${POSTGRES_SEED_S}s"
echo
echo "| filter | rows | SQLite: server | SQLite: ceiling | PostgreSQL: server | PostgreSQL: ceiling |"
echo "| --- | --- | --- | --- | --- | --- |"
for filter in "${FILTERS[@]}"; do
    row() { eval echo "\$${1}_${filter}${2}"; }
    echo "| $filter | $(row SQLITE _ROWS) | $(row SQLITE "") | $(row SQLITE _CEILING) | $(row POSTGRES "") | $(row POSTGRES _CEILING) |"
done
