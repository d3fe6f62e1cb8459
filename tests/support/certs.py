"""TLS contexts with a certificate the tests make themselves (trustme), for
127.0.0.1 and localhost; made once per process. trustme is imported on first
use, so the fuzz targets (which never use TLS) do not need it."""
from __future__ import annotations

import functools
import ssl
from typing import Any, NamedTuple

HOSTS = ("127.0.0.1", "localhost")


class TLSContexts(NamedTuple):
    ca: Any                    # trustme.CA
    server: ssl.SSLContext     # presents the certificate
    client: ssl.SSLContext     # trusts the CA, checks host names


@functools.lru_cache(maxsize=None)
def tls_contexts() -> TLSContexts:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert(*HOSTS)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client_ctx)
    return TLSContexts(ca, server_ctx, client_ctx)
