# Constants and states of the core, as C enums (typed, visible to the C
# compiler, and declared once for every unit).

cdef enum:
    # Read buffer: the least free space offered to a read, and the size
    # above which an empty buffer shrinks back (its first size is the
    # read_buffer_init_size option, 16 KiB by default).
    _MIN_FREE_SPACE = 4 * 1024
    _SHRINK_ABOVE = 256 * 1024
    # Client masks are taken from a pool of os.urandom bytes this large.
    _MASK_POOL_SIZE = 4096
    _MAX_CONTROL_PAYLOAD = 125
    # Server frames at least this large go out with the header and the
    # payload gathered by the kernel (sendmsg), without a copy.
    _GATHER_WRITE_MIN = 16 * 1024
    # Frames at least this large written through the transport reuse one
    # bytearray (fresh allocations that size cost page faults per frame).
    _REUSE_WRITE_MIN = 64 * 1024
    # A send buffer larger than this shrinks after a spike.
    _WBUF_KEEP = 256 * 1024
    # The TLS read window, in the thread's read buffer (one per thread, so
    # its size costs no memory per connection): a 100 KiB message in one
    # read, not a small first read and a large second one (a loop iteration
    # more; on asyncio a few Python calls more). After a read that filled it
    # (larger messages), the next window is larger still.
    _TLS_READ_BUFFER = 256 * 1024
    _TLS_READ_BUFFER_LARGE = 1024 * 1024
    # The most the ssl module reads or writes in one call (it takes an int).
    _TLS_MAX_CALL = 1 << 30


# Connection states (transitions in the protocol's theory of operation).
cdef enum _State:
    HANDSHAKE = 0       # waiting for the upgrade request / response
    OPEN = 1            # frames flow both ways
    CLOSE_SENT = 2      # we sent CLOSE (user or auto); still reading
    FAILED = 3          # we failed the connection; reading only to find CLOSE
    CLOSE_RECEIVED = 4  # the peer's CLOSE arrived; nothing more is parsed
    DISCONNECTED = 5


# Frame parser states.
cdef enum _FrameState:
    FS_HEADER = 0       # waiting for a whole header (2 to 14 bytes)
    FS_PAYLOAD = 1      # header parsed; payload bytes arriving


# States of picows' own TLS layer.
cdef enum _TLSState:
    TLS_HANDSHAKE = 0   # TLS handshake in progress; app writes are queued
    TLS_OPEN = 1        # records flow; the app protocol is connected
    TLS_CLOSED = 2      # closed, aborted or failed: nothing more is sent


# States of the incremental UTF-8 validator that matter outside it.
cdef enum _Utf8:
    UTF8_ACCEPT = 0
    UTF8_REJECT = 1
