"""The dashboard's listening socket: accepted connections send without Nagle's delay."""

from __future__ import annotations

import socket

from service.dashboard.server import listen


def test_accepted_connections_have_tcp_nodelay() -> None:
    """Without it a keep-alive response waited on the client's delayed ACK (44 ms a request
    measured for /api/lookup): asyncio leaves create_server's sockets (proto 0) alone."""
    server = listen("127.0.0.1", 0)
    try:
        with socket.create_connection(server.getsockname()[:2]):
            accepted, _ = server.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.close()
