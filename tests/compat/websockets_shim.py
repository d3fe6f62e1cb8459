"""Import shim: ``websockets.asyncio.*`` and ``websockets.exceptions`` are
picows.websockets; the rest of the websockets package stays the real one.

Imported by the ``conftest.py`` that ``run_websockets_suite.py`` writes next
to websockets' tests, before any test module imports websockets. The real
package's own modules (``websockets.frames``, ``websockets.http11``...) then
see our exceptions too, so what they raise is what the tests catch.
"""
from __future__ import annotations

import importlib
import sys

ALIASES = {
    "websockets.exceptions": "picows.websockets.exceptions",
    "websockets.asyncio.connection": "picows.websockets.asyncio.connection",
    "websockets.asyncio.client": "picows.websockets.asyncio.client",
    "websockets.asyncio.server": "picows.websockets.asyncio.server",
    "websockets.asyncio.router": "picows.websockets.asyncio.router",
}


def install() -> None:
    # The exceptions first: the real package's modules import them.
    ours = importlib.import_module(ALIASES["websockets.exceptions"])
    sys.modules["websockets.exceptions"] = ours
    import websockets
    import websockets.asyncio
    websockets.exceptions = ours  # type: ignore[attr-defined]
    for name, target in ALIASES.items():
        module = importlib.import_module(target)
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, module)


install()
