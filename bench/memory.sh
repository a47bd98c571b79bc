#!/usr/bin/env bash
# memory.sh: broker memory under the loads that used to hold it, `smq serve-broker` and Mosquitto
# side by side in the same run, each case on a fresh broker with its default limits. See
# bench/README.md.
#
#   SMQ=target/release/smq bench/memory.sh
#
# Cases (CASES), VmRSS of the broker read from /proc/PID/status: before, at the peak (sampled
# every 20 ms while the load runs) and after (settled: 2 s of readings within 1%, at most 30 s):
#   conns    CONNS (10,000) MQTT connections opened, held, closed
#   pinned   a persistent session offline, subscribed at QoS 1; a publisher sends 200 x (a 2 MB
#            QoS 0 PUBLISH nobody subscribes to, then a 4-byte QoS 1 PUBLISH for the session);
#            "after" is once the session came back and read its 200 messages
#   slow     a subscriber that never reads (QoS 0); SLOW_MSGS (1,500) 1 MB messages published to
#            it; "after" is once it disconnected
#   big      one 100 MB QoS 0 PUBLISH to one subscriber that reads it
#   connect  a CONNECT announcing 200 MB, sent at full speed until the broker closes; then one
#            trickled a byte every 0.1 s: the seconds until the broker closed each
#   http     serve-broker only (Mosquitto has no HTTP ingest): a subscriber that never reads;
#            100 gzip HTTP pushes of 16 KB that each inflate to 16 MiB of JSON (--http-max-body)
# Tables go to stdout, progress to stderr.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

SMQ=${SMQ:-target/release/smq}
CASES=${CASES:-conns pinned slow big connect http}
BROKERS=${BROKERS:-smq mosquitto}
CONNS=${CONNS:-10000}
SLOW_MSGS=${SLOW_MSGS:-1500}
READY_TIMEOUT=${READY_TIMEOUT:-10}
SMQ_ARGS=${SMQ_ARGS:-}

for var in CONNS SLOW_MSGS READY_TIMEOUT; do
    [[ ${!var} =~ ^[1-9][0-9]*$ ]] || bench_die "$var must be a positive integer, got '${!var}'"
done
for c in $CASES; do [[ $c =~ ^(conns|pinned|slow|big|connect|http)$ ]] || bench_die "unknown case '$c'"; done
for b in $BROKERS; do [[ $b == smq || $b == mosquitto ]] || bench_die "BROKERS may hold smq and mosquitto, got '$b'"; done

bench_init
[[ -x $SMQ ]] || bench_die "$SMQ is not an executable; run cargo build --release or set SMQ"
command -v python3 >/dev/null || bench_die "python3 not found"

# The load, one case per run: prints "rss BEFORE PEAK AFTER [EXTRA...]" (KiB) on its last line.
cat >"$BENCH_TMP/load.py" <<'EOF'
import gzip, resource, socket, struct, sys, threading, time

case, pid, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ws_port = int(sys.argv[4]) if len(sys.argv) > 4 else 0
want = int(sys.argv[5]) if len(sys.argv) > 5 else 0

def rss():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def settled():
    """VmRSS once 2 s of readings (every 0.5 s) agree within 1%: an allocator may give freed
    memory back a second or so later. At most 30 s."""
    seen = [rss()]
    for _ in range(60):
        time.sleep(0.5)
        seen.append(rss())
        last = seen[-5:]
        if len(last) == 5 and (max(last) - min(last)) * 100 <= max(last):
            break
    return seen[-1]

class Peak:
    """VmRSS sampled every 20 ms on a thread while the load runs."""
    def __enter__(self):
        self.peak, self.stop = rss(), False
        def run():
            while not self.stop:
                self.peak = max(self.peak, rss())
                time.sleep(0.02)
        self.t = threading.Thread(target=run, daemon=True)
        self.t.start()
        return self
    def __exit__(self, *a):
        self.stop = True
        self.t.join()
        self.peak = max(self.peak, rss())

def remaining(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)

def s(b):
    return struct.pack(">H", len(b)) + b

def connect(cid, clean=True, keepalive=0):
    body = s(b"MQTT") + bytes([4, 0x02 if clean else 0]) + struct.pack(">H", keepalive) + s(cid)
    return b"\x10" + remaining(len(body)) + body

def publish(topic, payload, qos=0, pkid=1):
    body = s(topic) + (struct.pack(">H", pkid) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + remaining(len(body)) + body

def subscribe(topic, qos, pkid=1):
    body = struct.pack(">H", pkid) + s(topic) + bytes([qos])
    return b"\x82" + remaining(len(body)) + body

def read_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("the broker closed the connection")
        buf += chunk
    return bytes(buf)

def read_packet(sock):
    head = read_exact(sock, 1)[0]
    n, mult = 0, 1
    while True:
        b = read_exact(sock, 1)[0]
        n += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    return head, read_exact(sock, n)

def client(cid, clean=True, rcvbuf=None):
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    sock.sendall(connect(cid, clean))
    head, body = read_packet(sock)
    assert head == 0x20 and body[1] == 0, "CONNACK %r" % body
    return sock

def sub(sock, topic, qos):
    sock.sendall(subscribe(topic, qos))
    head, _ = read_packet(sock)
    assert head == 0x90

def ping(sock):
    """Everything sent before is handled once the PINGRESP is back."""
    sock.sendall(b"\xc0\x00")
    while True:
        head, _ = read_packet(sock)
        if head == 0xD0:
            return

before = settled()
extra = []
if case == "conns":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want + 256), hard))
    with Peak() as p:
        held = [client(b"mem-conn-%06d" % i) for i in range(want)]
        for c in held:
            c.close()
elif case == "pinned":
    s1 = client(b"mem-pinned-sub", clean=False)
    sub(s1, b"mem/small", 1)
    s1.close()
    time.sleep(0.5)
    with Peak() as p:
        pub = client(b"mem-pinned-pub")
        big = b"x" * (2 << 20)
        for i in range(200):
            pub.sendall(publish(b"mem/big", big) + publish(b"mem/small", b"tiny", 1, i + 1))
        got = 0
        while got < 200:
            head, _ = read_packet(pub)
            got += head == 0x40
        queued = settled()
        s1 = client(b"mem-pinned-sub", clean=False)
        got = 0
        while got < 200:
            head, body = read_packet(s1)
            if head & 0xF0 == 0x30:
                got += 1
                s1.sendall(b"\x40\x02" + body[2 + struct.unpack(">H", body[:2])[0]:][:2])
        ping(s1)
        s1.sendall(b"\xe0\x00")
        s1.close()
        pub.close()
    extra = [queued]
elif case == "slow":
    s1 = client(b"mem-slow-sub", rcvbuf=4096)
    sub(s1, b"mem/slow", 0)
    with Peak() as p:
        pub = client(b"mem-slow-pub")
        msg = publish(b"mem/slow", b"x" * (1 << 20))
        for _ in range(want):
            pub.sendall(msg)
        ping(pub)
        held = settled()
        s1.close()
        pub.close()
    extra = [held]
elif case == "big":
    s1 = client(b"mem-big-sub")
    sub(s1, b"mem/big", 0)
    with Peak() as p:
        pub = client(b"mem-big-pub")
        pub.sendall(publish(b"mem/big", b"x" * (100 << 20)))
        head, body = read_packet(s1)
        assert head & 0xF0 == 0x30 and len(body) > 100 << 20
        ping(pub)
        pub.close()
        s1.close()
elif case == "connect":
    with Peak() as p:
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(b"\x10" + remaining(200 << 20))
        chunk, sent, t0 = b"\x00" * (1 << 20), 0, time.monotonic()
        try:
            while sent < 200 << 20:
                c.sendall(chunk)
                sent += len(chunk)
            c.settimeout(60)
            c.recv(1)
        except OSError:
            pass
        fast = time.monotonic() - t0
        c.close()
    t = socket.create_connection(("127.0.0.1", port))
    t.settimeout(0.1)
    # A CONNECT of a legal size that would take 100 s to arrive.
    packet, t0, closed = b"\x10" + remaining(1000) + b"\x00" * 1000, time.monotonic(), None
    for i in range(600):
        try:
            t.send(packet[i:i + 1])
            if t.recv(1) == b"":
                closed = time.monotonic() - t0
                break
        except socket.timeout:
            pass
        except OSError:
            closed = time.monotonic() - t0
            break
    t.close()
    extra = ["%.1f" % fast, "%.1f" % closed if closed else ">60"]
elif case == "http":
    s1 = client(b"mem-http-sub", rcvbuf=4096)
    sub(s1, b"sensor-logger", 0)
    body = gzip.compress(b"[" + b" " * ((16 << 20) - 2) + b"]", 9)
    ok = 0
    with Peak() as p:
        for _ in range(100):
            h = socket.create_connection(("127.0.0.1", ws_port))
            h.sendall(b"POST /data HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Encoding: gzip\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                      % len(body) + body)
            h.settimeout(60)
            reply = b""
            while True:
                chunk = h.recv(65536)
                if not chunk:
                    break
                reply += chunk
            ok += reply.startswith(b"HTTP/1.1 200")
            h.close()
        held = settled()
        s1.close()
    extra = [held, ok]
after = settled()
print("rss", before, p.peak, after, *extra, flush=True)
EOF

SMQ_LOG=$BENCH_TMP/serve-broker.log
start_broker() { # start_broker smq|mosquitto: sets BROKER_PID, BROKER_PORT, WS_PORT
    local start line
    WS_PORT=0
    if [[ $1 == mosquitto ]]; then
        # Mosquitto's own defaults (lib.sh lifts its queue limit for throughput benches).
        bench_start_mosquitto "max_queued_messages 1000" "sys_interval 0"
        BROKER_PID=$MOSQ_PID BROKER_PORT=$MOSQ_PORT
        return
    fi
    : >"$SMQ_LOG"
    # shellcheck disable=SC2086  # SMQ_ARGS is a list of flags
    "$SMQ" serve-broker --listen mqtt://127.0.0.1:0 --listen ws://127.0.0.1:0 --http \
        --sys-interval 0 $SMQ_ARGS >>"$SMQ_LOG" 2>&1 </dev/null &
    BROKER_PID=$!
    bench_track "$BROKER_PID"
    start=$(bench_now_us)
    BROKER_PORT=
    while [[ -z $BROKER_PORT || $WS_PORT == 0 ]]; do
        kill -0 "$BROKER_PID" 2>/dev/null || bench_die "serve-broker exited: $(head -c 2000 "$SMQ_LOG")"
        (($(bench_now_us) - start < READY_TIMEOUT * 1000000)) || bench_die "serve-broker not listening: $(head -c 2000 "$SMQ_LOG")"
        sleep 0.02
        while IFS= read -r line; do
            [[ $line =~ ^smq:\ listening\ on\ mqtt://127\.0\.0\.1:([0-9]+)$ ]] && BROKER_PORT=${BASH_REMATCH[1]}
            [[ $line =~ ^smq:\ listening\ on\ ws://127\.0\.0\.1:([0-9]+)$ ]] && WS_PORT=${BASH_REMATCH[1]}
        done <"$SMQ_LOG"
    done
}

label() { if [[ $1 == smq ]]; then echo serve-broker; else echo mosquitto; fi; }
load1() { awk '{ print $1 }' /proc/loadavg; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

RESULTS=$BENCH_TMP/results.tsv
: >"$RESULTS"
for c in $CASES; do
    for b in $BROKERS; do
        [[ $c == http && $b == mosquitto ]] && continue
        load=$(load1)
        start_broker "$b"
        case $c in
        conns) want=$CONNS ;;
        slow) want=$SLOW_MSGS ;;
        *) want=0 ;;
        esac
        out=$BENCH_TMP/load.out
        if ! timeout -k 5 600 python3 "$BENCH_TMP/load.py" "$c" "$BROKER_PID" "$BROKER_PORT" "$WS_PORT" "$want" >"$out" 2>"$BENCH_TMP/load.err"; then
            bench_log "$c $(label "$b"): the load failed: $(tail -c 1000 "$BENCH_TMP/load.err")"
            bench_stop "$BROKER_PID"
            continue
        fi
        bench_stop "$BROKER_PID"
        read -r _ before peak after extra1 extra2 < <(tail -n 1 "$out")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$b" "$before" "$peak" "$after" "${extra1:-}" "${extra2:-}" "$load" >>"$RESULTS"
        bench_log "$(printf '%-8s %-12s VmRSS before %s MiB, peak %s MiB, after %s MiB  %s %s  load %s' "$c" "$(label "$b")" \
            "$(mib "$before")" "$(mib "$peak")" "$(mib "$after")" "${extra1:-}" "${extra2:-}" "$load")"
    done
done

echo "memory: smq serve-broker vs $("$MOSQUITTO" -h 2>/dev/null | head -n 1 | awk '{ print $1, $3 }'), $(nproc) cores; VmRSS in MiB"
echo
awk -F'\t' '
    function mib(k) { return sprintf("%.1f", k / 1024) }
    {
        name = $2 == "smq" ? "serve-broker" : "mosquitto"
        what = $1
        if (what == "conns") note = ""
        else if (what == "pinned") note = "queued: " mib($6)
        else if (what == "slow") note = "held: " mib($6)
        else if (what == "connect") note = "closed after " $6 " s (full speed), " $7 " s (trickled)"
        else if (what == "http") note = "held: " mib($6) ", pushes taken: " $7
        else note = ""
        printf "%-8s %-12s before %7s  peak %7s  after %7s  %s  (load %s)\n", what, name, mib($3), mib($4), mib($5), note, $8
    }' "$RESULTS"
