#!/usr/bin/env python3
"""A long link on loopback, for bench/gate: a TCP relay that holds every
byte for DELAY_MS in each direction before passing it on, so a connection
through it has a round trip of 2 x DELAY_MS. Bandwidth is not limited: the
relay buffers what the link would (there is no netem on every machine).

usage: delayproxy.py LISTEN_PORT TARGET_PORT DELAY_MS
"""
import asyncio
import sys
import time

CHUNK = 256 * 1024


async def one_way(reader, writer, delay):
    """Copies reader to writer, each read passed on delay seconds later."""
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            queue.put_nowait((time.monotonic() + delay, data))
    finally:
        queue.put_nowait((time.monotonic() + delay, None))
        await sender


async def main():
    listen, target, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000

    async def handle(c_reader, c_writer):
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            c_writer.close()
            return
        await asyncio.gather(one_way(c_reader, s_writer, delay), one_way(s_reader, c_writer, delay),
                             return_exceptions=True)
        c_writer.close()
        s_writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: delayproxy.py LISTEN_PORT TARGET_PORT DELAY_MS")
    asyncio.run(main())
