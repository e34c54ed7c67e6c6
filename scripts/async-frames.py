#!/usr/bin/env python3
"""Async frame (context) sizes of a Swift binary's async functions, largest first.

Each async function has an "async function pointer" record (mangled name ending in `Tu`): a 32-bit relative
offset to the function, then the 32-bit size of the context it allocates on its task's allocator when called.
A session's deepest chain of these stays allocated for the life of its connection, so their sizes are memory per
connection, and unlike RSS they are exact.

    scripts/async-frames.py .build/release/signet                      # every async function
    scripts/async-frames.py .build/release/signet 14InboundSession     # those whose mangled name contains this

Needs binutils (readelf, nm) and the toolchain's `swift demangle`.
"""
import struct
import subprocess
import sys


def sections(binary):
    """(address, file offset, size) of every section."""
    out = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.replace("[ ", "[").split()
        if len(parts) > 6 and parts[0].startswith("[") and parts[0] != "[Nr]":
            try:
                yield int(parts[3], 16), int(parts[4], 16), int(parts[5], 16)
            except ValueError:
                pass


def main():
    binary = sys.argv[1]
    pattern = sys.argv[2] if len(sys.argv) > 2 else ""
    layout = list(sections(binary))
    data = open(binary, "rb").read()
    rows = []
    symbols = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout
    for line in symbols.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[2].endswith("Tu") or pattern not in parts[2]:
            continue
        address = int(parts[0], 16)
        for start, offset, size in layout:
            if start <= address < start + size:
                _, context = struct.unpack_from("<iI", data, offset + address - start)
                rows.append((context, parts[2]))
                break
    names = subprocess.run(
        ["swift", "demangle", "--simplified"], input="\n".join(name for _, name in rows),
        capture_output=True, text=True, check=True).stdout.splitlines()
    for (context, _), name in sorted(zip(rows, names), reverse=True):
        print("%6d  %s" % (context, name.replace("async function pointer to ", "")[:160]))


if __name__ == "__main__":
    main()
