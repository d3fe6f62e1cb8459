# _PerMessageDeflate: permessage-deflate (RFC 7692) for one connection.
#
# Negotiation is plain Python (handshake.py); what it agreed on arrives here
# once, and this unit owns both zlib streams from then on. The protocol
# inflates each frame of a compressed message through inflate(); the
# transport compresses whole messages through deflate().
#
# Inflating drives zlib's C API: the output goes straight into one buffer of
# ours (grown geometrically, never past max_frame_size + 1), and the work is
# linear in the input whatever its shape. A peer may end a deflate stream
# with a BFINAL block anywhere (RFC 7692 7.2.3.4); the next stream then
# starts at once, in place, with inflateResetKeep, which keeps zlib's sliding
# window: a later stream may refer back up to 32 KiB, across stream ends and
# (with context takeover) across messages.

cdef enum:
    # An output buffer above this is freed once its message was delivered.
    _OUT_KEEP = 64 * 1024
    _OUT_INITIAL = 4096
    # zlib counts in unsigned int: feed and fill at most this much per call.
    _ZCHUNK = 1 << 30


@cython.final
cdef class _PerMessageDeflate:

    def __cinit__(self):
        self._out = NULL
        self._out_cap = 0
        self._zin_ready = False

    def __init__(self, params, uint64_t max_size):
        """`params`: the negotiated parameters (handshake.DeflateParams);
        `max_size`: the most an inflated frame may be (max_frame_size)."""
        self.header = params.header
        self._max_size = max_size
        # The inflater is kept between messages even when the peer promised
        # no context takeover: a peer that refers back anyway still works
        # (as zlib's own stream always did), and only a connection that
        # received compressed data holds it.
        # zlib cannot make raw deflate streams with an 8-bit window (it uses
        # 9), so with that limit we send uncompressed messages, which RFC
        # 7692 allows.
        self.deflates = params.local_max_window_bits > 8
        self._deflater = None
        self._deflate_wbits = params.local_max_window_bits
        self._flush_mode = (zlib.Z_FULL_FLUSH if params.local_no_context_takeover
                            else zlib.Z_SYNC_FLUSH)

    def __dealloc__(self):
        self.release()

    cdef void release(self) noexcept:
        """Free both streams and the output buffer (the connection is gone,
        or the inflater is idle). Use recreates them."""
        if self._zin_ready:
            inflateEnd(&self._zin)
            self._zin_ready = False
        if self._out != NULL:
            PyMem_Free(self._out)
            self._out = NULL
            self._out_cap = 0
        self._deflater = None

    # -- sending ---------------------------------------------------------------

    cdef bytes deflate(self, message):
        """The payload of one compressed message (RFC 7692 7.2.1): deflate,
        flush, and drop the trailing 00 00 ff ff."""
        if self._deflater is None:
            # Created on the first message sent: about 260 KiB with zlib's
            # defaults, which an idle connection need not hold.
            self._deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED,
                                              -self._deflate_wbits)
        cdef bytes out = self._deflater.compress(message) + self._deflater.flush(self._flush_mode)
        if out.endswith(b"\x00\x00\xff\xff"):
            out = out[:PyBytes_GET_SIZE(out) - 4]
        if not out:
            out = b"\x00"
        return out

    # -- receiving -------------------------------------------------------------

    cdef Py_ssize_t inflate(self, const uint8_t* payload, size_t size, bint fin,
                            const uint8_t** out) except -1:
        """Inflate one frame of a compressed message (RFC 7692 7.2.2) into
        our buffer; set `out` to it and return the size. The output counts
        against max_frame_size, so a small frame cannot expand into
        unbounded memory. It stays valid until the next call (the delivered
        WSFrame points into it)."""
        cdef size_t out_len = 0
        cdef int rc
        if not self._zin_ready:
            memset(&self._zin, 0, sizeof(z_stream))
            # The largest window reads any window size the peer uses.
            rc = inflateInit2(&self._zin, -15)
            if rc != Z_OK:
                raise MemoryError()
            self._zin_ready = True
            self._zin_fresh = True
        if self._out_cap > _OUT_KEEP and self._out_message_done:
            # After a large message: no need to keep its memory.
            PyMem_Free(self._out)
            self._out = NULL
            self._out_cap = 0
        if self._out == NULL:
            self._grow_out(0)
        self._out_message_done = fin
        self._inflate_some(payload, size, &out_len)
        if fin and not self._zin_fresh:
            # When the message ends right after a BFINAL block, the peer
            # should have added a 0x00 to start a new stream for the tail
            # (RFC 7692 7.2.1, 7.2.3.4); without it the tail would start an
            # unfinished stored block there, and there is nothing to flush.
            self._inflate_some(<const uint8_t*>b"\x00\x00\xff\xff", 4, &out_len)
        out[0] = self._out
        return <Py_ssize_t>out_len

    cdef int _inflate_some(self, const uint8_t* data, size_t size, size_t* out_len) except -1:
        """Inflate `data` onto the output at `out_len`, across any number of
        stream ends."""
        cdef z_stream* z = &self._zin
        cdef size_t before_in, before_out, space
        cdef int rc
        while True:
            if z.avail_in == 0 and size:
                z.next_in = data
                z.avail_in = <unsigned int>(size if size < _ZCHUNK else _ZCHUNK)
                data += z.avail_in
                size -= z.avail_in
            if out_len[0] == self._out_cap:
                self._grow_out(out_len[0])
            space = self._out_cap - out_len[0]
            z.next_out = self._out + out_len[0]
            z.avail_out = <unsigned int>(space if space < _ZCHUNK else _ZCHUNK)
            before_in = z.avail_in
            before_out = z.avail_out
            rc = inflate(z, Z_SYNC_FLUSH)
            out_len[0] += before_out - z.avail_out
            if before_in != z.avail_in:
                self._zin_fresh = False
            if out_len[0] > self._max_size:
                raise _WSProtocolError(1009, f"inflated frame is larger than "
                                       f"max_frame_size {self._max_size}")
            if rc == Z_STREAM_END:
                # A BFINAL block ended the stream; a new one may follow at
                # once and still refer back into the window.
                inflateResetKeep(z)
                self._zin_fresh = True
            elif rc == Z_BUF_ERROR or (rc == Z_OK and z.avail_in == 0
                                       and z.avail_out != 0):
                # No progress possible or all input taken: more output room
                # is the only thing that could help, and there is some.
                if z.avail_in == 0 and size == 0:
                    return 0
                if z.avail_out != 0 and before_in == z.avail_in:
                    raise _WSProtocolError(1007, "invalid compressed data: stuck "
                                           "(RFC 7692)")
            elif rc == Z_MEM_ERROR:
                raise MemoryError()
            elif rc != Z_OK:
                msg = (z.msg if z.msg != NULL else b"error").decode("ascii", "replace")
                raise _WSProtocolError(1007, f"invalid compressed data: {msg} "
                                       f"(RFC 7692)")
            if z.avail_in == 0 and size == 0 and z.avail_out != 0:
                return 0

    cdef int _grow_out(self, size_t out_len) except -1:
        """Room after `out_len`: double the buffer, up to max_frame_size + 1
        (one byte more than allowed is how an oversized output shows)."""
        cdef uint64_t cap = self._out_cap * 2 if self._out_cap else _OUT_INITIAL
        cdef uint64_t limit = <uint64_t>PY_SSIZE_T_MAX
        if self._max_size < limit:
            limit = self._max_size + 1
        cdef uint8_t* p
        if cap > limit:
            cap = limit
        if cap <= out_len:
            raise _WSProtocolError(1009, f"inflated frame is larger than "
                                   f"max_frame_size {self._max_size}")
        p = <uint8_t*>PyMem_Realloc(self._out, <size_t>cap)
        if p == NULL:
            raise MemoryError()
        self._out = p
        self._out_cap = <size_t>cap
        return 0
