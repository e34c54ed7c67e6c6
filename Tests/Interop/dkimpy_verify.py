#!/usr/bin/python3
"""Verify every DKIM-Signature of each message with dkimpy (independent of Signet).

usage: dkimpy_verify.py KEYFILE MESSAGE...
KEYFILE has lines `selector._domainkey.domain<TAB>TXT value` (the format of
`signet verify --key-file` and OpenDKIM's TestPublicKeys). Prints one line per
signature: file, d=, s=, a=, result (pass/fail), detail.
"""
import sys

import dkim


def load_keys(path):
    keys = {}
    with open(path, "rb") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(b"#"):
                continue
            name, value = line.split(None, 1)
            keys[name.lower().rstrip(b".")] = value
    return keys


def key_file_dns(path):
    """A dkimpy dnsfunc answering from a key file, so nothing leaves the machine."""
    keys = load_keys(path)

    def dnsfunc(name, timeout=5):
        return keys.get(name.lower().rstrip(b"."), b"")

    return dnsfunc


def main():
    dnsfunc = key_file_dns(sys.argv[1])

    for path in sys.argv[2:]:
        message = open(path, "rb").read()
        d = dkim.DKIM()
        try:
            d.set_message(message)
        except dkim.MessageFormatError as e:
            # dkimpy refuses some obsolete RFC 5322 syntax (e.g. white space before ':').
            print(f"{path}\t-\t-\t-\tunparsable\t{e}")
            continue
        count = sum(1 for k, _ in d.headers if k.lower() == b"dkim-signature")
        if count == 0:
            print(f"{path}\t-\t-\t-\tnone\tno DKIM-Signature")
        for i in range(count):
            verifier = dkim.DKIM(message)
            try:
                ok = verifier.verify(idx=i, dnsfunc=dnsfunc)
                detail = "" if ok else "signature did not verify"
            except dkim.DKIMException as e:
                ok, detail = False, str(e)
            sig = verifier.signature_fields or {}
            field = lambda t: sig.get(t, b"-").decode()
            print(f"{path}\t{field(b'd')}\t{field(b's')}\t{field(b'a')}\t{'pass' if ok else 'fail'}\t{detail}")


if __name__ == "__main__":
    main()
