"""A loopback OTLP/HTTP receiver that accepts and discards: the aimw-otel target's collector.

It answers every ``POST /v1/traces``, ``/v1/metrics`` and ``/v1/logs`` with ``200`` and an
empty protobuf body (an Export*ServiceResponse with no partial_success: everything accepted;
OTLP specification, "OTLP/HTTP Response"), over keep-alive HTTP/1.1. It stands for the
collector an operator runs beside the gateway, at the least cost a collector can have, so
that what the benchmark shows is what exporting costs the gateway.

    python -m bench.otlp_sink --port 4318
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bench.net import LOOPBACK_HOST, require_loopback, run

ACCEPTED = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
OTLP_PATHS = (b"/v1/traces", b"/v1/metrics", b"/v1/logs")
MAX_HEAD = 64 * 1024  # bytes of one request head


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Serve one connection's requests (Content-Length bodies, read and dropped)."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEAD:
                break
            lines = head.split(b"\r\n")
            target = lines[0].split(b" ")[1] if lines[0].count(b" ") >= 2 else b""
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            await reader.readexactly(length)
            writer.write(ACCEPTED if target.split(b"?")[0] in OTLP_PATHS else NOT_FOUND)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def _serve(host: str, port: int) -> None:
    server = await asyncio.start_server(serve_connection, require_loopback(host), port, limit=MAX_HEAD)
    print(f"OTLP sink listening on http://{host}:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.otlp_sink", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=LOOPBACK_HOST, help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=4318, help="TCP port (OTLP/HTTP's is 4318)")
    args = parser.parse_args(argv)
    try:
        run(_serve(args.host, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
