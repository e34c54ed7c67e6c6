#!/usr/bin/python3
"""An SMTP next hop that records exactly what it receives, or dies in the middle of a message.

usage: recording_sink.py PORT OUTDIR [--chunking] [--die-after BYTES]

Accepts every transaction. For each message it writes OUTDIR/message-N.raw with the bytes
as they came over the wire: for DATA everything after the 354 reply up to and including the
final ".<CR><LF>" (still dot-stuffed), for BDAT the chunk payloads joined. Every command line
goes to OUTDIR/commands.log, so a test can see that nothing was smuggled in as a command.
smtp-sink and Postfix rewrite line endings; this one does not, so tests can check the exact bytes.

--chunking advertises CHUNKING, so the relay sends BDAT instead of DATA.
--die-after BYTES: after reading that many bytes of a message, kill this process with SIGKILL,
as a crashed MTA would (unread bytes make the kernel reset the connection).

Prints "ready" once it listens. Connections are served in parallel threads.
"""
import os
import signal
import socket
import sys
import threading

lock = threading.Lock()
counter = [0]


def main():
    port, outdir = int(sys.argv[1]), sys.argv[2]
    options = sys.argv[3:]
    chunking = "--chunking" in options
    die_after = int(options[options.index("--die-after") + 1]) if "--die-after" in options else None
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(64)
    print("ready", flush=True)
    while True:
        connection, _ = server.accept()
        threading.Thread(target=serve, args=(connection, outdir, chunking, die_after), daemon=True).start()


def log_command(outdir, line):
    with lock:
        with open(os.path.join(outdir, "commands.log"), "ab") as f:
            f.write(line)


def store(outdir, content):
    with lock:
        counter[0] += 1
        number = counter[0]
        with open(os.path.join(outdir, "message-%d.raw" % number), "wb") as f:
            f.write(content)
    return number


def die_if_past(content, die_after):
    if die_after is not None and len(content) >= die_after:
        os.kill(os.getpid(), signal.SIGKILL)


def serve(connection, outdir, chunking, die_after):
    stream = connection.makefile("rb")
    connection.sendall(b"220 recorder.test ESMTP\r\n")
    chunks = bytearray()
    while True:
        line = stream.readline()
        if not line:
            return
        log_command(outdir, line)
        verb = line[:4].upper()
        if verb == b"EHLO":
            extensions = [b"PIPELINING", b"8BITMIME", b"ENHANCEDSTATUSCODES", b"SMTPUTF8"]
            if chunking:
                extensions.append(b"CHUNKING")
            connection.sendall(b"250-recorder.test\r\n" + b"".join(b"250-" + e + b"\r\n" for e in extensions[:-1])
                               + b"250 " + extensions[-1] + b"\r\n")
        elif verb in (b"HELO", b"MAIL", b"RCPT", b"NOOP"):
            connection.sendall(b"250 2.0.0 ok\r\n")
        elif verb == b"RSET":
            chunks = bytearray()
            connection.sendall(b"250 2.0.0 ok\r\n")
        elif verb == b"DATA":
            connection.sendall(b"354 go ahead\r\n")
            content = bytearray()
            while not (content == b".\r\n" or content.endswith(b"\r\n.\r\n")):
                piece = stream.readline()
                if not piece:
                    return  # the relay went away mid-message: nothing is stored
                content += piece
                die_if_past(content, die_after)
            number = store(outdir, content)
            connection.sendall(b"250 2.0.0 Ok: queued as R%d\r\n" % number)
        elif verb == b"BDAT":
            words = line.split()
            size = int(words[1])
            last = len(words) > 2 and words[2].upper() == b"LAST"
            while size > 0:
                piece = stream.read1(min(size, 65536))
                if not piece:
                    return
                chunks += piece
                size -= len(piece)
                die_if_past(chunks, die_after)
            if last:
                number = store(outdir, chunks)
                chunks = bytearray()
                connection.sendall(b"250 2.0.0 Ok: queued as R%d\r\n" % number)
            else:
                connection.sendall(b"250 2.0.0 chunk ok\r\n")
        elif verb == b"QUIT":
            connection.sendall(b"221 2.0.0 bye\r\n")
            return
        else:
            connection.sendall(b"502 5.5.2 not here\r\n")


if __name__ == "__main__":
    main()
