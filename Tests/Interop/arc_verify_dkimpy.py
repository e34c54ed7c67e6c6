#!/usr/bin/python3
"""Validate the ARC chain of each message with dkimpy's arc_verify (independent of Signet).

usage: arc_verify_dkimpy.py KEYFILE MESSAGE...
KEYFILE has lines `selector._domainkey.domain<TAB>TXT value`. Prints one line per
message: file, cv (pass/fail/none), reason.
"""
import sys

import dkim

from dkimpy_verify import key_file_dns


def main():
    dnsfunc = key_file_dns(sys.argv[1])

    for path in sys.argv[2:]:
        message = open(path, "rb").read()
        cv, results, reason = dkim.arc_verify(message, dnsfunc=dnsfunc)
        cv = cv.decode() if isinstance(cv, bytes) else str(cv)
        print(f"{path}\t{cv}\t{reason}")


main()
