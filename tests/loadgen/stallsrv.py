#!/usr/bin/env python3
"""A small HTTP/1.x server that stalls on purpose, for loadgen's open-model
test (tests/loadgen/openmodel.py; standard library only).

Every PERIOD seconds, counted from the moment it starts, it stops answering
for STALL seconds, as a server does in a garbage-collection pause or a
blocking call: a request that arrives during a stall, or whose answer is due
during one, is answered when the stall ends; every other request at once.
It keeps connections alive the way HTTP/1.0 (Connection: Keep-Alive) and
HTTP/1.1 clients expect.

    stallsrv.py --stall 0.2 --period 1.0

prints one line, "port P epoch E": its port and the wall-clock time (UNIX
seconds) its first stall began, so that a test can place its run against
the stalls. One asyncio loop: a stall holds answers, never the loop.
"""
import argparse
import asyncio
import sys
import time

BODY = b"stall test\n"


class Stalls:
    def __init__(self, stall, period):
        self.stall, self.period = stall, period
        self.t0 = time.monotonic()
        self.epoch = time.time()

    def hold(self):
        """Seconds until the current stall ends (0 outside a stall)."""
        phase = (time.monotonic() - self.t0) % self.period
        return self.stall - phase if phase < self.stall else 0.0


async def serve(reader, writer, stalls):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            version = lines[0].rsplit(" ", 1)[-1]
            hdrs = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                hdrs[k.strip().lower()] = v.strip().lower()
            n = int(hdrs.get("content-length", "0") or 0)
            if n:
                await reader.readexactly(n)
            conn = hdrs.get("connection", "")
            keep = conn == "keep-alive" if version == "HTTP/1.0" else conn != "close"
            wait = stalls.hold()
            if wait > 0:
                await asyncio.sleep(wait)
            out = [version + " 200 OK", "Content-Type: text/plain",
                   "Content-Length: %d" % len(BODY)]
            if keep and version == "HTTP/1.0":
                out.append("Connection: keep-alive")
            if not keep:
                out.append("Connection: close")
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + BODY)
            await writer.drain()
            if not keep:
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stall", type=float, default=0.2, help="seconds of each stall")
    ap.add_argument("--period", type=float, default=1.0, help="seconds from one stall to the next")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    stalls = Stalls(a.stall, a.period)
    srv = await asyncio.start_server(lambda r, w: serve(r, w, stalls), "127.0.0.1", a.port,
                                     backlog=1024)
    print("port %d epoch %.6f" % (srv.sockets[0].getsockname()[1], stalls.epoch), flush=True)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
