#!/usr/bin/env bash
# latency.sh: `smq bench latency` against `smq serve-broker` and Mosquitto in one run, the same
# load for both: PUBS publishers at RATE msg/s each, SUBS subscribers, SECS seconds, QoS 0 and 1.
# Latency is end to end, from each message's scheduled send time (coordinated omission
# corrected), recorded by smq bench in an HDR histogram. Prints p50/p99/p99.9/max per broker and
# the serve-broker/mosquitto ratios.
#
#   bench/latency.sh                          # defaults below
#   RATE=5000 PUBS=4 SUBS=4 bench/latency.sh  # heavier
set -euo pipefail
. "$(dirname "$0")/lib.sh"

REPS=${REPS:-3}
PUBS=${PUBS:-1}
SUBS=${SUBS:-1}
RATE=${RATE:-2000}
SECS=${SECS:-10}
SIZE=${SIZE:-100}
QOS_LIST=${QOS_LIST:-0 1}
SMQ=${SMQ:-target/release/smq}
READY_TIMEOUT=15

bench_init
[[ -x $SMQ ]] || bench_die "$SMQ not found: cargo build --release"
command -v python3 >/dev/null || bench_die "python3 not found"
SMQ_LOG=$BENCH_TMP/serve-broker.log

start_serve_broker() {
    local pid start line
    : >"$SMQ_LOG"
    "$SMQ" serve-broker --listen mqtt://127.0.0.1:0 --sys-interval 0 >>"$SMQ_LOG" 2>&1 </dev/null &
    pid=$!
    bench_track "$pid"
    start=$(bench_now_us)
    until line=$(grep -Eo '^smq: listening on mqtt://127\.0\.0\.1:[0-9]+$' "$SMQ_LOG"); do
        kill -0 "$pid" 2>/dev/null || bench_die "serve-broker exited: $(head -c 2000 "$SMQ_LOG")"
        (($(bench_now_us) - start < READY_TIMEOUT * 1000000)) || bench_die "serve-broker not listening"
        sleep 0.02
    done
    SB_PID=$pid SB_PORT=${line##*:}
}

bench_start_mosquitto "sys_interval 0"
start_serve_broker
RESULTS=$BENCH_TMP/results.tsv
: >"$RESULTS"

for qos in $QOS_LIST; do
    for ((rep = 1; rep <= REPS; rep++)); do
        # Alternate which broker goes first, so drift favours neither.
        order=(smq mosquitto)
        ((rep % 2)) || order=(mosquitto smq)
        for b in "${order[@]}"; do
            port=$SB_PORT
            [[ $b == mosquitto ]] && port=$MOSQ_PORT
            load=$(awk '{ print $1 }' /proc/loadavg)
            out=$BENCH_TMP/$b-$qos-$rep.json
            rc=0
            timeout -k 5 $((SECS + 60)) "$SMQ" bench latency -h 127.0.0.1 -p "$port" -q "$qos" \
                -c "$PUBS" --subscribers "$SUBS" --rate "$RATE" --duration "$SECS" -s "$SIZE" \
                -t "latency/$b/$qos/$rep/%i" --json --quiet >"$out" || rc=$?
            python3 - "$out" "$b" "$qos" "$rep" "$load" "$rc" >>"$RESULTS" <<'EOF'
import json, sys
path, broker, qos, rep, load, rc = sys.argv[1:]
try:
    d = json.load(open(path))
    l, m = d["latency_us"] or {}, d["messages"]
    print("\t".join(map(str, [broker, qos, rep, l.get("p50", 0), l.get("p99", 0), l.get("p99_9", 0),
        l.get("max", 0), m["received"], m["expected"], m["lost"], load, rc])))
except (OSError, ValueError, KeyError):
    print("\t".join([broker, qos, rep, "0", "0", "0", "0", "0", "0", "0", load, rc]))
EOF
            bench_log "latency qos $qos $b rep $rep: $(tail -n 1 "$RESULTS" | cut -f4-7 | tr '\t' '/') µs p50/p99/p99.9/max, exit $rc, load $load"
        done
    done
done

echo "latency: smq bench latency, $PUBS publisher(s) x $RATE msg/s -> $SUBS subscriber(s), $SECS s, $SIZE-byte payloads, $REPS reps, $(nproc) cores"
echo "brokers: smq serve-broker --sys-interval 0; $("$MOSQUITTO" -h 2>/dev/null | head -n 1 | awk '{ print $1, $3 }') (sys_interval 0)"
python3 - "$RESULTS" <<'EOF'
import sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault((r[1], r[0]), []).append(r)
def med(rs, i):
    return statistics.median(float(r[i]) for r in rs)
print("%-4s %-13s %10s %10s %10s %10s %18s %6s %-9s %s" % ("qos", "broker", "p50 µs", "p99 µs", "p99.9 µs", "max µs",
      "received/expected", "lost", "loadavg1", "exits"))
for qos in sorted({k[0] for k in by}):
    for b in ("smq", "mosquitto"):
        rs = by.get((qos, b), [])
        if not rs:
            continue
        name = "serve-broker" if b == "smq" else "mosquitto"
        print("%-4s %-13s %10.1f %10.1f %10.1f %10.1f %18s %6d %-9s %s" % (qos, name, med(rs, 3), med(rs, 4), med(rs, 5),
              med(rs, 6), "%d/%d" % (sum(int(r[7]) for r in rs), sum(int(r[8]) for r in rs)), sum(int(r[9]) for r in rs),
              "%s-%s" % (min(rs, key=lambda r: float(r[10]))[10], max(rs, key=lambda r: float(r[10]))[10]), ",".join(r[11] for r in rs)))
print()
print("ratios serve-broker/mosquitto (medians; paired by rep: min-max); < 1 means serve-broker is faster")
print("%-4s %-22s %-22s %-22s" % ("qos", "p50", "p99", "p99.9"))
for qos in sorted({k[0] for k in by}):
    s, m = by.get((qos, "smq"), []), by.get((qos, "mosquitto"), [])
    if not s or not m:
        continue
    cells = []
    for i in (3, 4, 5):
        pairs = [float(a[i]) / float(b[i]) for a in s for b in m if a[2] == b[2] and float(b[i]) > 0]
        ratio = med(s, i) / med(m, i) if med(m, i) > 0 else float("nan")
        cells.append("%.2f (%.2f-%.2f)" % (ratio, min(pairs), max(pairs)) if pairs else "%.2f" % ratio)
    print("%-4s %-22s %-22s %-22s" % (qos, *cells))
EOF
