#!/usr/bin/env python3
"""Scale-of-state load for bench/broker.sh: raw MQTT 3.1.1 over sockets, stdlib only, the same
bytes to either broker. Prints one `key=value ...` line on stdout; progress goes to stderr.

  scale.py retained PORT BROKER_PID COUNT SAMPLES PLUS_SAMPLES BURST TIMEOUT
      Loads COUNT retained messages (r/<i/1000>/<i%1000>, pipelined QoS 0 PUBLISHes, then a
      PINGREQ whose PINGRESP says the broker has read them all), then measures SUBSCRIBE ->
      SUBACK + its retained message for SAMPLES exact topics (UNSUBSCRIBE between), for
      PLUS_SAMPLES `r/<k>/+` filters (1,000 retained each), and for BURST exact SUBSCRIBEs sent
      at once (to the last SUBACK and message). Meanwhile a probe connection publishes to itself and times each round trip:
      whether other traffic stalls while the broker serves those SUBSCRIBEs.
  scale.py wild PORT BROKER_PID COUNT SAMPLES CONNS TIMEOUT
      CONNS connections hold COUNT-1 wildcard subscriptions w/<n>/+ (n = 1 .. COUNT-1,
      SUBSCRIBEs of 100 filters, pipelined); a probe holds w/0/+, the COUNT-th, and times
      SAMPLES round trips of a QoS 0 PUBLISH to w/0/x that only it matches.

Every socket goes to 127.0.0.1 and has TIMEOUT seconds per read; the run is bounded.
"""
import random
import socket
import sys
import threading
import time

PINGREQ = b"\xc0\x00"


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def mqtt_str(s):
    return len(s).to_bytes(2, "big") + s


def subscribe(pkid, filters):
    body = pkid.to_bytes(2, "big") + b"".join(mqtt_str(f) + b"\x00" for f in filters)
    return packet(0x82, body)


def unsubscribe(pkid, filters):
    return packet(0xA2, pkid.to_bytes(2, "big") + b"".join(mqtt_str(f) for f in filters))


def publish(topic, payload, retain=False):
    return packet(0x31 if retain else 0x30, mqtt_str(topic) + payload)


class Conn:
    def __init__(self, port, client_id, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        # Clean session, keepalive 0: no PINGREQs of our own in the middle of a measurement.
        body = b"\x00\x04MQTT\x04\x02\x00\x00" + mqtt_str(client_id.encode())
        self.sock.sendall(packet(0x10, body))
        kind, _, ack = self.read()
        if kind != 2 or ack[1] != 0:
            raise SystemExit("scale.py: CONNACK refused: %r" % bytes(ack))

    def send(self, data):
        self.sock.sendall(data)

    def read(self):
        """(packet type, flags, body) of the next packet."""
        while True:
            if len(self.buf) >= 2:
                n, mult, i = 0, 1, 1
                while i < len(self.buf) and i <= 4:
                    b = self.buf[i]
                    n += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        if len(self.buf) >= i + n:
                            first = self.buf[0]
                            body = bytes(self.buf[i : i + n])
                            del self.buf[: i + n]
                            return first >> 4, first & 0x0F, body
                        break
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise SystemExit("scale.py: the broker closed the connection")
            self.buf += chunk

    def close(self):
        try:
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        except OSError:
            pass
        self.sock.close()


def pct(values, p):
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))]


def rss_kib(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def log(*args):
    print("scale.py:", *args, file=sys.stderr, flush=True)


class Probe(threading.Thread):
    """Publishes to a topic of its own and waits for the message back, over and over (with a
    millisecond between round trips), until told to stop; keeps each round trip's time."""

    def __init__(self, port, timeout):
        super().__init__(daemon=True)
        self.conn = Conn(port, "scale-probe", timeout)
        self.topic = b"scale-probe/%d" % random.randrange(1 << 30)
        self.conn.send(subscribe(1, [self.topic]))
        self.conn.read()  # SUBACK
        self.rtts, self.stop, self.error = [], threading.Event(), None

    def run(self):
        try:
            while not self.stop.is_set():
                t0 = time.perf_counter_ns()
                self.conn.send(publish(self.topic, b"p"))
                while self.conn.read()[0] != 3:
                    pass
                self.rtts.append((time.perf_counter_ns() - t0) / 1000.0)
                time.sleep(0.001)
        except BaseException as e:  # reported by the main thread
            self.error = e

    def finish(self):
        self.stop.set()
        self.join()
        self.conn.close()
        if self.error:
            raise SystemExit("scale.py: probe: %r" % self.error)
        r = self.rtts
        return "probe_n=%d probe_p50_us=%.0f probe_p99_us=%.0f probe_max_us=%.0f" % (
            len(r), pct(r, 50), pct(r, 99), max(r) if r else 0)


def topic_of(i):
    return b"r/%d/%d" % (i // 1000, i % 1000)


def retained(port, pid, count, samples, plus_samples, burst, timeout):
    loader = Conn(port, "scale-loader", timeout)
    t0 = time.perf_counter()
    chunk = bytearray()
    for i in range(count):
        chunk += publish(topic_of(i), b"retained-%08d" % i, retain=True)
        if len(chunk) > 1 << 16:
            loader.send(chunk)
            chunk = bytearray()
    loader.send(bytes(chunk) + PINGREQ)
    while loader.read()[0] != 13:
        pass
    load_s = time.perf_counter() - t0
    loader.close()
    rss = rss_kib(pid)
    log("loaded %d retained in %.1f s, broker VmRSS %d KiB" % (count, load_s, rss))

    probe = Probe(port, timeout)
    probe.start()
    c = Conn(port, "scale-subscriber", timeout)
    rng = random.Random(12)

    def one(filt, want):
        """SUBSCRIBE -> its SUBACK and its `want` retained messages, in µs; then UNSUBSCRIBE.
        A message that never comes ends the run with the read timeout."""
        t0 = time.perf_counter_ns()
        c.send(subscribe(1, [filt]))
        acked, got = False, 0
        while not acked or got < want:
            kind = c.read()[0]
            acked |= kind == 9
            got += kind == 3
        us = (time.perf_counter_ns() - t0) / 1000.0
        c.send(unsubscribe(2, [filt]))
        while c.read()[0] != 11:
            pass
        return us

    exact = [one(topic_of(rng.randrange(count)), 1) for _ in range(samples)]
    plus = [one(b"r/%d/+" % rng.randrange(max(1, count // 1000)), min(1000, count))
            for _ in range(plus_samples)]
    # BURST SUBSCRIBEs at once, distinct exact topics: time to the last SUBACK and message.
    filters = [topic_of(i) for i in rng.sample(range(count), min(burst, count))]
    t0 = time.perf_counter_ns()
    c.send(b"".join(subscribe(10 + k, [f]) for k, f in enumerate(filters)))
    acks = msgs = 0
    while acks < len(filters) or msgs < len(filters):
        kind = c.read()[0]
        acks += kind == 9
        msgs += kind == 3
    burst_ms = (time.perf_counter_ns() - t0) / 1e6
    c.close()
    print("load_s=%.2f rss_kib=%d exact_p50_us=%.0f exact_p99_us=%.0f exact_max_us=%.0f "
          "plus_p50_us=%.0f plus_p99_us=%.0f burst_ms=%.1f %s" % (
              load_s, rss, pct(exact, 50), pct(exact, 99), max(exact),
              pct(plus, 50), pct(plus, 99), burst_ms, probe.finish()), flush=True)


def wild(port, pid, count, samples, conns, timeout):
    t0 = time.perf_counter()
    sinks = [Conn(port, "scale-sink-%d" % k, timeout) for k in range(conns)]
    # Filters 1 .. count-1, dealt out to the sinks in SUBSCRIBEs of 100.
    per_packet, pending = 100, [0] * conns
    batches = [[] for _ in range(conns)]
    for n in range(1, count):
        k = n % conns
        batches[k].append(b"w/%d/+" % n)
    for k, sink in enumerate(sinks):
        fs = batches[k]
        data = bytearray()
        for j in range(0, len(fs), per_packet):
            data += subscribe(1 + (j // per_packet) % 65000, fs[j : j + per_packet])
            pending[k] += 1
        sink.send(data)
    for k, sink in enumerate(sinks):
        while pending[k]:
            pending[k] -= sink.read()[0] == 9
    sub_s = time.perf_counter() - t0
    rss = rss_kib(pid)
    log("%d wildcard subscriptions in %.1f s, broker VmRSS %d KiB" % (count, sub_s, rss))
    probe = Conn(port, "scale-wild-probe", timeout)
    probe.send(subscribe(1, [b"w/0/+"]))
    probe.read()
    rtts = []
    for i in range(samples):
        t = time.perf_counter_ns()
        probe.send(publish(b"w/0/x", b"%d" % i))
        while probe.read()[0] != 3:
            pass
        rtts.append((time.perf_counter_ns() - t) / 1000.0)
    probe.close()
    for sink in sinks:
        sink.close()
    print("subscribe_s=%.2f rss_kib=%d rtt_p50_us=%.0f rtt_p99_us=%.0f rtt_max_us=%.0f" % (
        sub_s, rss, pct(rtts, 50), pct(rtts, 99), max(rtts)), flush=True)


def main():
    args = sys.argv[1:]
    try:
        if args[:1] == ["retained"] and len(args) == 8:
            retained(*map(int, args[1:7]), float(args[7]))
        elif args[:1] == ["wild"] and len(args) == 7:
            wild(*map(int, args[1:6]), float(args[6]))
        else:
            raise SystemExit(__doc__)
    except (OSError, ValueError) as e:
        raise SystemExit("scale.py: %s" % e)


main()
