#!/usr/bin/env python3
"""Scripted DNS responder for maildiag tests (python3 standard library only).

It does on purpose what real DNS servers never do: SERVFAIL/REFUSED on demand,
never answer, truncate over UDP, send malformed replies.  It listens on
127.0.0.1 only, on one port for both UDP and TCP, and never sends a packet
anywhere but back to the 127.0.0.1 peer that asked.

Rules are tried in order; the first match decides.  A rule is a tuple
    (pattern, qtype, action)            or
    (pattern, qtype, action, records)
pattern  "name.test"   matches exactly that name (case-insensitive, trailing dot ignored)
         ".name.test"  matches name.test and every name below it
         "*.name.test" matches every name below name.test, not name.test itself
qtype    "MX", "A", "AAAA", "CNAME", "TXT", ... or "*" (any type)
action   "answer"    NOERROR with the given records (those of the asked type, plus CNAMEs)
         "nodata"    NOERROR, empty answer
         "nxdomain"  NXDOMAIN
         "servfail"  SERVFAIL
         "refused"   REFUSED
         "hang"      never answer (UDP and TCP)
         "truncate"  over UDP: TC=1 and empty sections; over TCP: like "answer"
         "malformed" correct id and QR bit, ANCOUNT=1, but the answer record is cut in the middle
Records: ("MX", pref, host), ("A", "192.0.2.1"), ("AAAA", "2001:db8::1"),
         ("CNAME", target), ("TXT", "text", ...).  The owner is the query name; to give
         another owner (e.g. the target of a CNAME), put it first: ("t.x.test", "A", "192.0.2.1").
Names that match no rule get NXDOMAIN.

Every query received is logged as a dict {"name", "type", "transport"}.

Standalone:  python3 dnsscript.py --port P [--rules rules.json] [--log queries.jsonl]
prints "ready P" once it serves, and serves until SIGTERM/SIGINT.  rules.json is a
JSON list of [pattern, qtype, action] or [pattern, qtype, action, [[record...], ...]].
"""

import argparse
import ipaddress
import json
import select
import signal
import socket
import struct
import sys
import threading

# ---------------------------------------------------------------- wire helpers

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
         "AAAA": 28, "SRV": 33, "OPT": 41, "ANY": 255}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
CLASS_IN = 1

RCODE_NOERROR, RCODE_SERVFAIL, RCODE_NXDOMAIN, RCODE_REFUSED = 0, 2, 3, 5
RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
               5: "REFUSED"}


def type_code(t):
    if isinstance(t, int):
        return t
    t = t.upper()
    if t in TYPES:
        return TYPES[t]
    if t.startswith("TYPE") and t[4:].isdigit():
        return int(t[4:])
    raise ValueError("unknown DNS type %r" % (t,))


def type_name(code):
    return TYPE_NAMES.get(code, "TYPE%d" % code)


def norm_name(name):
    """Lower case, no trailing dot ("" for the root)."""
    return name.rstrip(".").lower() if name != "." else ""


def encode_name(name):
    """Uncompressed wire form of a (textual, ASCII) domain name."""
    name = name.rstrip(".")
    out = b""
    if name:
        for label in name.split("."):
            raw = label.encode("ascii")
            if not 0 < len(raw) < 64:
                raise ValueError("bad label in %r" % (name,))
            out += bytes([len(raw)]) + raw
    return out + b"\x00"


def build_query(qname, qtype, qid=0x4d44, rd=True):
    """DNS query message bytes (one question, class IN)."""
    flags = 0x0100 if rd else 0
    return (struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 0)
            + encode_name(qname) + struct.pack("!HH", type_code(qtype), CLASS_IN))


def decode_name(msg, off):
    """Return (name, offset after the name) and follow compression pointers."""
    labels = []
    end = None
    jumps = 0
    while True:
        if off >= len(msg):
            raise ValueError("name runs past end of message")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise ValueError("truncated compression pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            if jumps > 64:
                raise ValueError("compression loop")
            continue
        if n & 0xC0:
            raise ValueError("bad label type")
        off += 1
        if n == 0:
            break
        if off + n > len(msg):
            raise ValueError("label runs past end of message")
        labels.append(msg[off:off + n].decode("ascii", "backslashreplace"))
        off += n
    return ".".join(labels), (end if end is not None else off)


def _rdata_text(msg, rtype, start, rdlen):
    rd = msg[start:start + rdlen]
    if rtype == 1 and rdlen == 4:
        return str(ipaddress.IPv4Address(rd))
    if rtype == 28 and rdlen == 16:
        return str(ipaddress.IPv6Address(rd))
    if rtype in (2, 5, 12):
        return decode_name(msg, start)[0]
    if rtype == 15:
        pref = struct.unpack("!H", rd[:2])[0]
        return (pref, decode_name(msg, start + 2)[0])
    if rtype == 16:
        parts, i = [], 0
        while i < len(rd):
            n = rd[i]
            parts.append(rd[i + 1:i + 1 + n].decode("utf-8", "backslashreplace"))
            i += 1 + n
        return tuple(parts)
    if rtype == 6:
        mname, o = decode_name(msg, start)
        rname, o = decode_name(msg, o)
        serial, refresh, retry, expire, minimum = struct.unpack("!IIIII", msg[o:o + 20])
        return (mname, rname, serial, refresh, retry, expire, minimum)
    return rd


def parse_message(msg):
    """Minimal DNS message parser.

    Returns a dict: id, flags, qr, aa, tc, rd, ra, rcode, rcode_name, question
    [(name, type)], answer/authority/additional [(name, type_name, ttl, rdata)].
    rdata: A/AAAA str, MX (pref, host), CNAME/NS/PTR str, TXT tuple of str, SOA tuple.
    Raises ValueError on a malformed message.
    """
    if len(msg) < 12:
        raise ValueError("message shorter than a header")
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    res = {"id": qid, "flags": flags, "qr": bool(flags & 0x8000),
           "opcode": (flags >> 11) & 0xF, "aa": bool(flags & 0x0400),
           "tc": bool(flags & 0x0200), "rd": bool(flags & 0x0100),
           "ra": bool(flags & 0x0080), "rcode": flags & 0xF,
           "question": [], "answer": [], "authority": [], "additional": []}
    res["rcode_name"] = RCODE_NAMES.get(res["rcode"], str(res["rcode"]))
    off = 12
    for _ in range(qd):
        name, off = decode_name(msg, off)
        if off + 4 > len(msg):
            raise ValueError("truncated question")
        qtype, _qclass = struct.unpack("!HH", msg[off:off + 4])
        off += 4
        res["question"].append((name, type_name(qtype)))
    for section, count in (("answer", an), ("authority", ns), ("additional", ar)):
        for _ in range(count):
            name, off = decode_name(msg, off)
            if off + 10 > len(msg):
                raise ValueError("truncated resource record header")
            rtype, _rclass, ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
            off += 10
            if off + rdlen > len(msg):
                raise ValueError("truncated rdata")
            res[section].append((name, type_name(rtype), ttl,
                                 _rdata_text(msg, rtype, off, rdlen)))
            off += rdlen
    return res


def parse_query(msg):
    """(id, flags, qname, qtype code, raw question bytes) of an incoming query."""
    if len(msg) < 12:
        raise ValueError("short query")
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    if qd < 1:
        raise ValueError("no question")
    name, off = decode_name(msg, 12)
    if off + 4 > len(msg):
        raise ValueError("truncated question")
    qtype = struct.unpack("!H", msg[off:off + 2])[0]
    return qid, flags, name, qtype, msg[12:off + 4]


# ---------------------------------------------------------------- records

def _rr(owner, rtype, rdata, ttl=300):
    return encode_name(owner) + struct.pack("!HHIH", type_code(rtype), CLASS_IN, ttl,
                                            len(rdata)) + rdata


def _rdata(rtype, args):
    rtype = rtype.upper()
    if rtype == "A":
        return ipaddress.IPv4Address(args[0]).packed
    if rtype == "AAAA":
        return ipaddress.IPv6Address(args[0]).packed
    if rtype == "MX":
        return struct.pack("!H", int(args[0])) + encode_name(args[1])
    if rtype in ("CNAME", "NS", "PTR"):
        return encode_name(args[0])
    if rtype == "TXT":
        out = b""
        for s in args:
            raw = s.encode("utf-8") if isinstance(s, str) else bytes(s)
            out += bytes([len(raw)]) + raw
        return out
    raise ValueError("unsupported record type %r" % (rtype,))


def normalize_record(rec, qname):
    """(owner, TYPE, args) from ("MX", 10, "h") or ("owner", "MX", 10, "h")."""
    rec = list(rec)
    if isinstance(rec[0], str) and rec[0].upper() in TYPES:
        owner, rtype, args = qname, rec[0].upper(), rec[1:]
    else:
        owner, rtype, args = rec[0], str(rec[1]).upper(), rec[2:]
    return owner, rtype, args


# ---------------------------------------------------------------- the server

UDP_MAX = 512  # no EDNS here (RFC 1035 4.2.1): longer UDP answers are sent with TC=1

ACTIONS = ("answer", "nodata", "nxdomain", "servfail", "refused", "hang", "truncate",
           "malformed")


class Rule:
    def __init__(self, pattern, qtype, action, records=()):
        if action not in ACTIONS:
            raise ValueError("unknown action %r" % (action,))
        self.pattern = pattern.lower().rstrip(".")
        self.qtype = "*" if qtype == "*" else type_code(qtype)
        self.action = action
        self.records = [tuple(r) for r in (records or ())]

    def matches(self, qname, qtype):
        name = norm_name(qname)
        if self.pattern.startswith("*."):
            ok = name.endswith(self.pattern[1:])
        elif self.pattern.startswith("."):
            ok = name == self.pattern[1:] or name.endswith(self.pattern)
        else:
            ok = name == self.pattern
        return ok and (self.qtype == "*" or self.qtype == qtype)


class DnsScript:
    """The responder: sockets + threads.  start(), stop(), .port, .log."""

    def __init__(self, rules=(), port=0, host="127.0.0.1"):
        if host != "127.0.0.1":
            raise ValueError("the scripted responder listens on 127.0.0.1 only")
        self.host = host
        self.rules = [r if isinstance(r, Rule) else Rule(*r) for r in rules]
        self.log = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._conns = set()
        self.udp, self.tcp = self._bind(port)
        self.port = self.udp.getsockname()[1]

    # -- setup

    def _bind(self, port):
        last = None
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                udp.bind((self.host, port))
                tcp.bind((self.host, udp.getsockname()[1]))
                tcp.listen(64)
                return udp, tcp
            except OSError as e:
                last = e
                udp.close()
                tcp.close()
                if port:
                    break
        raise OSError("cannot bind UDP+TCP on %s:%s: %s" % (self.host, port, last))

    def set_rules(self, rules):
        with self._lock:
            self.rules = [r if isinstance(r, Rule) else Rule(*r) for r in rules]

    def add_rule(self, *rule):
        with self._lock:
            self.rules.append(rule[0] if isinstance(rule[0], Rule) else Rule(*rule))

    def clear_log(self):
        with self._lock:
            del self.log[:]

    def queries(self, name=None, qtype=None, transport=None):
        """Logged queries filtered by name (exact, case-insensitive), type, transport."""
        with self._lock:
            entries = list(self.log)
        out = []
        for e in entries:
            if name is not None and norm_name(e["name"]) != norm_name(name):
                continue
            if qtype is not None and e["type"] != qtype.upper():
                continue
            if transport is not None and e["transport"] != transport:
                continue
            out.append(e)
        return out

    def start(self):
        for target in (self._udp_loop, self._tcp_loop):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=3)
        for s in list(self._conns) + [self.udp, self.tcp]:
            try:
                s.close()
            except OSError:
                pass

    # -- answering

    def _record_query(self, qname, qtype, transport, log_hook=None):
        entry = {"name": qname, "type": type_name(qtype), "transport": transport}
        with self._lock:
            self.log.append(entry)
        if log_hook:
            log_hook(entry)

    def respond(self, msg, transport):
        """Reply bytes for one query message, or None for no reply."""
        try:
            qid, qflags, qname, qtype, question = parse_query(msg)
        except (ValueError, UnicodeError, struct.error):
            if len(msg) >= 2:  # FORMERR with the id, no question
                return struct.pack("!HHHHHH", struct.unpack("!H", msg[:2])[0],
                                   0x8001, 0, 0, 0, 0)
            return None
        self._record_query(qname, qtype, transport, getattr(self, "log_hook", None))
        with self._lock:
            rule = next((r for r in self.rules if r.matches(qname, qtype)), None)
        action = rule.action if rule else "nxdomain"
        rd = qflags & 0x0100
        opcode = qflags & 0x7800

        def reply(rcode, answers=(), tc=False, ancount=None):
            flags = 0x8000 | opcode | 0x0400 | rd | rcode | (0x0200 if tc else 0)
            n = len(answers) if ancount is None else ancount
            return (struct.pack("!HHHHHH", qid, flags, 1, n, 0, 0) + question
                    + b"".join(answers))

        if action == "hang":
            return None
        if action == "servfail":
            return reply(RCODE_SERVFAIL)
        if action == "refused":
            return reply(RCODE_REFUSED)
        if action == "nxdomain":
            return reply(RCODE_NXDOMAIN)
        if action == "nodata":
            return reply(RCODE_NOERROR)
        if action == "malformed":
            # an answer RR whose header promises 30 bytes of rdata; only 3 follow
            cut = (b"\xc0\x0c" + struct.pack("!HHIH", qtype, CLASS_IN, 300, 30)
                   + b"\x00\x0a\x03")
            return reply(RCODE_NOERROR, [cut], ancount=1)
        if action == "truncate" and transport == "udp":
            return reply(RCODE_NOERROR, tc=True)
        # answer (or truncate over TCP)
        answers = []
        for rec in rule.records:
            owner, rtype, args = normalize_record(rec, qname)
            if qtype == 255 or type_code(rtype) == qtype or rtype == "CNAME":
                answers.append(_rr(owner, rtype, _rdata(rtype, args)))
        out = reply(RCODE_NOERROR, answers)
        if transport == "udp" and len(out) > UDP_MAX:
            # like a server without EDNS: a reply over 512 bytes goes out truncated
            return reply(RCODE_NOERROR, tc=True)
        return out

    # -- loops

    def _udp_loop(self):
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self.udp], [], [], 0.1)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                msg, peer = self.udp.recvfrom(65535)
            except OSError:
                continue
            if peer[0] != "127.0.0.1":
                continue
            try:
                out = self.respond(msg, "udp")
            except Exception as e:  # never let one query kill the server
                print("dnsscript: error answering: %r" % (e,), file=sys.stderr)
                continue
            if out is not None:
                try:
                    self.udp.sendto(out, peer)
                except OSError:
                    pass

    def _tcp_loop(self):
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self.tcp], [], [], 0.1)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                conn, peer = self.tcp.accept()
            except OSError:
                continue
            if peer[0] != "127.0.0.1":
                conn.close()
                continue
            self._conns.add(conn)
            threading.Thread(target=self._tcp_conn, args=(conn,), daemon=True).start()

    def _recv_exact(self, conn, n):
        buf = b""
        while len(buf) < n:
            if self._stop.is_set():
                return None
            r, _, _ = select.select([conn], [], [], 0.1)
            if not r:
                continue
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _tcp_conn(self, conn):
        try:
            while not self._stop.is_set():
                hdr = self._recv_exact(conn, 2)
                if not hdr:
                    break
                msg = self._recv_exact(conn, struct.unpack("!H", hdr)[0])
                if msg is None:
                    break
                try:
                    out = self.respond(msg, "tcp")
                except Exception as e:
                    print("dnsscript: error answering: %r" % (e,), file=sys.stderr)
                    continue
                if out is not None:
                    conn.sendall(struct.pack("!H", len(out)) + out)
        except (OSError, ValueError):
            pass
        finally:
            self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass


def load_rules(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    rules = []
    for r in data:
        if len(r) == 3:
            rules.append(Rule(r[0], r[1], r[2]))
        else:
            rules.append(Rule(r[0], r[1], r[2], [tuple(x) for x in r[3]]))
    return rules


def main(argv=None):
    ap = argparse.ArgumentParser(description="Scripted DNS responder on 127.0.0.1 (tests only)")
    ap.add_argument("--port", type=int, default=0, help="UDP+TCP port (0: pick a free one)")
    ap.add_argument("--rules", help="JSON file: list of [pattern, qtype, action, records?]")
    ap.add_argument("--log", help="append every query as a JSON line to this file")
    args = ap.parse_args(argv)

    srv = DnsScript(load_rules(args.rules) if args.rules else (), port=args.port)
    if args.log:
        logf = open(args.log, "a", encoding="utf-8")

        def hook(entry):
            logf.write(json.dumps(entry) + "\n")
            logf.flush()
        srv.log_hook = hook

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    srv.start()
    print("ready %d" % srv.port, flush=True)
    while not done.wait(0.5):
        pass
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
