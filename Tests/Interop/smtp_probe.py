#!/usr/bin/env python3
"""Hand-driven SMTP clients for Signet's STARTTLS and AUTH tests: the cases swaks cannot play.

Usage: smtp_probe.py CASE PORT [ARGS]; prints one 'name: value' line per observation, every socket bounded by a
timeout. Cases:
  auth334 PORT USER PASSWORD   STARTTLS, then AUTH PLAIN answered after the 334 (no initial response)
  inject PORT                  MAIL pipelined after STARTTLS in plain text must not run inside TLS
  garbage PORT                 plain text instead of a ClientHello after 220: the server must close
  oldtls PORT                  a client that offers at most TLS 1.2 to a server that wants 1.3
"""
import base64
import smtplib
import socket
import ssl
import sys

TIMEOUT = 15


def context(maximum=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if maximum:
        ctx.maximum_version = maximum
    return ctx


def reply(stream):
    """One SMTP reply (all its lines) from a file object; '' at EOF."""
    lines = []
    while True:
        line = stream.readline()
        if not line:
            return "".join(lines)
        lines.append(line.decode("utf-8", "replace"))
        if len(line) < 4 or line[3:4] != b"-":
            return "".join(lines)


def closed(sock):
    """True when the server closes (EOF or reset) within the timeout."""
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except (ConnectionResetError, ssl.SSLError, OSError):
        return True
    except socket.timeout:
        return False


def auth334(port, user, password):
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT)
    smtp.ehlo("probe")
    code, _ = smtp.starttls(context=context())
    print(f"starttls: {code}")
    smtp.ehlo("probe")
    print(f"auth-offered: {smtp.has_extn('auth')}")
    code, text = smtp.docmd("AUTH", "PLAIN")
    print(f"challenge: {code} {text.decode()!r}")
    token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
    code, text = smtp.docmd(token)
    print(f"auth: {code} {text.decode()}")
    code, _ = smtp.docmd("MAIL", "FROM:<alice@example.com>")
    print(f"mail: {code}")
    smtp.quit()


def inject(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    stream = sock.makefile("rb")
    print(f"greeting: {reply(stream)[:3]}")
    sock.sendall(b"EHLO probe\r\n")
    reply(stream)
    # One write: STARTTLS and a command an attacker slipped in behind it.
    sock.sendall(b"STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
    print(f"starttls: {reply(stream)[:3]}")
    tls = context().wrap_socket(sock, server_hostname="localhost")
    tls.settimeout(TIMEOUT)
    tstream = tls.makefile("rb")
    print(f"tls: {tls.version()}")
    tls.sendall(b"EHLO probe\r\n")
    print(f"ehlo: {reply(tstream)[:3]}")
    # Had the injected MAIL run, RCPT would be accepted or forwarded; it must be out of sequence.
    tls.sendall(b"RCPT TO:<bob@example.org>\r\n")
    print(f"rcpt: {reply(tstream).strip()}")
    tls.sendall(b"QUIT\r\n")
    print(f"quit: {reply(tstream)[:3]}")


def garbage(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    stream = sock.makefile("rb")
    reply(stream)
    sock.sendall(b"EHLO probe\r\n")
    reply(stream)
    sock.sendall(b"STARTTLS\r\n")
    print(f"starttls: {reply(stream)[:3]}")
    sock.sendall(b"EHLO this is not a ClientHello\r\n")
    print(f"closed: {closed(sock)}")


def oldtls(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    stream = sock.makefile("rb")
    reply(stream)
    sock.sendall(b"EHLO probe\r\n")
    reply(stream)
    sock.sendall(b"STARTTLS\r\n")
    print(f"starttls: {reply(stream)[:3]}")
    try:
        context(ssl.TLSVersion.TLSv1_2).wrap_socket(sock, server_hostname="localhost")
        print("handshake: succeeded")
    except (ssl.SSLError, OSError) as error:
        print(f"handshake: failed {type(error).__name__}")


if __name__ == "__main__":
    case, port = sys.argv[1], int(sys.argv[2])
    {"auth334": auth334, "inject": inject, "garbage": garbage, "oldtls": oldtls}[case](port, *sys.argv[3:])
