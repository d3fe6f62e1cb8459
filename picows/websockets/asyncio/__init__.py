"""The asyncio API of websockets: ``client``, ``server``, ``connection``, ``router``."""
