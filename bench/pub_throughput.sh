#!/usr/bin/env bash
# pub_throughput.sh: `smq pub -l` vs `mosquitto_pub -l`, N lines of 100 bytes at QoS 0, 1 and 2,
# to the same local Mosquitto broker in the same run. See bench/README.md.
#
#   N=200000 REPS=3 QOS_LIST="0 1 2" SMQ=target/release/smq bench/pub_throughput.sh
#
# For each QoS and repetition (smq and mosquitto_pub interleaved, the order flipped every
# repetition): start `mosquitto_sub -d -C N` on a fresh topic, wait for its SUBACK, then run the
# publisher under GNU time with stdin redirected from the input file. Wall time is the
# publisher's own (start to exit); peak RSS is time -v's "Maximum resident set size". The
# subscriber then drains; it stops on the N-th message or after DRAIN_IDLE seconds without a new
# one, and every received payload is checked against the input. Progress goes to stderr; the
# table goes to stdout.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

N=${N:-200000}
REPS=${REPS:-3}
QOS_LIST=${QOS_LIST:-0 1 2}
SMQ=${SMQ:-target/release/smq}
SMQ_ARGS=${SMQ_ARGS:-}           # extra flags for smq pub only, e.g. "-M 100"
MOSQ_ARGS=${MOSQ_ARGS:-}         # extra flags for mosquitto_pub only
PUB_TIMEOUT=${PUB_TIMEOUT:-300}  # seconds before a publisher is killed (recorded as exit 124)
DRAIN_IDLE=${DRAIN_IDLE:-5}      # seconds without a new message before the count is final
SUB_READY_TIMEOUT=${SUB_READY_TIMEOUT:-10}

for var in N REPS PUB_TIMEOUT DRAIN_IDLE SUB_READY_TIMEOUT; do
    [[ ${!var} =~ ^[1-9][0-9]*$ ]] || bench_die "$var must be a positive integer, got '${!var}'"
done
for qos in $QOS_LIST; do
    [[ $qos == [012] ]] || bench_die "QOS_LIST may hold only 0, 1 and 2, got '$qos'"
done
((N <= 999999999)) || bench_die "N must be at most 999999999"

bench_init # cd to the repo root: a relative SMQ is relative to it
bench_require_gnu_time
[[ -x $SMQ ]] || bench_die "$SMQ is not an executable; run cargo build --release or set SMQ"
command -v "$MOSQUITTO_PUB" >/dev/null || bench_die "$MOSQUITTO_PUB not found (apt-get install -y mosquitto-clients)"
command -v "$MOSQUITTO_SUB" >/dev/null || bench_die "$MOSQUITTO_SUB not found (apt-get install -y mosquitto-clients)"
command -v stdbuf >/dev/null || bench_die "stdbuf not found (coreutils)"

# N distinct lines of 99 bytes plus "\n": "m000000001 xxx…". Zero-padded, so the file is already
# sorted in the C locale, which the delivery check (comm) relies on.
INPUT=$BENCH_TMP/lines.txt
awk -v n="$N" 'BEGIN { pad = sprintf("%88s", ""); gsub(/ /, "x", pad)
                       for (i = 1; i <= n; i++) printf "m%09d %s\n", i, pad }' >"$INPUT"

# shellcheck disable=SC2119  # no extra broker config
bench_start_mosquitto
RESULTS=$BENCH_TMP/results.tsv
: >"$RESULTS"

# run_one QOS TOOL REP: one measured publish; appends a row to $RESULTS.
run_one() {
    local qos=$1 tool=$2 rep=$3
    local topic="smq-bench/$$/q$qos/$tool/$rep"
    local subout=$BENCH_TMP/sub.out puberr=$BENCH_TMP/pub.err timef=$BENCH_TMP/time.txt
    local spid ppid rc start end size last_size idle_since rss received delivered
    local -a cmd extra

    # Counting subscriber. mosquitto_sub 2.0.11 writes its -d lines (SUBACK included) to stdout,
    # which is block-buffered into a file; stdbuf -oL makes the SUBACK line visible at once.
    # Payload lines are told apart from debug lines by their "m<9 digits> " prefix.
    stdbuf -oL "$MOSQUITTO_SUB" -d -h 127.0.0.1 -p "$MOSQ_PORT" -t "$topic" -q "$qos" -C "$N" \
        >"$subout" 2>&1 </dev/null &
    spid=$!
    bench_track "$spid"
    bench_wait_for "$subout" 'received SUBACK' "$SUB_READY_TIMEOUT" "$spid" ||
        bench_die "subscriber not ready after ${SUB_READY_TIMEOUT}s: $(head -c 2000 "$subout")"

    case $tool in
    smq)
        cmd=("$SMQ" pub)
        read -ra extra <<<"$SMQ_ARGS"
        ;;
    mosquitto_pub)
        cmd=("$MOSQUITTO_PUB")
        read -ra extra <<<"$MOSQ_ARGS"
        ;;
    esac
    cmd+=(-h 127.0.0.1 -p "$MOSQ_PORT" -t "$topic" -l -q "$qos" "${extra[@]}")

    rm -f "$timef"
    start=$(bench_now_us)
    timeout -k 5 "$PUB_TIMEOUT" "$GNU_TIME" -v -o "$timef" "${cmd[@]}" <"$INPUT" >/dev/null 2>"$puberr" &
    ppid=$!
    bench_track "$ppid"
    rc=0
    wait "$ppid" || rc=$?
    end=$(bench_now_us)
    bench_untrack "$ppid"
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$timef" 2>/dev/null || true)

    # Drain: the subscriber exits by itself on the N-th message; otherwise stop it once its
    # output has not grown for DRAIN_IDLE seconds (a lost message must not hang the bench).
    last_size=-1
    idle_since=$(bench_now_us)
    while kill -0 "$spid" 2>/dev/null; do
        size=$(stat -c %s "$subout")
        if ((size != last_size)); then
            last_size=$size
            idle_since=$(bench_now_us)
        elif (($(bench_now_us) - idle_since >= DRAIN_IDLE * 1000000)); then
            break
        fi
        sleep 0.1
    done
    bench_stop "$spid"

    # received: payload lines, duplicates included; delivered: distinct lines identical to a sent one.
    received=$({ grep -E '^m[0-9]{9} ' "$subout" || true; } | wc -l)
    delivered=$({ grep -E '^m[0-9]{9} ' "$subout" || true; } | sort -u | comm -12 - "$INPUT" | wc -l)
    rm -f "$subout"

    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$qos" "$tool" "$rep" "$((end - start))" "${rss:-0}" "$delivered" "$received" "$N" "$rc" >>"$RESULTS"
    bench_log "$(printf 'qos %s %-13s rep %s: %8.3f s  %7s KiB  exit %-3s delivered %s/%s' \
        "$qos" "$tool" "$rep" "$(awk -v us=$((end - start)) 'BEGIN { printf "%.3f", us / 1e6 }')" \
        "${rss:-?}" "$rc" "$delivered" "$N")"
    if ((rc != 0)) && [[ -s $puberr ]]; then
        bench_log "  $tool stderr: $(grep -v '^Command exited with non-zero status' "$puberr" | head -n 3)"
    fi
}

bench_log "pub_throughput: N=$N lines of 100 bytes, REPS=$REPS, QoS $QOS_LIST, broker 127.0.0.1:$MOSQ_PORT"
for qos in $QOS_LIST; do
    for ((rep = 1; rep <= REPS; rep++)); do
        if ((rep % 2)); then order=(smq mosquitto_pub); else order=(mosquitto_pub smq); fi
        for tool in "${order[@]}"; do
            run_one "$qos" "$tool" "$rep"
        done
    done
done

# Report. Rows: qos tool rep wall_us rss_kib delivered received sent exit.
# msgs/s is delivered messages per second of publisher wall time (a tool that quits early
# with messages lost is not rewarded for quitting). Ratios: smq / mosquitto_pub of the median
# rates, with the min-max of the per-repetition (paired) ratios; RSS ratio uses peak RSS.
echo "pub_throughput: $N lines x 100 bytes, $REPS reps, $(nproc) cores, $("$MOSQUITTO" -h 2>/dev/null | head -n 1 | awk '{ print $1, $3 }')"
echo "smq: $SMQ${SMQ_ARGS:+ $SMQ_ARGS}   mosquitto_pub: $(command -v "$MOSQUITTO_PUB")${MOSQ_ARGS:+ $MOSQ_ARGS}"
echo
awk -F'\t' -v reps="$REPS" -v qoslist="$QOS_LIST" '
function median(a, n,    i, j, t, s) {
    for (i = 1; i <= n; i++) s[i] = a[i]
    for (i = 2; i <= n; i++) { t = s[i]; for (j = i - 1; j >= 1 && s[j] > t; j--) s[j + 1] = s[j]; s[j + 1] = t }
    return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
}
{
    k = $1 SUBSEP $2; n[k]++
    wall[k, n[k]] = $4 / 1e6
    rate[k, n[k]] = $4 > 0 ? $6 / ($4 / 1e6) : 0
    prate[$1, $2, $3] = rate[k, n[k]]
    if ($5 > rss[k]) rss[k] = $5
    if (!(k in dmin) || $6 < dmin[k]) dmin[k] = $6
    if (!(k in dmax) || $6 > dmax[k]) dmax[k] = $6
    if ($7 - $6 > dups[k]) dups[k] = $7 - $6
    sent[k] = $8
    if (!((k, $9) in seen)) { seen[k, $9] = 1; exits[k] = nexit[k]++ ? exits[k] "," $9 : $9 }
}
END {
    nq = split(qoslist, qs, " "); ntools = split("smq mosquitto_pub", tools, " ")
    printf "%-4s %-14s %-26s %10s %13s %-22s %s\n", "qos", "tool", "wall s: median (min-max)", "msgs/s", "peak RSS KiB", "delivered/sent", "exit"
    for (qi = 1; qi <= nq; qi++) for (ti = 1; ti <= ntools; ti++) {
        q = qs[qi]; t = tools[ti]; k = q SUBSEP t
        if (!(k in n)) continue
        lo = hi = wall[k, 1]
        for (i = 1; i <= n[k]; i++) { w[i] = wall[k, i]; r[i] = rate[k, i]; if (w[i] < lo) lo = w[i]; if (w[i] > hi) hi = w[i] }
        mw[k] = median(w, n[k]); mr[k] = median(r, n[k])
        d = dmin[k] == dmax[k] ? dmin[k] : dmin[k] ".." dmax[k]
        printf "%-4s %-14s %-26s %10.0f %13s %-22s %s\n", q, t, sprintf("%.3f (%.3f-%.3f)", mw[k], lo, hi), mr[k], (rss[k] > 0 ? rss[k] : "n/a"), d "/" sent[k], exits[k]
    }
    print ""
    print "ratios smq/mosquitto_pub: rate > 1 means smq is faster; RSS < 1 means smq uses less memory"
    printf "%-4s %-30s %-14s %s\n", "qos", "rate: median (paired min-max)", "peak RSS", "notes"
    for (qi = 1; qi <= nq; qi++) {
        q = qs[qi]; ks = q SUBSEP "smq"; km = q SUBSEP "mosquitto_pub"
        if (!(ks in n) || !(km in n)) continue
        lo = ""; hi = ""
        for (rep = 1; rep <= reps; rep++) {
            if (!((q, "mosquitto_pub", rep) in prate) || prate[q, "mosquitto_pub", rep] <= 0) continue
            pr = prate[q, "smq", rep] / prate[q, "mosquitto_pub", rep]
            if (lo == "" || pr < lo) lo = pr; if (hi == "" || pr > hi) hi = pr
        }
        rr = mr[km] > 0 ? sprintf("%.2f", mr[ks] / mr[km]) : "inf"
        spread = lo == "" ? "" : sprintf(" (%.2f-%.2f)", lo, hi)
        rs = rss[km] > 0 && rss[ks] > 0 ? sprintf("%.2f", rss[ks] / rss[km]) : "n/a"
        notes = ""
        for (ti = 1; ti <= ntools; ti++) {
            t = tools[ti]; k = q SUBSEP t
            if (dmin[k] < sent[k]) notes = notes sprintf("%s%s DATA LOSS: %d of %d not delivered (exit %s)", notes == "" ? "" : "; ", t, sent[k] - dmin[k], sent[k], exits[k])
            else if (exits[k] != "0") notes = notes sprintf("%s%s exit %s", notes == "" ? "" : "; ", t, exits[k])
            if (dups[k] > 0) notes = notes sprintf("%s%s %d duplicates", notes == "" ? "" : "; ", t, dups[k])
        }
        line = sprintf("%-4s %-30s %-14s %s", q, rr spread, rs, notes)
        sub(/ +$/, "", line)
        print line
    }
}' "$RESULTS"
