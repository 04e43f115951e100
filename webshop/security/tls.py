"""The TLS context of this process's outgoing HTTPS requests (webhook deliveries, the test payment
service's webhooks to the shop)."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_tls_context() -> ssl.SSLContext:
    """httpx's default client context (certificates and host names verified against certifi's CA
    bundle; ``trust_env=False``, so no ``SSL_CERT_FILE`` from the environment), built once per process.

    Loading the CA bundle costs tens of milliseconds of CPU, and each sender opened a new HTTP client,
    with a new context, every time it started (every app start, every test). A client context may be
    shared by any number of connections and threads (Python's ``ssl`` documentation).
    """
    return httpx.create_ssl_context(trust_env=False)
