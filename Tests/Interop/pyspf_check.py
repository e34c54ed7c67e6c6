#!/usr/bin/python3
"""Run SPF checks with pyspf (Debian python3-spf), offline, against a zone given as JSON.

usage: pyspf_check.py ZONE.json < CASES
ZONE.json maps each name to {"txt": [...], "a": [...], "aaaa": [...], "mx": [[pref, host]...], "ptr": [...],
"cname": host or null, "failure": bool, "failureWhenEmpty": bool} (Signet's StaticZone entries).
CASES has lines `id<TAB>ip<TAB>mailfrom<TAB>helo`. Prints `id<TAB>result<TAB>explanation` per case.
pyspf's DNS function is replaced by one that answers from the zone, so nothing goes to the network.
"""
import json
import sys

import spf


def main():
    with open(sys.argv[1]) as f:
        zone = json.load(f)

    def lookup(name, qtype, strict=True, timeout=None):
        entry = zone.get(name.lower().rstrip("."))
        if entry is None:
            return []  # NXDOMAIN
        if entry.get("failure"):
            raise spf.TempError("DNS timeout (static zone)")
        key = {"A": "a", "AAAA": "aaaa", "MX": "mx", "PTR": "ptr", "TXT": "txt"}.get(qtype)
        records = entry.get(key, []) if key else []
        if not records:
            if entry.get("failureWhenEmpty"):
                raise spf.TempError("DNS timeout (static zone)")
            if entry.get("cname"):
                return [((name, "CNAME"), entry["cname"])]
            return []
        if qtype == "TXT":
            # One character-string per 255 bytes, as DNS would carry it.
            out = []
            for text in records:
                data = text.encode("utf-8")
                out.append(((name, qtype), [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]))
            return out
        if qtype == "MX":
            return [((name, qtype), (pref, host)) for pref, host in records]
        return [((name, qtype), value) for value in records]

    spf.DNSLookup = lookup
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        case_id, ip, mailfrom, helo = line.split("\t")
        result, _code, explanation = spf.query(i=ip, s=mailfrom, h=helo, receiver="unknown").check()
        print("%s\t%s\t%s" % (case_id, result, explanation.replace("\t", " ").replace("\n", " ")))


if __name__ == "__main__":
    main()
