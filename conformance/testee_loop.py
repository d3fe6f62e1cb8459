"""Event loop choice shared by the two testees (run as scripts, so this
module is imported from their directory)."""
import asyncio


def install_loop(choice: str) -> str:
    """Install the chosen event loop policy; return its name."""
    if choice in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise
        else:
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            return "uvloop"
    return "asyncio"
