# _PerMessageDeflate: permessage-deflate (RFC 7692) for one connection.
#
# Negotiation is plain Python (handshake.py); what it agreed on arrives here
# once, and this unit owns both zlib streams from then on. The protocol
# inflates each frame of a compressed message through inflate(); the
# transport compresses whole messages through deflate().


@cython.final
cdef class _PerMessageDeflate:

    def __init__(self, params, uint64_t max_size):
        """`params`: the negotiated parameters (handshake.DeflateParams);
        `max_size`: the most an inflated frame may be (max_frame_size)."""
        self.header = params.header
        self._max_size = max_size
        # We inflate with the largest window, which reads any window size.
        self._inflater = zlib.decompressobj(-15)
        # zlib cannot make raw deflate streams with an 8-bit window (it uses
        # 9), so with that limit we send uncompressed messages, which RFC
        # 7692 allows.
        self.deflates = params.local_max_window_bits > 8
        if self.deflates:
            self._deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED,
                                              -params.local_max_window_bits)
            self._flush_mode = (zlib.Z_FULL_FLUSH if params.local_no_context_takeover
                                else zlib.Z_SYNC_FLUSH)

    cdef bytes deflate(self, message):
        """The payload of one compressed message (RFC 7692 7.2.1): deflate,
        flush, and drop the trailing 00 00 ff ff."""
        cdef bytes out = self._deflater.compress(message) + self._deflater.flush(self._flush_mode)
        if out.endswith(b"\x00\x00\xff\xff"):
            out = out[:PyBytes_GET_SIZE(out) - 4]
        if not out:
            out = b"\x00"
        return out

    cdef bytes inflate(self, const uint8_t* payload, size_t size, bint fin):
        """Inflate one frame of a compressed message (RFC 7692 7.2.2); the
        output counts against max_frame_size, so a small frame cannot expand
        into unbounded memory. The result stays alive until the next call
        (the delivered WSFrame points into it)."""
        cdef bytes out
        try:
            out = self._inflate_into(
                b"", PyMemoryView_FromMemory(<char*>payload, size, PyBUF_READ))
            # After a BFINAL block the peer should have started a new stream
            # with an empty stored block (RFC 7692 7.2.3.4); if it did not,
            # the tail would not fit a fresh stream, and there is nothing to
            # flush anyway.
            if fin and not self._inflater_fresh:
                out = self._inflate_into(out, b"\x00\x00\xff\xff")
        except zlib.error as exc:
            raise _WSProtocolError(1007, f"invalid compressed data: {exc} "
                                   f"(RFC 7692)") from None
        self._inflated = out
        return out

    cdef bytes _inflate_into(self, bytes out, data):
        cdef uint64_t limit = self._max_size
        if limit >= <uint64_t>PY_SSIZE_T_MAX - 1:
            limit = <uint64_t>PY_SSIZE_T_MAX - 2   # what zlib's max_length takes
        while True:
            if len(data):
                self._inflater_fresh = False
            out += self._inflater.decompress(data, limit + 1 - PyBytes_GET_SIZE(out))
            if self._inflater.unconsumed_tail or <uint64_t>PyBytes_GET_SIZE(out) > limit:
                raise _WSProtocolError(1009, f"inflated frame is larger than "
                                       f"max_frame_size {self._max_size}")
            if not self._inflater.eof:
                return out
            # The peer ended its deflate stream with a BFINAL block (RFC 7692
            # 7.2.3.4): what follows starts a new stream, which may still
            # refer back to what came before.
            data = self._inflater.unused_data
            if out:
                window = out[max(PyBytes_GET_SIZE(out) - 32768, 0):]
                self._inflater = zlib.decompressobj(-15, zdict=window)
            else:
                self._inflater = zlib.decompressobj(-15)
            self._inflater_fresh = True
            if not data:
                return out
