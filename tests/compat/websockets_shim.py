"""Import shim: ``websockets.asyncio.*``, ``websockets.exceptions``,
``websockets.http11`` and ``websockets.datastructures`` are picows.websockets
(the last two topped up with the real modules' other names); the rest of
the websockets package stays the real one.

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
    "websockets.datastructures": "picows.websockets.datastructures",
    "websockets.http11": "picows.websockets.http11",
    "websockets.asyncio.connection": "picows.websockets.asyncio.connection",
    "websockets.asyncio.client": "picows.websockets.asyncio.client",
    "websockets.asyncio.server": "picows.websockets.asyncio.server",
    "websockets.asyncio.router": "picows.websockets.asyncio.router",
}


def _compatibility_module() -> None:
    """Test files older than the installed websockets import
    websockets.asyncio.compatibility, which websockets dropped with Python
    < 3.11: provide its names."""
    try:
        importlib.import_module("websockets.asyncio.compatibility")
        return
    except ImportError:
        pass
    import asyncio
    import builtins
    import types
    module = types.ModuleType("websockets.asyncio.compatibility")
    module.TimeoutError = builtins.TimeoutError  # type: ignore[attr-defined]
    module.asyncio_timeout = asyncio.timeout  # type: ignore[attr-defined]
    module.asyncio_timeout_at = asyncio.timeout_at  # type: ignore[attr-defined]
    module.aiter = builtins.aiter  # type: ignore[attr-defined]
    module.anext = builtins.anext  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module


def install() -> None:
    # The exceptions first: the real package's modules import them.
    ours = importlib.import_module(ALIASES["websockets.exceptions"])
    sys.modules["websockets.exceptions"] = ours
    import websockets
    import websockets.asyncio
    websockets.exceptions = ours  # type: ignore[attr-defined]
    for name, target in ALIASES.items():
        module = importlib.import_module(target)
        if name in ("websockets.datastructures", "websockets.http11"):
            # Ours for what both define (Request, Headers...), the real
            # module's for the rest (its parser functions).
            real = importlib.import_module(name)
            for attr, value in vars(real).items():
                if not attr.startswith("__") and not hasattr(module, attr):
                    setattr(module, attr, value)
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, module)
    _compatibility_module()


install()
