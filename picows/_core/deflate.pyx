# _PerMessageDeflate: permessage-deflate (RFC 7692) for one connection.
#
# Negotiation is plain Python (compression.py); what it agreed on arrives
# here once, and this unit owns both streams from then on. The protocol
# inflates each frame of a compressed message through inflate(); the
# transport compresses whole messages through deflate().
#
# Deflating drives zlib's C API too: a message is compressed into our own
# buffer after _DEFLATE_HEADROOM bytes, where the transport writes the frame
# header, so the frame goes out in one write with no Python object made.
# With the isal package (backend "isal", or "auto" when installed) ISA-L
# compresses instead, through its Python module.
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
    # Room before a compressed message for its frame header (at most 14
    # bytes, masked), so the frame goes out of one buffer in one write.
    _DEFLATE_HEADROOM = 16


cdef object _isal_module(settings):
    """isal's zlib-like module when it makes what this connection sends."""
    if settings.backend == "zlib" or settings.level == 0:
        return None
    module = _isal_zlib()
    if module is None and settings.backend == "isal":
        raise ValueError("backend='isal' needs the isal package")
    return module


cdef inline int _isal_level(int level) noexcept:
    # ISA-L has levels 0-3 (0 is its fastest and weakest): 1-3 -> 1, 4-6 -> 2,
    # 7-9 -> 3; zlib's default (-1, that is 6) -> 2.
    if level < 0:
        return 2
    return (level + 2) // 3


@cython.final
cdef class _PerMessageDeflate:

    def __cinit__(self):
        self._out = NULL
        self._out_cap = 0
        self._zin_ready = False
        self._zout_ready = False
        self._dout = NULL
        self._dout_cap = 0

    def __init__(self, params, uint64_t max_size):
        """`params`: the negotiated parameters (compression.DeflateParams);
        `max_size`: the most an inflated frame may be (max_frame_size)."""
        settings = params.settings
        self.header = params.header
        self._max_size = max_size
        # zlib cannot make raw deflate streams with an 8-bit window (it uses
        # 9), so with that limit we send uncompressed messages, which RFC
        # 7692 allows.
        self.deflates = params.local_max_window_bits > 8
        self.min_size = settings.min_size
        self._level = settings.level
        self._mem_level = settings.mem_level
        self._deflate_wbits = params.local_max_window_bits
        self._inflate_wbits = params.remote_max_window_bits
        self.no_context_takeover = params.local_no_context_takeover
        self._isal = _isal_module(settings)
        self._py_deflater = None
        self.shared_key = None
        if self.deflates and self.no_context_takeover:
            self.shared_key = (self._isal is not None, self._level, self._mem_level,
                               self._deflate_wbits)

    def __dealloc__(self):
        self.release()
        if self._dout != NULL:
            PyMem_Free(self._dout)
            self._dout = NULL

    cdef void release(self) noexcept:
        """Free both streams and the output buffers (the connection is gone).
        Use recreates them."""
        if self._zin_ready:
            inflateEnd(&self._zin)
            self._zin_ready = False
        if self._zout_ready:
            deflateEnd(&self._zout)
            self._zout_ready = False
        if self._out != NULL:
            PyMem_Free(self._out)
            self._out = NULL
            self._out_cap = 0
        if self._dout != NULL:
            PyMem_Free(self._dout)
            self._dout = NULL
            self._dout_cap = 0
        self._py_deflater = None

    # -- sending ---------------------------------------------------------------

    cdef Py_ssize_t deflate(self, const uint8_t* data, size_t size,
                            uint8_t** out) except -1:
        """Compress one whole message (RFC 7692 7.2.1): deflate, flush, drop
        the trailing 00 00 ff ff. Set `out` to the payload, which has
        _DEFLATE_HEADROOM writable bytes before it, and return its size. It
        stays valid until the next call."""
        cdef size_t n = 0
        if self._isal is not None:
            self._py_deflate(data, size, &n)
        else:
            self._zlib_deflate(data, size, &n)
        if n >= 4 and memcmp(self._dout + _DEFLATE_HEADROOM + n - 4,
                             b"\x00\x00\xff\xff", 4) == 0:
            n -= 4
        if n == 0:
            # An empty message: one empty fixed block (RFC 7692 7.2.3.6).
            self._dout[_DEFLATE_HEADROOM] = 0
            n = 1
        out[0] = self._dout + _DEFLATE_HEADROOM
        return <Py_ssize_t>n

    cdef uint8_t* _reserve_dout(self, size_t size) except NULL:
        """Room for `size` bytes after the headroom, growing (or, after a
        large message, shrinking) the buffer."""
        cdef size_t need = size + _DEFLATE_HEADROOM
        cdef uint8_t* p
        if self._dout_cap > _OUT_KEEP and need * 4 < self._dout_cap:
            PyMem_Free(self._dout)
            self._dout = NULL
            self._dout_cap = 0
        if need > self._dout_cap:
            if need < _OUT_INITIAL:
                need = _OUT_INITIAL
            p = <uint8_t*>PyMem_Realloc(self._dout, need)
            if p == NULL:
                raise MemoryError()
            self._dout = p
            self._dout_cap = need
        return self._dout

    cdef int _zlib_deflate(self, const uint8_t* data, size_t size, size_t* out_len) except -1:
        cdef z_stream* z = &self._zout
        cdef int rc
        cdef size_t space
        if not self._zout_ready:
            # Made on the first message sent: about 260 KiB with a 15-bit
            # window and memLevel 8, which an idle connection need not hold.
            memset(z, 0, sizeof(z_stream))
            rc = deflateInit2(z, self._level, Z_DEFLATED, -self._deflate_wbits,
                              self._mem_level, Z_DEFAULT_STRATEGY)
            if rc != Z_OK:
                raise MemoryError() if rc == Z_MEM_ERROR else ValueError(
                    f"deflateInit2 failed ({rc})")
            self._zout_ready = True
        # deflateBound is for a whole stream; a sync flush adds at most an
        # empty stored block and the bits pending before it.
        self._reserve_dout(deflateBound(z, size) + 16)
        while True:
            if z.avail_in == 0 and size:
                z.next_in = data
                z.avail_in = <unsigned int>(size if size < _ZCHUNK else _ZCHUNK)
                data += z.avail_in
                size -= z.avail_in
            space = self._dout_cap - _DEFLATE_HEADROOM - out_len[0]
            if space == 0:
                self._reserve_dout(2 * (out_len[0] + 64))
                space = self._dout_cap - _DEFLATE_HEADROOM - out_len[0]
            z.next_out = self._dout + _DEFLATE_HEADROOM + out_len[0]
            z.avail_out = <unsigned int>(space if space < _ZCHUNK else _ZCHUNK)
            before = z.avail_out
            rc = deflate(z, Z_SYNC_FLUSH)
            out_len[0] += before - z.avail_out
            if rc != Z_OK and rc != Z_BUF_ERROR:
                raise RuntimeError(f"zlib deflate failed ({rc})")
            # Done when all input is in and the flush fit (avail_out left).
            if size == 0 and z.avail_in == 0 and z.avail_out != 0:
                break
        if self.no_context_takeover:
            deflateReset(z)
        return 0

    cdef int _py_deflate(self, const uint8_t* data, size_t size, size_t* out_len) except -1:
        """Through isal's compressobj: two Python calls and their bytes per
        message, which its speed repays many times over."""
        cdef bytes head, tail
        cdef Py_ssize_t n1, n2
        if self._py_deflater is None:
            self._py_deflater = self._isal.compressobj(
                _isal_level(self._level), self._isal.DEFLATED, -self._deflate_wbits,
                self._mem_level)
        head = self._py_deflater.compress(PyMemoryView_FromMemory(
            <char*>data, <Py_ssize_t>size, PyBUF_READ))
        tail = self._py_deflater.flush(self._isal.Z_FULL_FLUSH if self.no_context_takeover
                                       else self._isal.Z_SYNC_FLUSH)
        n1 = PyBytes_GET_SIZE(head)
        n2 = PyBytes_GET_SIZE(tail)
        self._reserve_dout(<size_t>(n1 + n2))
        memcpy(self._dout + _DEFLATE_HEADROOM, PyBytes_AS_STRING(head), n1)
        memcpy(self._dout + _DEFLATE_HEADROOM + n1, PyBytes_AS_STRING(tail), n2)
        out_len[0] = <size_t>(n1 + n2)
        return 0

    cdef int _copy_sending_settings(self, _PerMessageDeflate other) except -1:
        """Compress as `other` does (a compressor shared by broadcast())."""
        self.deflates = other.deflates
        self._level = other._level
        self._mem_level = other._mem_level
        self._deflate_wbits = other._deflate_wbits
        self._inflate_wbits = 15
        self.no_context_takeover = other.no_context_takeover
        self._isal = other._isal
        self.shared_key = other.shared_key
        return 0

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
            # The window the peer agreed to compress with (15 unless we
            # asked for less): a reference past it fails with 1007.
            rc = inflateInit2(&self._zin, -self._inflate_wbits)
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
