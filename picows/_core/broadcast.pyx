# broadcast(): one message to many connections, the frame built once.
#
# Fan-out is the hot path of chat, game and market-data servers. A server
# frame is not masked, so the same bytes serve every server-side connection:
# they are built once and written to each socket (straight to its fd when
# nothing is queued, else handed to the transport as the same bytes object;
# under picows' TLS each connection encrypts them). A connection that
# negotiated permessage-deflate compresses its own copy (its compressor has
# its own context); a client-side connection masks its own.


def broadcast(transports, msg_type, message):
    """Send ``message`` as one frame to every transport in ``transports``
    that can take it now, building the frame once.

    Skipped, and returned: transports that are disconnected or closing (a
    CLOSE was sent), that are paused for writing (``pause_writing`` was
    called and ``resume_writing`` not yet: their buffers are full, and
    broadcasting would buffer without bound), or that are in the middle of
    sending a fragmented message of their own.

    :param transports: an iterable of :any:`WSTransport`.
    :param msg_type: ``WSMsgType.TEXT`` or ``WSMsgType.BINARY``.
    :param message: a bytes-like object (a str is sent UTF-8 encoded).
    :return: the list of transports skipped.
    """
    cdef int opcode = msg_type
    cdef WSTransport ws
    cdef Py_buffer view
    cdef bytes frame = None
    cdef uint8_t* p
    cdef size_t hlen, total = 0
    cdef list skipped = []
    if opcode != WSMsgType.TEXT and opcode != WSMsgType.BINARY:
        raise ValueError(f"broadcast sends TEXT or BINARY messages, not {msg_type!r}")
    if isinstance(message, str):
        message = (<str>message).encode("utf-8")
    PyObject_GetBuffer(message, &view, PyBUF_SIMPLE)
    try:
        for t in transports:
            ws = <WSTransport?>t
            if (ws._closed or ws._write_closed or ws.is_close_frame_sent
                    or ws._write_paused or ws._sending_fragments):
                skipped.append(ws)
                continue
            if ws.is_client or (ws._deflate is not None and ws._deflate.deflates):
                ws.send(<WSMsgType>opcode, message)
                continue
            if frame is None:
                hlen = _header_size(view.len, False)
                total = hlen + view.len
                frame = PyBytes_FromStringAndSize(NULL, total)
                p = <uint8_t*>PyBytes_AS_STRING(frame)
                _write_header(p, <uint8_t>opcode, view.len, True, False, NULL)
                memcpy(p + hlen, view.buf, view.len)
            ws._may_send(<WSMsgType>opcode, True)
            p = <uint8_t*>PyBytes_AS_STRING(frame)
            if ws._tls is not None:
                ws._tls._encrypt(p, total)
            elif ws._writer.fd >= 0:
                ws._writer.write(p, total)
            else:
                ws._writer.write_object(frame)
    finally:
        PyBuffer_Release(&view)
    return skipped
