"""A deadline for request headers on the HTTP server's connections.

uvicorn (the server BentoML runs) times out idle keep-alive connections but waits
forever for a request whose headers never complete, so a client trickling bytes holds a
connection (and its memory) indefinitely. :func:`install_header_timeout` adds the
missing rule to uvicorn's HTTP protocol classes: a connection that has not delivered a
complete request head ``seconds`` after it opened, or after its previous response, is
closed. It is called when the service starts in a worker (before uvicorn accepts
connections), never at import. The body deadline is the gate's (``FIDELITE_BODY_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Any

logger = logging.getLogger("fidelite.serving")
_PROTOCOLS = (
    ("uvicorn.protocols.http.h11_impl", "H11Protocol"),
    ("uvicorn.protocols.http.httptools_impl", "HttpToolsProtocol"),
)


def _arm(protocol: Any, seconds: float) -> None:
    cycle = protocol.cycle

    def expire() -> None:
        transport = protocol.transport
        # the same cycle as when armed: no new request head arrived since
        if protocol.cycle is cycle and transport is not None and not transport.is_closing():
            logger.warning("closing a connection that sent no complete request in %gs", seconds)
            transport.close()

    previous = getattr(protocol, "_fidelite_header_timer", None)
    if previous is not None:
        previous.cancel()
    protocol._fidelite_header_timer = asyncio.get_running_loop().call_later(seconds, expire)


def install_header_timeout(seconds: float) -> list[str]:
    """Give uvicorn's HTTP protocols a header deadline of ``seconds``.

    Returns
    -------
    list of str
        The protocol classes changed (idempotent: each is changed once).
    """
    patched = []
    for module_name, class_name in _PROTOCOLS:
        try:
            protocol_class = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            continue
        if getattr(protocol_class, "_fidelite_header_timeout", None) is not None:
            protocol_class._fidelite_header_timeout = seconds
            patched.append(class_name)
            continue
        made, complete = protocol_class.connection_made, protocol_class.on_response_complete

        def connection_made(self: Any, transport: Any, _made: Any = made) -> None:
            _made(self, transport)
            _arm(self, type(self)._fidelite_header_timeout)

        def on_response_complete(self: Any, _complete: Any = complete) -> None:
            _complete(self)
            if not self.transport.is_closing():
                _arm(self, type(self)._fidelite_header_timeout)

        protocol_class.connection_made = connection_made
        protocol_class.on_response_complete = on_response_complete
        protocol_class._fidelite_header_timeout = seconds
        patched.append(class_name)
    return patched
