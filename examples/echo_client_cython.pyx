# cython: language_level=3
"""An echo client whose listener is written in Cython.

It reads frames through ``WSFrame.payload_ptr`` / ``payload_size`` and sends
with ``WSTransport.send_reuse_external_buffer``: no Python calls on the frame
path. Build it, then run it against examples/echo_server.py::

    cd examples
    python setup_cython_example.py build_ext --inplace
    python -c "import echo_client_cython; echo_client_cython.main()" [URL]
"""
import asyncio
import sys

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy

from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport

from picows import WSCloseCode, ws_connect

# send_reuse_external_buffer writes the frame header in place, in front of the
# payload: at most 2 + 8 bytes, plus the 4-byte masking key a client adds
# (RFC 6455 section 5.2). The client also masks the payload in place, which is
# why the message is copied into our own scratch buffer first.
cdef enum:
    CLIENT_HEADROOM = 14


cdef class EchoClientListener(WSListener):
    cdef char* _buf
    cdef size_t _cap
    cdef bytes _message
    cdef public object reply  # Future: the echoed payload, as bytes

    def __cinit__(self):
        self._buf = NULL
        self._cap = 0

    def __init__(self, bytes message=b"Hello world"):
        self._message = message
        self.reply = asyncio.get_running_loop().create_future()

    def __dealloc__(self):
        free(self._buf)

    cdef int _send(self, WSTransport transport, WSMsgType msg_type,
                   const char* data, size_t size) except -1:
        cdef size_t needed = CLIENT_HEADROOM + size
        cdef char* buf
        if needed > self._cap:
            buf = <char*>realloc(self._buf, needed)
            if buf == NULL:
                raise MemoryError()
            self._buf = buf
            self._cap = needed
        if size:
            memcpy(self._buf + CLIENT_HEADROOM, data, size)
        transport.send_reuse_external_buffer(msg_type, self._buf + CLIENT_HEADROOM, size)
        return 0

    cpdef on_ws_connected(self, WSTransport transport):
        self._send(transport, WSMsgType.TEXT, PyBytes_AS_STRING(self._message),
                   <size_t>PyBytes_GET_SIZE(self._message))

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        if frame.msg_type != WSMsgType.TEXT and frame.msg_type != WSMsgType.BINARY:
            return
        if not self.reply.done():
            # Copy now: the frame points into picows's read buffer.
            self.reply.set_result(frame.payload_ptr[:frame.payload_size])
        transport.send_close(WSCloseCode.OK)
        transport.disconnect()

    cpdef on_ws_disconnected(self, WSTransport transport):
        if not self.reply.done():
            self.reply.set_exception(ConnectionError("disconnected before the echo"))


async def echo(url, bytes message=b"Hello world", ssl_context=None):
    """Send ``message`` to an echo server at ``url``; return the reply (bytes)."""
    transport, listener = await ws_connect(lambda: EchoClientListener(message), url,
                                           ssl_context=ssl_context)
    try:
        return await listener.reply
    finally:
        transport.disconnect()
        await transport.wait_disconnected()


def main(url=None):
    url = url or (sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9001/")
    reply = asyncio.run(echo(url))
    print(f"Echo reply: {reply.decode()}")
