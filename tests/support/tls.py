"""Throwaway TLS material (via ``trustme``) and a ``wss://`` echo server."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import trustme

from .servers import ServerInfo, echo_server


@dataclass
class TLSMaterial:
    """A private CA and contexts that trust it.

    Attributes:
        ca: The test certificate authority.
        server_context: Server context with a cert for ``127.0.0.1`` and ``localhost``.
        client_context: Client context that trusts only ``ca``.
        ca_file: Path of a PEM file holding the CA certificate.
    """

    ca: trustme.CA
    server_context: ssl.SSLContext
    client_context: ssl.SSLContext
    ca_file: Path


def make_tls() -> TLSMaterial:
    """Create a fresh CA, a server certificate and matching SSL contexts.

    Returns:
        The generated :class:`TLSMaterial`. The CA file lives in a temporary
        directory removed when the interpreter exits.
    """
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    client_context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_context)

    tmp_dir = tempfile.mkdtemp(prefix="pipecat-wsclient-tls-")
    atexit.register(shutil.rmtree, tmp_dir, ignore_errors=True)
    ca_file = Path(tmp_dir) / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TLSMaterial(ca, server_context, client_context, ca_file)


@contextlib.asynccontextmanager
async def tls_echo_server(server_context: ssl.SSLContext) -> AsyncIterator[ServerInfo]:
    """Serve a ``wss://127.0.0.1:PORT/ws`` echo server.

    Args:
        server_context: Server TLS context, e.g. ``make_tls().server_context``.

    Yields:
        The server's :class:`~.servers.ServerInfo`.
    """
    async with echo_server(ssl_context=server_context) as info:
        yield info
