#!/usr/bin/env bash
# sub_throughput.sh: `smq sub -C N` vs `mosquitto_sub -C N`, receiving N messages of 100 bytes
# with -v and with -F %j output (to /dev/null), from the same local Mosquitto broker in the same
# run. See bench/README.md.
#
#   N=200000 REPS=3 SMQ=target/release/smq bench/sub_throughput.sh
#
# Two variants, for each output mode and repetition (the two tools interleaved, the order flipped
# every repetition), each run on a fresh broker:
#   live     the subscriber is connected and subscribed (readiness: the broker's `log_type
#            subscribe` line for its client id), then `smq pub -l` floods N lines at QoS $QOS.
#            Timed from the start of the flood to the subscriber's exit.
#   backlog  a persistent session (-c -i ID -q BACKLOG_QOS) is created and left; N lines are
#            published at QoS BACKLOG_QOS and queued by the broker; then the subscriber reconnects
#            with the same id and drains them. Timed from the subscriber's start to its exit; the
#            publisher is not running, so this isolates the receive side better.
# The subscriber runs under GNU time (CPU, peak RSS) and `timeout`; it exits by itself only after
# the N-th message, so exit 0 means all N arrived. Progress goes to stderr; tables to stdout.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

N=${N:-200000}
REPS=${REPS:-3}
QOS=${QOS:-0}                       # live variant: subscription and flood QoS
BACKLOG_QOS=${BACKLOG_QOS:-1}       # backlog variant: session and publish QoS (1 or 2)
VARIANTS=${VARIANTS:-live backlog}
MODES=${MODES:-v j}                 # v: -v; j: -F %j
SMQ=${SMQ:-target/release/smq}
SMQ_ARGS=${SMQ_ARGS:-}              # extra flags for smq sub only
MOSQ_ARGS=${MOSQ_ARGS:-}            # extra flags for mosquitto_sub only
BROKER_INFLIGHT=${BROKER_INFLIGHT:-1000} # mosquitto max_inflight_messages (QoS 1/2 towards subscribers)
SUB_TIMEOUT=${SUB_TIMEOUT:-120}     # seconds before a subscriber is killed (recorded as exit 124)
PUB_TIMEOUT=${PUB_TIMEOUT:-300}
SUB_READY_TIMEOUT=${SUB_READY_TIMEOUT:-10}

for var in N REPS SUB_TIMEOUT PUB_TIMEOUT SUB_READY_TIMEOUT BROKER_INFLIGHT; do
    [[ ${!var} =~ ^[1-9][0-9]*$ ]] || bench_die "$var must be a positive integer, got '${!var}'"
done
((BROKER_INFLIGHT < 65535)) || bench_die "BROKER_INFLIGHT must stay below 65535 (MQTT packet ids)"
[[ $QOS == [012] ]] || bench_die "QOS must be 0, 1 or 2, got '$QOS'"
[[ $BACKLOG_QOS == [12] ]] || bench_die "BACKLOG_QOS must be 1 or 2 (QoS 0 isn't queued), got '$BACKLOG_QOS'"
for v in $VARIANTS; do [[ $v == live || $v == backlog ]] || bench_die "VARIANTS may hold live and backlog, got '$v'"; done
for m in $MODES; do [[ $m == v || $m == j ]] || bench_die "MODES may hold v and j, got '$m'"; done
((N <= 999999999)) || bench_die "N must be at most 999999999"

bench_init # cd to the repo root: a relative SMQ is relative to it
bench_require_gnu_time
[[ -x $SMQ ]] || bench_die "$SMQ is not an executable; run cargo build --release or set SMQ"
command -v "$MOSQUITTO_SUB" >/dev/null || bench_die "$MOSQUITTO_SUB not found (apt-get install -y mosquitto-clients)"

# N distinct lines of 99 bytes plus "\n": "m000000001 xxx…".
INPUT=$BENCH_TMP/lines.txt
awk -v n="$N" 'BEGIN { pad = sprintf("%88s", ""); gsub(/ /, "x", pad)
                       for (i = 1; i <= n; i++) printf "m%09d %s\n", i, pad }' >"$INPUT"

RESULTS=$BENCH_TMP/results.tsv
: >"$RESULTS"
TOPIC=smq-bench/sub-throughput # same for both tools; every run has its own broker
SUB_ID=smq-bench-sub           # same length for both tools

mode_args() {
    case $1 in
    v) MODE_ARGS=(-v) ;;
    j) MODE_ARGS=(-F %j) ;;
    esac
}

load1() { awk '{ print $1 }' /proc/loadavg; }

# publish QOS: `smq pub -l` of the whole input file to $TOPIC, in the background; sets PUB_PID.
publish() {
    timeout -k 5 "$PUB_TIMEOUT" "$SMQ" pub -h 127.0.0.1 -p "$MOSQ_PORT" -t "$TOPIC" -l -q "$1" \
        <"$INPUT" >/dev/null 2>"$BENCH_TMP/pub.err" &
    PUB_PID=$!
    bench_track "$PUB_PID"
}

# finish_publish: wait for the flood; dies if it failed (the measurement would be meaningless).
finish_publish() {
    local rc=0
    wait "$PUB_PID" || rc=$?
    bench_untrack "$PUB_PID"
    ((rc == 0)) || bench_die "flood publisher exited $rc: $(head -c 1000 "$BENCH_TMP/pub.err")"
}

# run_one VARIANT MODE TOOL REP: one measured receive; appends a row to $RESULTS.
run_one() {
    local variant=$1 mode=$2 tool=$3 rep=$4
    local timef=$BENCH_TMP/time.txt suberr=$BENCH_TMP/sub.err
    local sub_qos spid rc start end load user sys rss prep_rc=0
    local -a cmd extra session=()

    mode_args "$mode"
    case $tool in
    smq)
        cmd=("$SMQ" sub)
        read -ra extra <<<"$SMQ_ARGS"
        ;;
    mosquitto_sub)
        cmd=("$MOSQUITTO_SUB")
        read -ra extra <<<"$MOSQ_ARGS"
        ;;
    esac
    if [[ $variant == live ]]; then sub_qos=$QOS; else sub_qos=$BACKLOG_QOS session=(-c); fi
    cmd+=(-h 127.0.0.1 -p "$MOSQ_PORT" -t "$TOPIC" -i "$SUB_ID" "${session[@]}" -q "$sub_qos" -C "$N" "${MODE_ARGS[@]}" "${extra[@]}")

    load=$(load1)
    bench_log "$(printf '%-7s %-2s %-13s rep %s: loadavg %s' "$variant" "$mode" "$tool" "$rep" "$(cut -d' ' -f1-3 /proc/loadavg)")"

    if [[ $variant == backlog ]]; then
        # Create the persistent session with mosquitto_sub for both tools (identical broker state),
        # queue the flood into it, then let the measured subscriber reconnect and drain.
        timeout -k 2 "$SUB_READY_TIMEOUT" "$MOSQUITTO_SUB" -h 127.0.0.1 -p "$MOSQ_PORT" -t "$TOPIC" \
            -i "$SUB_ID" -c -q "$sub_qos" -E >/dev/null 2>"$suberr" </dev/null || prep_rc=$?
        ((prep_rc == 0)) || bench_die "could not create the persistent session (exit $prep_rc): $(head -c 1000 "$suberr")"
        publish "$sub_qos"
        finish_publish
    fi

    rm -f "$timef"
    if [[ $variant == backlog ]]; then start=$(bench_now_us); fi
    timeout -k 5 "$SUB_TIMEOUT" "$GNU_TIME" -v -o "$timef" "${cmd[@]}" >/dev/null 2>"$suberr" </dev/null &
    spid=$!
    bench_track "$spid"

    if [[ $variant == live ]]; then
        # Readiness: mosquitto logs "<time>: <client id> <qos> <filter>" once it has processed the
        # SUBSCRIBE (log_type subscribe). Neither tool runs with -d, so stdout is only payload.
        bench_wait_for "$MOSQ_LOG" ": $SUB_ID [0-2] $TOPIC\$" "$SUB_READY_TIMEOUT" "$spid" ||
            bench_die "$tool not subscribed after ${SUB_READY_TIMEOUT}s: $(head -c 2000 "$suberr")"
        start=$(bench_now_us)
        publish "$QOS"
    fi

    rc=0
    wait "$spid" || rc=$?
    end=$(bench_now_us)
    bench_untrack "$spid"
    if [[ $variant == live ]]; then
        if ((rc == 0)); then finish_publish; else bench_stop "$PUB_PID"; fi
    fi

    user=$(awk -F': ' '/User time \(seconds\)/ { print $2 }' "$timef" 2>/dev/null || true)
    sys=$(awk -F': ' '/System time \(seconds\)/ { print $2 }' "$timef" 2>/dev/null || true)
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$timef" 2>/dev/null || true)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$variant" "$mode" "$tool" "$rep" \
        "$((end - start))" "${user:-0}" "${sys:-0}" "${rss:-0}" "$rc" "$load" >>"$RESULTS"
    bench_log "$(printf '%-7s %-2s %-13s rep %s: %8.3f s  cpu %s+%s s  %7s KiB  exit %s%s' \
        "$variant" "$mode" "$tool" "$rep" "$(awk -v us=$((end - start)) 'BEGIN { printf "%.3f", us / 1e6 }')" \
        "${user:-?}" "${sys:-?}" "${rss:-?}" "$rc" "$( ((rc == 0)) && echo "" || echo " (fewer than $N messages received or failed)")")"
    if ((rc != 0)) && [[ -s $suberr ]]; then
        bench_log "  $tool stderr: $(grep -v '^Command exited with non-zero status\|^Command terminated by signal' "$suberr" | head -n 3)"
    fi
}

bench_log "sub_throughput: N=$N x 100 bytes, REPS=$REPS, variants: $VARIANTS, modes: $MODES, live QoS $QOS, backlog QoS $BACKLOG_QOS"
for variant in $VARIANTS; do
    for mode in $MODES; do
        for ((rep = 1; rep <= REPS; rep++)); do
            if ((rep % 2)); then order=(smq mosquitto_sub); else order=(mosquitto_sub smq); fi
            for tool in "${order[@]}"; do
                # A fresh broker per run: no leftover sessions, queues or memory growth.
                bench_start_mosquitto "max_inflight_messages $BROKER_INFLIGHT"
                run_one "$variant" "$mode" "$tool" "$rep"
                bench_stop "$MOSQ_PID"
            done
        done
    done
done

# Report. Rows: variant mode tool rep wall_us user_s sys_s rss_kib exit load1.
echo "sub_throughput: $N messages x 100 bytes, $REPS reps, $(nproc) cores, $("$MOSQUITTO" -h 2>/dev/null | head -n 1 | awk '{ print $1, $3 }'), flood by $SMQ pub -l"
echo "live: subscribed at QoS $QOS, flood at QoS $QOS, timed from flood start to subscriber exit"
echo "backlog: persistent session (-c, QoS $BACKLOG_QOS) drained on reconnect, timed from subscriber start to exit; broker max_inflight_messages $BROKER_INFLIGHT"
echo "smq: $SMQ sub${SMQ_ARGS:+ $SMQ_ARGS}   mosquitto_sub: $(command -v "$MOSQUITTO_SUB")${MOSQ_ARGS:+ $MOSQ_ARGS}   output: > /dev/null"
awk -F'\t' -v reps="$REPS" -v variants="$VARIANTS" -v modes="$MODES" -v n_msgs="$N" '
function median(a, n,    i, j, t, s) {
    for (i = 1; i <= n; i++) s[i] = a[i]
    for (i = 2; i <= n; i++) { t = s[i]; for (j = i - 1; j >= 1 && s[j] > t; j--) s[j + 1] = s[j]; s[j + 1] = t }
    return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
}
{
    k = $1 SUBSEP $2 SUBSEP $3
    if ($9 != 0) { fails[k]++ }
    else {
        n[k]++
        wall[k, n[k]] = $5 / 1e6
        cpu[k, n[k]] = $6 + $7; usr[k, n[k]] = $6; sys[k, n[k]] = $7
        prate[$1, $2, $3, $4] = $5 > 0 ? n_msgs / ($5 / 1e6) : 0
        pcpu[$1, $2, $3, $4] = $6 + $7
    }
    if ($8 > rss[k]) rss[k] = $8
    if (!((k, $9) in seen)) { seen[k, $9] = 1; exits[k] = nexit[k]++ ? exits[k] "," $9 : $9 }
    if (!((k) in lmin) || $10 < lmin[k]) lmin[k] = $10
    if (!((k) in lmax) || $10 > lmax[k]) lmax[k] = $10
}
END {
    nv = split(variants, vs, " "); nm = split(modes, ms, " "); split("smq mosquitto_sub", tools, " ")
    mname["v"] = "-v"; mname["j"] = "-F %j"
    for (vi = 1; vi <= nv; vi++) for (mi = 1; mi <= nm; mi++) {
        v = vs[vi]; m = ms[mi]
        print ""
        printf "== %s, %s\n", v, mname[m]
        printf "%-14s %-24s %10s %-18s %-11s %12s %-10s %s\n", "tool", "wall s: median (min-max)", "msgs/s", "CPU s (user+sys)", "user/sys", "peak RSS KiB", "loadavg1", "exit"
        for (ti = 1; ti <= 2; ti++) {
            t = tools[ti]; k = v SUBSEP m SUBSEP t
            if (!(k in n)) { if (k in fails) printf "%-14s all %d runs failed (exit %s)\n", t, fails[k], exits[k]; continue }
            lo = hi = wall[k, 1]
            for (i = 1; i <= n[k]; i++) { w[i] = wall[k, i]; c[i] = cpu[k, i]; u[i] = usr[k, i]; s[i] = sys[k, i]; if (w[i] < lo) lo = w[i]; if (w[i] > hi) hi = w[i] }
            mw[k] = median(w, n[k]); mc[k] = median(c, n[k])
            mr[k] = mw[k] > 0 ? n_msgs / mw[k] : 0
            printf "%-14s %-24s %10.0f %-18s %-11s %12s %-10s %s\n", t, sprintf("%.3f (%.3f-%.3f)", mw[k], lo, hi), mr[k],
                sprintf("%.2f", mc[k]), sprintf("%.2f/%.2f", median(u, n[k]), median(s, n[k])), (rss[k] > 0 ? rss[k] : "n/a"),
                (lmin[k] == lmax[k] ? lmin[k] : lmin[k] "-" lmax[k]), exits[k]
        }
        ks = v SUBSEP m SUBSEP "smq"; km = v SUBSEP m SUBSEP "mosquitto_sub"
        if (!(ks in n) || !(km in n)) { print "ratios: n/a (a tool has no successful run)"; continue }
        lo = ""; hi = ""
        for (rep = 1; rep <= reps; rep++) {
            if (!((v, m, "smq", rep) in prate) || !((v, m, "mosquitto_sub", rep) in prate) || prate[v, m, "mosquitto_sub", rep] <= 0) continue
            pr = prate[v, m, "smq", rep] / prate[v, m, "mosquitto_sub", rep]
            if (lo == "" || pr < lo) lo = pr; if (hi == "" || pr > hi) hi = pr
        }
        rr = mr[ks] / mr[km]
        notes = rr >= 1.5 ? "target >= 1.5x: met" : "target >= 1.5x: NOT met"
        for (ti = 1; ti <= 2; ti++) { t = tools[ti]; k = v SUBSEP m SUBSEP t; if (k in fails) notes = notes sprintf("; %s: %d run(s) failed or timed out before %d messages (exit %s)", t, fails[k], n_msgs, exits[k]) }
        printf "smq/mosquitto_sub: rate %.2f%s   CPU %s   peak RSS %s   (%s)\n", rr, (lo == "" ? "" : sprintf(" (paired %.2f-%.2f)", lo, hi)),
            (mc[km] > 0 ? sprintf("%.2f", mc[ks] / mc[km]) : "n/a"), (rss[km] > 0 && rss[ks] > 0 ? sprintf("%.2f", rss[ks] / rss[km]) : "n/a"), notes
    }
    print ""
    print "rate > 1: smq receives faster; CPU < 1: smq uses less CPU for the same N; peak RSS < 1: smq uses less memory"
}' "$RESULTS"
