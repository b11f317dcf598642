#!/usr/bin/env python3
"""A real SMTP server for maildiag's send tests: aiosmtpd (Debian python3-aiosmtpd)
with STARTTLS and AUTH PLAIN/LOGIN, on 127.0.0.1 only.

    smtpserver.py --port P [--cert C --key K] [--user U --password-file F]
                  [--rcpt-reply "550 5.1.1 ..."] [--require-starttls] [--save DIR] [--login-only]

prints "ready P" when it serves; serves until SIGTERM.  --rcpt-reply makes every
RCPT get that reply (a 5.1.1 reject, a greylisting 450 ...).  --save writes each
accepted message (exact bytes) to DIR/N.eml.
"""

import argparse
import asyncio
import os
import signal
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, args):
        self.args = args
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.args.rcpt_reply:
            return self.args.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        if self.args.save:
            with open(os.path.join(self.args.save, "%d.eml" % self.n), "wb") as f:
                f.write(envelope.original_content or envelope.content)
        return "250 2.0.0 OK queued as TEST%04d" % self.n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user")
    ap.add_argument("--password-file")
    ap.add_argument("--rcpt-reply")
    ap.add_argument("--require-starttls", action="store_true")
    ap.add_argument("--save")
    ap.add_argument("--login-only", action="store_true", help="offer AUTH LOGIN, not PLAIN")
    ap.add_argument("--sni-log", help="append the SNI name of each TLS handshake to this file")
    args = ap.parse_args()

    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)
        if args.sni_log:
            def sni(sock, name, ctx):
                with open(args.sni_log, "a") as f:
                    f.write("%s\n" % (name or "(none)"))
            tls.sni_callback = sni
    password = None
    if args.password_file:
        with open(args.password_file) as f:
            password = f.read().strip()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and args.user is not None and
              auth_data.login.decode() == args.user and auth_data.password.decode() == password)
        return AuthResult(success=ok, handled=False)

    kw = dict(hostname="127.0.0.1", port=args.port, server_hostname="mx.send.test",
              ident="maildiag-test-smtpd")
    if tls:
        kw.update(tls_context=tls, require_starttls=args.require_starttls)
    if args.user:
        kw.update(authenticator=authenticator, auth_require_tls=bool(tls))
        if args.login_only:
            kw.update(auth_exclude_mechanism=["PLAIN"])
    ctl = Controller(Handler(args), **kw)
    ctl.start()
    print("ready %d" % args.port, flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    while not stop:
        signal.pause()
    ctl.stop()


if __name__ == "__main__":
    main()
