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
    int inflateInit2(z_stream* strm, int window_bits)
    int inflate(z_stream* strm, int flush)
    # Declared in zlib.h (exported since zlib 1.2.5.2): back to the start of
    # a stream, keeping the sliding window, so a stream after a BFINAL block
    # may refer back to everything inflated before it.
    int inflateResetKeep(z_stream* strm)
    int inflateEnd(z_stream* strm)


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
    cdef object _deflater           # zlib.compressobj, or None until first use
    cdef int _deflate_wbits
    cdef int _flush_mode

    cdef Py_ssize_t inflate(self, const uint8_t* payload, size_t size, bint fin,
                            const uint8_t** out) except -1
    cdef int _inflate_some(self, const uint8_t* data, size_t size, size_t* out_len) except -1
    cdef int _grow_out(self, size_t out_len) except -1
    cdef bytes deflate(self, message)
    cdef void release(self) noexcept
