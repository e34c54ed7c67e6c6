#!/usr/bin/python3
"""Verify every DKIM-Signature of each message with dkimpy against a fake DNS table.

usage: dkimpy_corpus.py [--minkey BITS] DNSFILE MESSAGE...
DNSFILE is Mail::DKIM's FAKE_DNS.dat format: `name<white space>value`, where value is a TXT
record's text, `NXDOMAIN`, `~~Query timed out~~` or `~~SERVFAIL~~`; a repeated name adds a record.
Prints one line per signature: path, index (0 = topmost), d=, s=, a=, pass|fail, detail.
"""
import sys

import dkim


def load_dns(path):
    table = {}
    with open(path, "rb") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(b"#"):
                continue
            parts = line.split(None, 1)
            value = parts[1] if len(parts) > 1 else b""
            if value == b'""':
                value = b""
            table.setdefault(parts[0].lower().rstrip(b"."), []).append(value)
    return table


class TemporaryDNSError(dkim.DKIMException):
    """A timeout or SERVFAIL from the table: dkimpy's verify() reports any DKIMException as a failure."""


def main():
    args = sys.argv[1:]
    minkey = 1024
    if args and args[0] == "--minkey":
        minkey = int(args[1])
        args = args[2:]
    table = load_dns(args[0])

    def dnsfunc(name, timeout=5):
        records = table.get(name.lower().rstrip(b"."))
        if not records or records[0] == b"NXDOMAIN":
            return None
        if records[0] in (b"~~Query timed out~~", b"~~SERVFAIL~~"):
            raise TemporaryDNSError("DNS " + records[0].decode().strip("~"))
        return records[0]

    for path in args[1:]:
        message = open(path, "rb").read()
        d = dkim.DKIM(message, minkey=minkey)
        try:
            d.set_message(message)
        except dkim.MessageFormatError as e:
            print(f"{path}\t-\t-\t-\t-\tunparsable\t{e}")
            continue
        count = sum(1 for k, _ in d.headers if k.lower() == b"dkim-signature")
        for i in range(count):
            verifier = dkim.DKIM(message, minkey=minkey)
            try:
                ok = verifier.verify(idx=i, dnsfunc=dnsfunc)
                detail = "" if ok else "signature did not verify"
            except dkim.DKIMException as e:
                ok, detail = False, str(e)
            except Exception as e:  # dkimpy 1.1.4 lets e.g. nacl's ValueError escape for a wrong key type
                ok, detail = False, f"dkimpy raised {type(e).__name__}: {e}"
            sig = verifier.signature_fields or {}
            field = lambda t: sig.get(t, b"-").decode(errors="replace")
            detail = detail.replace("\t", " ").replace("\n", " ")
            print(f"{path}\t{i}\t{field(b'd')}\t{field(b's')}\t{field(b'a')}\t{'pass' if ok else 'fail'}\t{detail}")


main()
