cdef class _PerMessageDeflate:
    # permessage-deflate (RFC 7692) of one connection: the negotiated
    # parameters and both zlib streams. The protocol inflates through it,
    # the transport deflates through it; nobody else touches the streams.
    cdef readonly str header        # the negotiated Sec-WebSocket-Extensions
    cdef readonly bint deflates     # False: we send uncompressed (8-bit window)
    cdef uint64_t _max_size         # an inflated frame's limit (max_frame_size)
    cdef object _inflater
    cdef bint _inflater_fresh
    cdef bytes _inflated            # the last output, alive while a frame points in
    cdef object _deflater
    cdef int _flush_mode

    cdef bytes inflate(self, const uint8_t* payload, size_t size, bint fin)
    cdef bytes _inflate_into(self, bytes out, data)
    cdef bytes deflate(self, message)
