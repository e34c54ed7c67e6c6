#!/usr/bin/python3
"""Parses Authentication-Results fields with the Python `authres` package (Debian python3-authres).

Reads a JSON list of whole fields ("Authentication-Results: ...") on stdin; writes a JSON list with, per field,
either {"error": message} or {"authserv_id", "version", "results": [{"method", "version", "result", "reason",
"properties": [[type, name, value], ...]}]}. Used by InteropTests/AuthenticationResultsInteropTests.
"""
import json
import sys

import authres

out = []
for field in json.load(sys.stdin):
    try:
        header = authres.AuthenticationResultsHeader.parse(field)
    except Exception as error:  # authres raises its own SyntaxError and others
        out.append({"error": str(error)})
        continue
    results = []
    for result in header.results:
        results.append({
            "method": result.method,
            "version": result.version,
            "result": result.result,
            "reason": result.reason,
            "properties": [[p.type, p.name, p.value] for p in result.properties],
        })
    out.append({"authserv_id": header.authserv_id, "version": header.version, "results": results})
json.dump(out, sys.stdout)
