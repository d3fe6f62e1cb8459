cdef extern from "zlib.h" nogil:
    # The inflating side drives zlib directly: output goes straight into our
    # buffer, and a stream end costs a reset, not a new Python object.
    ctypedef struct z_stream:
        const uint8_t* next_in
        unsigned int avail_in
        uint8_t* next_out
        unsigned int avail_out
        const char* msg
        void* zalloc
        void* zfree
        void* opaque
    int Z_OK, Z_STREAM_END, Z_NEED_DICT, Z_BUF_ERROR, Z_MEM_ERROR, Z_SYNC_FLUSH
    int Z_DEFLATED, Z_DEFAULT_STRATEGY
    int inflateInit2(z_stream* strm, int window_bits)
    int inflate(z_stream* strm, int flush)
    # Declared in zlib.h (exported since zlib 1.2.5.2): back to the start of
    # a stream, keeping the sliding window, so a stream after a BFINAL block
    # may refer back to everything inflated before it.
    int inflateResetKeep(z_stream* strm)
    int inflateEnd(z_stream* strm)
    # The sending side too: compressed output goes into our buffer, just
    # after room for the frame header, and out as one write.
    int deflateInit2(z_stream* strm, int level, int method, int window_bits,
                     int mem_level, int strategy)
    int deflate(z_stream* strm, int flush)
    int deflateReset(z_stream* strm)
    int deflateEnd(z_stream* strm)
    unsigned long deflateBound(z_stream* strm, unsigned long source_len)


cdef class _PerMessageDeflate:
    # permessage-deflate (RFC 7692) of one connection: the negotiated
    # parameters and both zlib streams. The protocol inflates through it,
    # the transport deflates through it; nobody else touches the streams.
    # Both streams are created on first use, so an idle connection holds no
    # zlib memory (docs/security.md); both go in connection_lost.
    cdef readonly str header        # the negotiated Sec-WebSocket-Extensions
    cdef readonly bint deflates     # False: we send uncompressed (8-bit window)
    cdef uint64_t _max_size         # an inflated frame's limit (max_frame_size)
    cdef z_stream _zin
    cdef bint _zin_ready            # _zin is initialised (inflateInit2)
    cdef bint _zin_fresh            # at the start of a stream, no input since
    cdef uint8_t* _out              # inflated frame; a delivered WSFrame points in
    cdef size_t _out_cap
    cdef bint _out_message_done     # the last inflate() ended its message
    cdef readonly size_t min_size   # shorter messages go uncompressed
    # The compressor: zlib's (_zout), or isal's compressobj (_py_deflater);
    # made on the first message sent.
    cdef z_stream _zout
    cdef bint _zout_ready
    cdef object _py_deflater
    cdef object _isal                  # isal's module when it is the backend
    cdef int _level
    cdef int _mem_level
    cdef int _deflate_wbits
    cdef int _inflate_wbits
    cdef readonly bint no_context_takeover  # our compressor forgets each message
    cdef uint8_t* _dout             # compressed message, after _DEFLATE_HEADROOM
    cdef size_t _dout_cap
    # Connections whose compressed frames are interchangeable (no context
    # takeover, same window and settings) share this key; None otherwise.
    cdef readonly object shared_key

    cdef Py_ssize_t inflate(self, const uint8_t* payload, size_t size, bint fin,
                            const uint8_t** out) except -1
    cdef int _inflate_some(self, const uint8_t* data, size_t size, size_t* out_len) except -1
    cdef int _grow_out(self, size_t out_len) except -1
    cdef Py_ssize_t deflate(self, const uint8_t* data, size_t size,
                            uint8_t** out) except -1
    cdef int _zlib_deflate(self, const uint8_t* data, size_t size, size_t* out_len) except -1
    cdef int _py_deflate(self, const uint8_t* data, size_t size, size_t* out_len) except -1
    cdef uint8_t* _reserve_dout(self, size_t size) except NULL
    cdef int _copy_sending_settings(self, _PerMessageDeflate other) except -1
    cdef void release(self) noexcept
