#!/usr/bin/env bash
# Hostile-day figures, against the sandbox (debug build; none of these is a
# speed figure):
#  1. how many unfinished flows a browser (curl's cookie jar) can leave
#     before its next /callback is locked out (431), with and without a long
#     return_to, the flow cookies' total size, and whether a fresh flow still
#     finishes after 300 unfinished ones;
#  2. what a client receives that writes a whole 10 MiB body before reading,
#     to POST /connect-sessions and POST /connect/api-key.
# Usage: bash bench/hostile.sh   (FLOWS=300 by default)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FLOWS=${FLOWS:-300}
APP=http://app.example
cargo build --quiet --bin emailoctopus-connect
WORK=$(mktemp -d /tmp/eoc-hostile.XXXXXX)
target/debug/emailoctopus-connect --sandbox --listen-addr=127.0.0.1:0 \
    --return-to-origins=$APP >"$WORK/out" 2>"$WORK/err" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 500); do
    ADDR=$(sed -n 's#^listening on http://##p' "$WORK/out")
    # The sandbox makes its own admin token and prints it.
    ADMIN=$(sed -n 's#^sandbox: admin token for this run: ##p' "$WORK/out")
    [ -n "$ADDR" ] && [ -n "$ADMIN" ] && break
    sleep 0.02
done
URL=http://$ADDR
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet -- src || echo -dirty), sandbox at $URL"

# new_session [RETURN_TO]: a connect session's token.
new_session() {
    local body='{"connection_id":"default"}'
    [ -n "${1:-}" ] && body="{\"connection_id\":\"default\",\"return_to\":\"$1\"}"
    curl -s -H "authorization: Bearer $ADMIN" -H 'content-type: application/json' \
        -d "$body" "$URL/connect-sessions" | sed 's/.*"token":"\([^"]*\)".*/\1/'
}
# cookie_header JAR: the Cookie header a browser sends to /callback from JAR
# (built here: curl itself stops adding cookies past 8 KiB).
cookie_header() {
    awk -F'\t' 'index("/callback", $3) == 1 && NF >= 7 { printf "%s%s=%s", sep, $6, $7; sep = "; " }' "$1"
}
# finish_fresh_flow JAR: starts one more flow in JAR, approves it at the
# sandbox, and prints the callback's status.
finish_fresh_flow() {
    local jar=$1 authorize consent callback
    authorize=$(curl -s -o /dev/null -w '%{redirect_url}' -b "$jar" -c "$jar" \
        "$URL/auth?session=$(new_session)")
    consent=$(curl -s -b "$jar" "$authorize" | sed -n 's/.*name="consent" value="\([^"]*\)".*/\1/p')
    callback=$(curl -s -o /dev/null -w '%{redirect_url}' -b "$jar" -c "$jar" \
        -d "consent=$consent&decision=approve" "$URL/sandbox/oauth/authorize")
    curl -s -o /dev/null -w '%{http_code}' -b "$jar" -c "$jar" "$callback"
}

# leave_flows LABEL RETURN_TO: starts FLOWS flows without finishing one.
leave_flows() {
    local label=$1 return_to=$2 jar=$WORK/jar-$1 locked=none k status
    : >"$jar"
    for k in $(seq "$FLOWS"); do
        curl -s -o /dev/null -b "$jar" -c "$jar" "$URL/auth?session=$(new_session "$return_to")"
        if [ "$locked" = none ] && [ $((k % 5)) = 0 ]; then
            status=$(curl -s -o /dev/null -w '%{http_code}' -H "cookie: $(cookie_header "$jar")" \
                "$URL/callback?state=probe")
            [ "$status" = 431 ] && locked="$k (probed every 5)"
        fi
    done
    echo "$label: $FLOWS unfinished flows; /callback first 431 after: $locked;" \
        "Cookie header to /callback then: $(cookie_header "$jar" | wc -c) bytes;" \
        "a fresh flow then finishes with: $(finish_fresh_flow "$jar") (curl)"
}
leave_flows short-return_to "$APP/back"
leave_flows 2KiB-return_to "$APP/back?pad=$(head -c 2020 /dev/zero | tr '\0' x)"

# write_then_read PATH CONTENT_TYPE: the raw-socket client.
write_then_read() {
    python3 - "$ADDR" "$1" "$2" "$ADMIN" <<'PY'
import socket, sys
addr, path, ctype, admin = sys.argv[1:]
host, port = addr.rsplit(":", 1)
body = b"x" * (10 * 1024 * 1024)
s = socket.create_connection((host, int(port)))
head = (f"POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {admin}\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
sent = 0
try:
    s.sendall(head)
    view = memoryview(body)
    while sent < len(body):
        sent += s.send(view[sent:sent + 65536])
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
    line = answer.split(b"\r\n", 1)[0].decode() if answer else "(nothing)"
    print(f"{path}: wrote all {sent} body bytes, then read: {line}")
except OSError as error:
    print(f"{path}: {type(error).__name__} after {sent} of {len(body)} body bytes")
PY
}
write_then_read /connect-sessions application/json
write_then_read /connect/api-key application/x-www-form-urlencoded
