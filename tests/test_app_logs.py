"""Logs are not an attack surface: requests aiohttp cannot parse log one WARNING line each,
never a traceback, and nothing ever logs the Authorization header."""

from __future__ import annotations

import logging
import socket

import pytest
from webrtc_helpers import ADMIN_TOKEN, ServerThread, free_port, test_config

pytestmark = pytest.mark.timeout(120)


def exchange(port: int, request: bytes) -> bytes:
    """Send one raw request on a fresh connection; everything until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), 30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_unparsable_requests_log_one_line_without_the_token(models_dir, tmp_path, caplog):
    config = test_config(models_dir, tmp_path, port=free_port())
    caplog.set_level(logging.DEBUG)
    head = "HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    padded = f"Authorization: Bearer {ADMIN_TOKEN}{' ' * 9000}\r\n"
    bad = [f"GET /api/jobs {head}{padded}\r\n".encode()]
    bad += [f"GET /{'a' * 9000}?n={i} {head}\r\n".encode() for i in range(200)]
    with ServerThread(config):
        caplog.clear()
        replies = [exchange(config.port, request) for request in bad]
        healthy = exchange(config.port, f"GET /healthz {head}Connection: close\r\n\r\n".encode())
    assert all(reply.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request") for reply in replies)
    assert healthy.startswith(b"HTTP/1.1 200")  # still serving
    records = [r for r in caplog.records if r.name.startswith("aiohttp.server")]
    assert len(records) == len(bad)
    assert all(r.levelno == logging.WARNING and not r.exc_info for r in records)
    assert all(len(r.getMessage()) < 200 for r in records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert ADMIN_TOKEN not in caplog.text and "aaaaaaaa" not in caplog.text
