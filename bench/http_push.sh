#!/usr/bin/env bash
# http_push.sh: sustained Sensor Logger HTTP Push into `smq serve-broker --http`. See
# bench/README.md.
#
#   SECS=10 CLIENTS=8 SMQ=target/release/smq bench/http_push.sh
#
# wrk (CLIENTS keep-alive connections, 2 threads) POSTs the three Sensor Logger fixtures in
# turn to the WebSocket port for SECS seconds; an `smq sub` on the MQTT port prints one line per
# message it receives. Reported: acknowledged pushes per second (HTTP 200s), what the subscriber
# received, and the lost count: acknowledged pushes the subscriber never saw. The subscriber may
# also get up to CLIENTS pushes that were in flight when wrk stopped (published, never
# acknowledged to wrk): those are shown, not counted as loss. No mosquitto counterpart: Mosquitto
# has no HTTP ingest. Target: >= 5,000 pushes/s with nothing lost.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

SECS=${SECS:-10}
CLIENTS=${CLIENTS:-8}
REPS=${REPS:-3}
SMQ=${SMQ:-target/release/smq}
DRAIN_IDLE=${DRAIN_IDLE:-3}
READY_TIMEOUT=${READY_TIMEOUT:-10}
TARGET=${TARGET:-5000}

for var in SECS CLIENTS REPS DRAIN_IDLE READY_TIMEOUT TARGET; do
    [[ ${!var} =~ ^[1-9][0-9]*$ ]] || bench_die "$var must be a positive integer, got '${!var}'"
done

bench_init
[[ -x $SMQ ]] || bench_die "$SMQ is not an executable; run cargo build --release or set SMQ"
command -v wrk >/dev/null || bench_die "wrk not found (apt-get install -y wrk)"

# The fixtures in turn, one per request; wrk.format builds each request once per call.
cat >"$BENCH_TMP/post.lua" <<'EOF'
local bodies = {}
for _, name in ipairs({"sensorlogger-android-mixed.json", "sensorlogger-ios-motion.json",
                       "sensorlogger-study.json"}) do
    local f = assert(io.open("tests/fixtures/" .. name, "rb"))
    bodies[#bodies + 1] = f:read("*a")
    f:close()
end
local requests, i = {}, 0
for n, body in ipairs(bodies) do
    requests[n] = wrk.format("POST", "/data", {["Content-Type"] = "application/json"}, body)
end
request = function()
    i = i % #requests + 1
    return requests[i]
end
EOF

# One measured run: prints "acked received secs non2xx".
run_once() {
    local log=$BENCH_TMP/broker.log sub_out=$BENCH_TMP/sub.out sub_err=$BENCH_TMP/sub.err
    local wrk_out=$BENCH_TMP/wrk.out bpid spid mqtt ws id received last same
    : >"$log"
    "$SMQ" serve-broker --listen mqtt://127.0.0.1:0 --listen ws://127.0.0.1:0 --http \
        --max-queued 10000000 --max-queued-bytes 0 --sys-interval 0 2>"$log" &
    bpid=$!
    bench_track "$bpid"
    bench_wait_for "$log" '^smq: listening on ws://' "$READY_TIMEOUT" "$bpid" ||
        bench_die "serve-broker did not start: $(cat "$log")"
    mqtt=$(grep -oE 'mqtt://127\.0\.0\.1:[0-9]+' "$log" | head -n1 | cut -d: -f3)
    ws=$(grep -oE 'ws://127\.0\.0\.1:[0-9]+' "$log" | head -n1 | cut -d: -f3)

    id=bench-http-sub-$$
    : >"$sub_err"
    "$SMQ" sub -h 127.0.0.1 -p "$mqtt" -i "$id" -d -t sensor-logger -F . >"$sub_out" 2>"$sub_err" &
    spid=$!
    bench_track "$spid"
    bench_wait_for "$sub_err" "Client $id received SUBACK" "$READY_TIMEOUT" "$spid" ||
        bench_die "smq sub did not subscribe: $(cat "$sub_err")"

    wrk -t 2 -c "$CLIENTS" -d "${SECS}s" -s "$BENCH_TMP/post.lua" "http://127.0.0.1:$ws/data" >"$wrk_out"
    # Drained when the count stops growing for DRAIN_IDLE seconds.
    last=-1 same=0
    while ((same < DRAIN_IDLE * 10)); do
        received=$(wc -l <"$sub_out")
        if ((received == last)); then same=$((same + 1)); else same=0 last=$received; fi
        sleep 0.1
    done
    bench_stop "$spid"
    bench_stop "$bpid"
    awk -v received="$received" '
        / requests in / { acked = $1; secs = $4; sub(/s,?$/, "", secs) }
        /Non-2xx or 3xx responses:/ { bad = $NF }
        END { printf "%d %d %s %d\n", acked - bad, received, secs, bad }' "$wrk_out"
}

printf '%s\n' "HTTP Push: $CLIENTS keep-alive clients (wrk), Sensor Logger fixtures, ${SECS}s per run, $REPS runs"
printf '%-4s %12s %12s %10s %8s %8s\n' run "pushes/s" acknowledged received lost non-200
results=()
for ((rep = 1; rep <= REPS; rep++)); do
    # Not in a subshell: the EXIT trap must see (and stop) what run_once starts.
    run_once >"$BENCH_TMP/result"
    read -r acked received secs bad <"$BENCH_TMP/result"
    rate=$(awk -v a="$acked" -v s="$secs" 'BEGIN { printf "%.0f", a / s }')
    lost=$((acked > received ? acked - received : 0))
    printf '%-4s %12s %12s %10s %8s %8s\n' "$rep" "$rate" "$acked" "$received" "$lost" "$bad"
    bench_log "http_push: run $rep: $rate pushes/s, $acked acknowledged, $received received"
    results+=("$rate $lost $bad")
done
median=$(printf '%s\n' "${results[@]}" | awk '{ print $1 }' | bench_median)
lost_all=$(printf '%s\n' "${results[@]}" | awk '{ n += $2 + $3 } END { print n + 0 }')
verdict=$(awk -v m="$median" -v t="$TARGET" -v l="$lost_all" 'BEGIN { print (m >= t && l == 0) ? "met" : "NOT met" }')
printf 'median %s pushes/s, %s lost or refused in all runs; target >= %s pushes/s with none lost: %s\n' \
    "$median" "$lost_all" "$TARGET" "$verdict"
