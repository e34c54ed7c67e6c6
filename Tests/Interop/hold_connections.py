#!/usr/bin/python3
"""Opens COUNT SMTP connections to 127.0.0.1:PORT and holds them, for the connection-limit tests.

usage: hold_connections.py PORT COUNT

Reads the first reply line of each connection and keeps every socket open. With all of them held, sends one
message on the first and on the last greeted connection (EHLO, MAIL, RCPT, DATA, a small message with the
Subject "relay test held-N", QUIT). Then closes everything and prints one JSON object: greeted, refused (421
with 4.7.0), other (up to 10 other first lines or errors), seconds (to open them all), held (the end-of-data
replies of the two messages).

This runs in its own process so that ten thousand descriptors never live in the test runner, whose other
tests start programs with Foundation's Process (which cannot cope with descriptors above FD_SETSIZE).
"""
import json
import resource
import socket
import sys
import time


def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 1024
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want) if hard != resource.RLIM_INFINITY else want, hard))
    held, greeted, refused, other = [], [], 0, []
    started = time.time()
    for _ in range(count):
        try:
            connection = socket.create_connection(("127.0.0.1", port), timeout=20)
            reader = connection.makefile("rb")
            line = reader.readline().decode("latin-1").rstrip("\r\n")
            held.append(connection)
            if line.startswith("220"):
                greeted.append((connection, reader))
            elif line.startswith("421") and "4.7.0" in line:
                refused += 1
            elif len(other) < 10:
                other.append(line)
        except OSError as error:
            if len(other) < 10:
                other.append(str(error))
    seconds = time.time() - started
    replies = []
    for index, (connection, reader) in enumerate([greeted[0], greeted[-1]] if greeted else []):
        replies.append(transact(connection, reader, index))
    for connection in held:
        connection.close()
    print(json.dumps({"greeted": len(greeted), "refused": refused, "other": other, "seconds": seconds,
                      "held": replies}), flush=True)


def transact(connection, reader, index):
    def command(line):
        connection.sendall(line.encode() + b"\r\n")
        reply = b""
        while True:
            part = reader.readline()
            reply += part
            if not part or part[3:4] != b"-":
                return reply.decode("latin-1").strip()

    try:
        command("EHLO held.example.com")
        command("MAIL FROM:<alice@example.com>")
        command("RCPT TO:<bob@example.org>")
        command("DATA")
        end = command("From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: relay test held-%d\r\n"
                      "\r\nStill served.\r\n." % index)
        command("QUIT")
        return end
    except OSError as error:
        return str(error)


if __name__ == "__main__":
    main()
