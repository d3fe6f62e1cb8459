# broadcast(): one message to many connections, the frame built once.
#
# Fan-out is the hot path of chat, game and market-data servers. A server
# frame is not masked, so the same bytes serve every server-side connection:
# they are built once and written to each socket (straight to its fd when
# nothing is queued, else handed to the transport as the same bytes object;
# under picows' TLS each connection encrypts them). A connection that
# negotiated permessage-deflate compresses its own copy (its compressor has
# its own context), except connections without context takeover: for those
# a compressed message depends only on the message and the compressor's
# settings, so it is compressed once per distinct settings (a shared
# compressor, reset after each message) and the same frame goes to all of
# them. A client-side connection masks its own.

# Compressors shared by broadcast(), one per shared_key of _PerMessageDeflate.
cdef dict _shared_deflaters = {}


cdef bytes _shared_compressed_frame(_PerMessageDeflate deflate, int opcode,
                                    const uint8_t* data, size_t size):
    """The server frame of a message compressed without context takeover,
    by the shared compressor for `deflate`'s settings."""
    cdef _PerMessageDeflate shared = _shared_deflaters.get(deflate.shared_key)
    cdef uint8_t* payload
    cdef Py_ssize_t n
    cdef size_t hlen
    cdef bytes frame
    if shared is None:
        shared = _PerMessageDeflate.__new__(_PerMessageDeflate)
        shared._copy_sending_settings(deflate)
        _shared_deflaters[deflate.shared_key] = shared
    n = shared.deflate(data, size, &payload)
    hlen = _header_size(<size_t>n, False)
    frame = PyBytes_FromStringAndSize(NULL, hlen + n)
    _write_header(<uint8_t*>PyBytes_AS_STRING(frame), <uint8_t>opcode, <size_t>n,
                  True, True, NULL)
    memcpy(PyBytes_AS_STRING(frame) + hlen, payload, n)
    return frame


def broadcast(transports, msg_type, message, *, compress=True):
    """Send ``message`` as one frame to every transport in ``transports``
    that can take it now, building the frame once.

    With permessage-deflate, connections that compress without context
    takeover (``server_no_context_takeover``, which a server asks for with
    ``WSCompression(server_no_context_takeover=True)``) share one
    compressed frame: the message is compressed once, not once per
    connection. Other compressing connections compress their own copy.

    Skipped, and returned: transports that are disconnected or closing (a
    CLOSE was sent), that are paused for writing (``pause_writing`` was
    called and ``resume_writing`` not yet: their buffers are full, and
    broadcasting would buffer without bound), or that are in the middle of
    sending a fragmented message of their own.

    :param transports: an iterable of :any:`WSTransport`.
    :param msg_type: ``WSMsgType.TEXT`` or ``WSMsgType.BINARY``.
    :param message: a bytes-like object (a str is sent UTF-8 encoded).
    :param compress: False sends it uncompressed everywhere (see
        :any:`WSTransport.send`).
    :return: the list of transports skipped.
    """
    cdef int opcode = msg_type
    cdef WSTransport ws
    cdef _PerMessageDeflate deflate
    cdef Py_buffer view
    cdef bytes frame = None
    cdef bytes zframe = None
    cdef object zkey = None
    cdef dict zframes = None
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
            deflate = ws._deflate
            if ws.is_client:
                ws.send(<WSMsgType>opcode, message, compress=compress)
                continue
            if (deflate is not None and deflate.deflates and compress
                    and <size_t>view.len >= deflate.min_size):
                if deflate.shared_key is None:
                    ws.send(<WSMsgType>opcode, message)
                    continue
                # Usually one key for a whole server: remember the last.
                if zframe is None or deflate.shared_key != zkey:
                    if zframes is None:
                        zframes = {}
                    zkey = deflate.shared_key
                    zframe = zframes.get(zkey)
                    if zframe is None:
                        zframe = _shared_compressed_frame(
                            deflate, opcode, <uint8_t*>view.buf, view.len)
                        zframes[zkey] = zframe
                _write_prebuilt(ws, opcode, zframe)
                continue
            if frame is None:
                frame = _server_frame(opcode, <uint8_t*>view.buf, view.len)
            _write_prebuilt(ws, opcode, frame)
    finally:
        PyBuffer_Release(&view)
    return skipped


cdef bytes _server_frame(int opcode, const uint8_t* payload, size_t size):
    cdef size_t hlen = _header_size(size, False)
    cdef bytes frame = PyBytes_FromStringAndSize(NULL, hlen + size)
    cdef uint8_t* p = <uint8_t*>PyBytes_AS_STRING(frame)
    _write_header(p, <uint8_t>opcode, size, True, False, NULL)
    memcpy(p + hlen, payload, size)
    return frame


cdef inline int _write_prebuilt(WSTransport ws, int opcode, bytes frame) except -1:
    """Write a frame built for every server-side connection to one."""
    cdef uint8_t* p = <uint8_t*>PyBytes_AS_STRING(frame)
    cdef size_t total = <size_t>PyBytes_GET_SIZE(frame)
    ws._may_send(<WSMsgType>opcode, True)
    if ws._tls is not None:
        ws._tls._encrypt(p, total)
    elif ws._writer.fd >= 0:
        ws._writer.write(p, total)
    else:
        ws._writer.write_object(frame)
    return 0
