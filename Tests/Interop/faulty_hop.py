#!/usr/bin/python3
"""A misbehaving SMTP next hop for fault-injection tests: records what it received and when it acknowledged.

usage: faulty_hop.py PORT OUTDIR

Before serving each new connection it reads OUTDIR/fault (if present) and applies that fault to the whole
connection; the test rewrites the file between cases, so one process serves every case. A fault is
"STEP ACTION [ARG]":
  STEP:   greeting, ehlo, starttls, mail, rcpt, data, content (after some message bytes), dot (after the final
          ".", before the reply), mail2 (the connection's second MAIL: a connection that dies when reused),
          xclient2 (the connection's second XCLIENT, offered as with "advertise xclient")
  ACTION: reset (close with a TCP reset), 4xx, 5xx (reply 451/554 there), slow SECONDS (wait, then answer
          normally), bytewise (send the reply one byte at a time, 10 ms apart), nonnumeric, badmultiline (a
          multi-line reply whose continuation has the wrong code), overlong (a 100 kB reply line),
          garbage (STARTTLS: answer 220 and then send bytes that are no TLS; offered in EHLO only for this);
          "advertise xclient" offers XCLIENT and XFORWARD and accepts them
Without a fault file the hop accepts everything.

OUTDIR/events.log gets one JSON line per event, each with the connection number and a time stamp:
  {"event": "command", "line": ...}   every command line
  {"event": "complete", "message": N} the final "." of message N arrived (content in OUTDIR/message-N.raw,
                                     dot-stuffed, up to and including the final ".CRLF")
  {"event": "acked", "message": N}    the 250 for message N was written
  {"event": "peer_gone", "message": N} the relay had closed before the 250 could be written (a late reply)
  {"event": "fault", "fault": ...}    the fault this connection runs under
So a test can tell a message the hop acknowledged from one it only received.

Prints "ready" once it listens. Connections are served in parallel threads.
"""
import json
import os
import select
import socket
import struct
import sys
import threading
import time

lock = threading.Lock()
counters = {"connection": 0, "message": 0}


def main():
    port, outdir = int(sys.argv[1]), sys.argv[2]
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(128)
    print("ready", flush=True)
    while True:
        connection, _ = server.accept()
        with lock:
            counters["connection"] += 1
            number = counters["connection"]
        fault = read_fault(outdir)
        threading.Thread(target=serve, args=(connection, outdir, number, fault), daemon=True).start()


def read_fault(outdir):
    try:
        with open(os.path.join(outdir, "fault")) as f:
            words = f.read().split()
    except FileNotFoundError:
        return None
    if len(words) < 2:
        return None
    return {"step": words[0], "action": words[1], "arg": words[2] if len(words) > 2 else None}


def log(outdir, connection, event, **fields):
    record = {"connection": connection, "time": time.time(), "event": event}
    record.update(fields)
    with lock:
        with open(os.path.join(outdir, "events.log"), "a") as f:
            f.write(json.dumps(record) + "\n")


def reset(connection):
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def peer_gone(connection):
    """Whether the relay has closed its side (readable with nothing to read, or an error)."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        if not readable:
            return False
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class Stop(Exception):
    pass


def serve(connection, outdir, number, fault):
    stream = connection.makefile("rb")
    if fault:
        log(outdir, number, "fault", fault="%s %s %s" % (fault["step"], fault["action"], fault["arg"] or ""))

    def reply(step, normal):
        """Answers at `step`: `normal` unless the fault is for this step. Raises Stop when the connection ends."""
        if not fault or fault["step"] != step:
            connection.sendall(normal)
            return
        action = fault["action"]
        if action == "reset":
            reset(connection)
            raise Stop()
        if action == "4xx":
            connection.sendall(b"451 4.3.0 injected temporary failure\r\n" if step != "greeting"
                               else b"421 4.3.2 injected: not now\r\n")
        elif action == "5xx":
            connection.sendall(b"554 5.3.0 injected permanent failure\r\n")
        elif action == "slow":
            time.sleep(float(fault["arg"]))
            if peer_gone(connection):
                raise Stop()
            connection.sendall(normal)
        elif action == "bytewise":
            for byte in normal:
                connection.sendall(bytes([byte]))
                time.sleep(0.01)
        elif action == "nonnumeric":
            connection.sendall(b"abc this is no reply\r\n")
        elif action == "badmultiline":
            connection.sendall(b"250-first line\r\n354-wrong code in a continuation\r\n250 last\r\n")
        elif action == "overlong":
            connection.sendall(b"250 " + b"x" * 100000 + b"\r\n")
        else:
            connection.sendall(normal)

    mails = xclients = 0
    try:
        reply("greeting", b"220 faulty.test ESMTP\r\n")
        while True:
            line = stream.readline()
            if not line:
                return
            log(outdir, number, "command", line=line.decode("latin-1"))
            verb = line[:4].upper()
            if verb == b"EHLO":
                extensions = [b"PIPELINING", b"8BITMIME", b"ENHANCEDSTATUSCODES"]
                if fault and fault["step"] == "starttls":
                    extensions.append(b"STARTTLS")
                if fault and fault["step"] in ("advertise", "xclient2"):
                    extensions += [b"XCLIENT NAME ADDR PORT PROTO HELO LOGIN", b"XFORWARD NAME ADDR PORT PROTO HELO"]
                reply("ehlo", b"250-faulty.test\r\n" + b"".join(b"250-" + e + b"\r\n" for e in extensions[:-1])
                      + b"250 " + extensions[-1] + b"\r\n")
            elif verb == b"STAR":
                connection.sendall(b"220 2.0.0 go ahead\r\n")
                # What follows should be a TLS handshake; this hop answers with bytes that are no TLS record.
                try:
                    connection.recv(4096)
                    connection.sendall(b"this is not TLS\r\n" * 4)
                except OSError:
                    pass
                time.sleep(0.2)
                reset(connection)
                return
            elif verb == b"XCLI":
                xclients += 1
                reply("xclient2" if xclients == 2 else "xclient", b"220 faulty.test ESMTP\r\n")
            elif verb in (b"HELO", b"NOOP", b"RSET", b"XFOR"):
                connection.sendall(b"250 2.0.0 ok\r\n")
            elif verb == b"MAIL":
                mails += 1
                second = mails == 2 and fault and fault["step"] == "mail2"
                reply("mail2" if second else "mail", b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                reply("rcpt", b"250 2.1.5 ok\r\n")
            elif verb == b"DATA":
                reply("data", b"354 go ahead\r\n")
                if fault and fault["step"] == "data" and fault["action"] in ("4xx", "5xx", "nonnumeric"):
                    continue
                content = bytearray()
                while not (content == b".\r\n" or content.endswith(b"\r\n.\r\n")):
                    piece = stream.readline()
                    if not piece:
                        return  # the relay went away mid-message: nothing complete
                    content += piece
                    if fault and fault["step"] == "content" and len(content) >= 2000:
                        if fault["action"] == "reset":
                            reset(connection)
                            raise Stop()
                with lock:
                    counters["message"] += 1
                    message = counters["message"]
                with open(os.path.join(outdir, "message-%d.raw" % message), "wb") as f:
                    f.write(content)
                log(outdir, number, "complete", message=message)
                if fault and fault["step"] == "content" and fault["action"] in ("4xx", "5xx"):
                    reply("content", b"")
                    continue
                normal = b"250 2.0.0 Ok: queued as F%d\r\n" % message
                if fault and fault["step"] == "dot" and fault["action"] not in ("slow", "bytewise"):
                    reply("dot", normal)  # a refusal, a reset or garbage: no acknowledgement
                    continue
                try:
                    reply("dot", normal)
                except Stop:
                    log(outdir, number, "peer_gone", message=message)
                    raise
                log(outdir, number, "acked", message=message)
            elif verb == b"QUIT":
                connection.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                connection.sendall(b"502 5.5.2 not here\r\n")
    except (Stop, OSError):
        pass
    finally:
        try:
            connection.close()
        except OSError:
            pass


if __name__ == "__main__":
    main()
