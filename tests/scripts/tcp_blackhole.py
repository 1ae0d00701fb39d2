#!/usr/bin/env python3
"""A TCP proxy that can stop forwarding without closing anything, for tests of a server that stops
answering: the kernel still accepts and acknowledges the client's bytes, and no answer comes, as
with a frozen server or a stalled middlebox. Keepalives and tcp_user_timeout cannot tell; only the
client's own deadlines can.

usage: tcp_blackhole.py LISTEN_PORT TARGET_HOST TARGET_PORT
Prints "ready" once listening on 127.0.0.1:LISTEN_PORT. SIGUSR1 stops forwarding (bytes already
read are held), SIGUSR2 resumes it (held bytes go on, in order). Connections made while stopped
reach the target only after the resume."""
import asyncio
import signal
import sys

forwarding = asyncio.Event()


async def pipe(reader, writer):
    try:
        while True:
            await forwarding.wait()
            data = await reader.read(65536)
            if not data:
                break
            await forwarding.wait()  # read before a stop: held until the resume
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def main():
    listen_port, target_host, target_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

    async def handle(client_reader, client_writer):
        await forwarding.wait()
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    forwarding.set()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, forwarding.clear)
    loop.add_signal_handler(signal.SIGUSR2, forwarding.set)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


try:
    asyncio.run(main())
except RuntimeError:
    pass  # SIGTERM stopped the loop
