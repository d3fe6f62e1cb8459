"""Logging goes to ``picows.<logger_name>``: 'server' and 'client' by default."""
from __future__ import annotations

import logging

import pytest

from picows import WSCloseCode, WSError, WSListener, WSMsgType, ws_connect

from tests.support import RecordingListener, connect, serve, wait_for


FORMATTER = logging.Formatter()


def logged(caplog, logger: str, marker: str):
    """Records of ``logger`` whose text (message and traceback) contains marker."""
    return [r for r in caplog.records if r.name == logger and marker in FORMATTER.format(r)]


class Boom(Exception):
    pass


class RaisingOnFrame(RecordingListener):
    def on_ws_frame(self, transport, frame) -> None:
        if frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            raise Boom("client-listener-boom-7f3a")
        super().on_ws_frame(transport, frame)


@pytest.mark.parametrize("logger_name", [None, "my_server"])
async def test_factory_exception_is_500_and_logged(net, caplog, logger_name):
    caplog.set_level(logging.DEBUG, logger="picows")

    def route(request):
        raise Boom("factory-boom-91c2")

    kwargs = {} if logger_name is None else {"logger_name": logger_name}
    async with serve(net, route, **kwargs) as server:
        with pytest.raises(WSError, match="500"):
            await wait_for(ws_connect(WSListener, server.url(), **net.client_kwargs()))
    logger = f"picows.{logger_name or 'server'}"
    records = logged(caplog, logger, "factory-boom-91c2")
    assert records, f"nothing on {logger}: {[(r.name, r.getMessage()) for r in caplog.records]}"
    assert any("Traceback" in FORMATTER.format(r) for r in records)
    assert all(r.levelno >= logging.ERROR for r in records)


@pytest.mark.parametrize("logger_name", [None, "my_client"])
async def test_client_listener_exception_logged(net, caplog, logger_name):
    caplog.set_level(logging.DEBUG, logger="picows")
    kwargs = {} if logger_name is None else {"logger_name": logger_name}
    async with serve(net) as server, \
            connect(net, server.url(), RaisingOnFrame, **kwargs) as (transport, _):
        transport.send(WSMsgType.TEXT, b"echo me")
        with pytest.raises(Boom):
            await wait_for(transport.wait_disconnected())
    logger = f"picows.{logger_name or 'client'}"
    assert logged(caplog, logger, "client-listener-boom-7f3a"), \
        f"nothing on {logger}: {[(r.name, r.getMessage()) for r in caplog.records]}"


async def test_server_listener_exception_logged_with_custom_name(net, caplog):
    caplog.set_level(logging.DEBUG, logger="picows")
    async with serve(net, lambda request: RaisingOnFrame(), logger_name="srv_x") as server, \
            connect(net, server.url()) as (transport, _):
        transport.send(WSMsgType.TEXT, b"raise")
        await wait_for(transport.wait_disconnected())
    assert logged(caplog, "picows.srv_x", "client-listener-boom-7f3a")
    assert not [r for r in caplog.records if r.name == "picows.server"]


async def test_only_picows_loggers(net, caplog):
    """A plain session logs nothing at WARNING or above, and only under picows.*."""
    caplog.set_level(logging.DEBUG)
    async with serve(net) as server, connect(net, server.url()) as (transport, client):
        transport.send(WSMsgType.TEXT, b"hi")
        await client.next_frame()
        transport.send_close(WSCloseCode.OK)
        await wait_for(transport.wait_disconnected())
    picows_records = [r for r in caplog.records if r.name.startswith("picows")]
    assert all(r.name in ("picows.server", "picows.client") for r in picows_records), \
        {r.name for r in picows_records}
    assert not [r for r in picows_records if r.levelno >= logging.WARNING], \
        [(r.name, r.getMessage()) for r in picows_records]
