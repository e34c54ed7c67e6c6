#!/usr/bin/python3
"""Validate the ARC chain of each message with dkimpy's arc_verify (independent of Signet).

usage: arc_verify_dkimpy.py KEYFILE MESSAGE...
KEYFILE has lines `selector._domainkey.domain<TAB>TXT value`. Prints one line per
message: file, cv (pass/fail/none), reason.
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


def main():
    keys = load_keys(sys.argv[1])

    def dnsfunc(name, timeout=5):
        return keys.get(name.lower().rstrip(b"."), b"")

    for path in sys.argv[2:]:
        message = open(path, "rb").read()
        cv, results, reason = dkim.arc_verify(message, dnsfunc=dnsfunc)
        cv = cv.decode() if isinstance(cv, bytes) else str(cv)
        print(f"{path}\t{cv}\t{reason}")


main()
