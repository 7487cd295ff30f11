"""Pytest fixtures for a real SMTP server on 127.0.0.1 (see ``tests/smtp_server.py``).

Load with ``pytest_plugins = ["tests.conftest_smtp"]`` in ``tests/conftest.py``,
or ``-p tests.conftest_smtp`` on the command line.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from tests.smtp_server import SmtpServer, StartServer


@pytest.fixture(scope="session")
def smtp_ca() -> trustme.CA:
    """A certificate authority made for this test session only."""
    return trustme.CA()


@pytest.fixture(scope="session")
def smtp_server_tls(smtp_ca: trustme.CA) -> ssl.SSLContext:
    """Server side: a certificate for localhost and 127.0.0.1 signed by ``smtp_ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    smtp_ca.issue_cert("localhost", "127.0.0.1", "::1").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def smtp_client_tls(smtp_ca: trustme.CA) -> ssl.SSLContext:
    """Client side: verifies certificates and host names, and trusts ``smtp_ca``."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    smtp_ca.configure_trust(context)
    return context


@pytest.fixture(params=[False, True], ids=["stepwise", "pipelining"])
def start_smtp_server(
    smtp_server_tls: ssl.SSLContext, request: pytest.FixtureRequest
) -> Iterator[StartServer]:
    """Start servers with ``SmtpServer`` keywords (mode, credentials, faults...); all stop after.

    Every test runs twice: against a server that offers PIPELINING, and one that does not.
    """
    servers: list[SmtpServer] = []

    def start(**options: Any) -> SmtpServer:
        if options.get("mode", "plain") != "plain":
            options.setdefault("tls_context", smtp_server_tls)
        options.setdefault("pipelining", request.param)
        server = SmtpServer(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(start_smtp_server: StartServer) -> SmtpServer:
    """A plain, well-behaved server; set ``smtp_server.faults`` fields to make it misbehave."""
    return start_smtp_server()
