#!/usr/bin/env python3
"""A real SMTP server for the mail tests, built on aiosmtpd.

Listens on 127.0.0.1 (port 0 = any free port unless --port is given) and
prints "PORT <n>" on stdout once it accepts connections. Every message it
accepts is written to --out-dir as two files, each written to a temporary
name and renamed so a reader never sees half of one:

  <id>.eml  the DATA content exactly as received (after dot-unstuffing)
  <id>.env  "MAIL FROM:<...>", one "RCPT TO:<...>" per recipient,
            "AUTH <user or ->" and "TLS yes|no", one per line

The .env file is written last, so its presence means the message is complete.
Runs until killed.
"""

import argparse
import asyncio
import logging
import os
import ssl
import sys
import time
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def write_atomically(path, data):
    temp = path + '.tmp'
    with open(temp, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(temp, path)


class SavingHandler:
    def __init__(self, out_dir, reject_rcpt):
        self.out_dir = out_dir
        self.reject_rcpt = set(reject_rcpt)
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject_rcpt:
            return '550 5.1.1 No such user here'
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.out_dir, '%d-%04d' % (time.time_ns(), self.count))
        tls = server.transport.get_extra_info('ssl_object') is not None
        user = '-'
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            user = session.auth_data.login.decode('utf-8', 'replace')
        meta = 'MAIL FROM:<%s>\n' % envelope.mail_from
        meta += ''.join('RCPT TO:<%s>\n' % r for r in envelope.rcpt_tos)
        meta += 'AUTH %s\nTLS %s\n' % (user, 'yes' if tls else 'no')
        write_atomically(base + '.eml', envelope.original_content)
        write_atomically(base + '.env', meta.encode('utf-8'))
        return '250 2.0.0 Message accepted for delivery'


def make_authenticator(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == user.encode('utf-8')
              and auth_data.password == password.encode('utf-8'))
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return authenticate


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--port', type=int, default=0)
    parser.add_argument('--tls', choices=['none', 'starttls', 'implicit'], default='none')
    parser.add_argument('--cert')
    parser.add_argument('--key')
    parser.add_argument('--require-starttls', action='store_true')
    parser.add_argument('--auth-user')
    parser.add_argument('--auth-password', default='')
    parser.add_argument('--auth-allow-plaintext', action='store_true',
                        help='offer AUTH before TLS (for the smtp_tls = "none" case)')
    parser.add_argument('--reject-rcpt', action='append', default=[],
                        help='answer RCPT TO for this address with 550')
    args = parser.parse_args()

    # aiosmtpd logs every session at INFO and deprecation notes at WARNING;
    # keep stderr for real errors (a failed TLS handshake, say).
    logging.getLogger('mail.log').setLevel(logging.ERROR)
    warnings.simplefilter('ignore')

    tls_context = None
    if args.tls != 'none':
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.cert, args.key)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = SavingHandler(args.out_dir, args.reject_rcpt)

    def factory():
        options = dict(hostname='localhost', loop=loop, timeout=60)
        if args.tls == 'starttls':
            options.update(tls_context=tls_context, require_starttls=args.require_starttls)
        if args.auth_user is not None:
            # aiosmtpd only knows TLS started by STARTTLS; on an implicit TLS
            # socket it would never offer AUTH unless told TLS is not needed.
            plaintext_ok = args.auth_allow_plaintext or args.tls == 'implicit'
            options.update(authenticator=make_authenticator(args.auth_user, args.auth_password),
                           auth_required=True,
                           auth_require_tls=not plaintext_ok)
        return SMTP(handler, **options)

    server = loop.run_until_complete(loop.create_server(
        factory, host='127.0.0.1', port=args.port,
        ssl=tls_context if args.tls == 'implicit' else None))
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write('PORT %d\n' % port)
    sys.stdout.flush()
    loop.run_forever()


if __name__ == '__main__':
    main()
