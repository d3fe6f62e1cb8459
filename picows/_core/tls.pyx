# _TLSLayer: picows' own TLS, on both loops.
#
# asyncio's own TLS (sslproto) is pure Python: a few Python calls per read
# and per write around each OpenSSL call, more than the rest of a small
# echo; uvloop's is Cython but still copies every record into a bytes object
# and goes through its own transport's write path. picows does TLS itself
# instead: _TLSLayer is the BufferedProtocol of the TCP transport and drives
# an ssl.SSLObject over two MemoryBIOs. Ciphertext is read into a scratch
# buffer and decrypted from there; plaintext is read by OpenSSL straight
# into the websocket protocol's read buffer; frames are encrypted from the
# sender's buffer and the ciphertext goes to the socket at once when the
# transport has nothing queued. The websocket protocol sees a _TLSTransport,
# an asyncio.Transport with the same extra info as asyncio's TLS transport
# (ssl_object, peercert, cipher, ...).
#
# The record path. The handshake, certificate checks, close_notify and every
# extra-info answer go through the ssl module. Once the handshake is done,
# records are read and written by calling OpenSSL's SSL_read / SSL_write
# directly on the SSL* that the ssl module's object holds (_attach_openssl),
# resolved at import from the libssl that the _ssl module itself links
# (includes/openssl.h): no Python call, no argument parsing, no GIL release
# and no bytes object per record. The SSL's memory BIOs are replaced by two
# of ours (includes/tlsbio.h), which decrypt from the socket's read buffer
# and send from the one buffer SSL_write's records go into: no copy of the
# ciphertext in and out of a memory BIO. The pointers are read out of
# CPython's private structs, so this is done only on the CPython versions
# whose layout is known (3.8-3.13) and checked on every connection (the
# SSL's BIOs must be the MemoryBIOs' BIOs); otherwise, or with
# PICOWS_TLS_SSL_MODULE=1, the layer calls the ssl module's C methods
# (SSLObject.read/write, MemoryBIO.read/write) as before.
#
# States (_TLSState, self._state):
#
#   from            event                                   to
#   TLS_HANDSHAKE   do_handshake() completes: the app        TLS_OPEN
#                   protocol is connected, queued writes go
#   TLS_HANDSHAKE   handshake error, timeout, EOF            TLS_CLOSED (abort)
#   TLS_OPEN        close() (close_notify sent), abort(),    TLS_CLOSED
#                   a TLS error, connection_lost
#
# App writes during TLS_HANDSHAKE (and while a renegotiation is pending)
# are queued in _pending and sent in order once records can flow; in
# TLS_CLOSED nothing is read, written or queued.

# asyncio's default for ssl_handshake_timeout.
cdef double _TLS_HANDSHAKE_TIMEOUT = 60.0

# The most plaintext one TLS record carries (RFC 8446 5.1).
cdef enum:
    _TLS_RECORD = 16 * 1024
# Plaintext encrypted per SSL_write before the ciphertext is sent: bounds
# the outgoing BIO and the scratch buffer of a large frame.
cdef int _TLS_WRITE_CHUNK = 256 * 1024


try:
    from _ssl import MemoryBIO as _ssl_MemoryBIO, _SSLSocket as _ssl_SSLSocket
except ImportError:
    _ssl_MemoryBIO = _ssl_SSLSocket = None


cdef bint _openssl_available():
    """Whether the record path can call OpenSSL directly (see above)."""
    if os.environ.get("PICOWS_TLS_SSL_MODULE"):
        return False
    import sys
    if not ((3, 8) <= sys.version_info[:2] <= (3, 13)) or sys.implementation.name != "cpython":
        return False
    try:
        import _ssl
        path = _ssl.__file__
    except (ImportError, AttributeError):
        # Built into the interpreter: nothing to dlopen.
        return False
    return picows_openssl_load(os.fsencode(path)) == 0


cdef bint _OPENSSL = _openssl_available()


def _tls_uses_openssl():
    """Whether new TLS connections drive OpenSSL directly (tests, benchmarks)."""
    return _OPENSSL and not os.environ.get("PICOWS_TLS_SSL_MODULE")


cdef class _TLSLayer:
    """The TCP transport's protocol when picows does TLS (internal)."""

    def __cinit__(self):
        self._rfd = -1
        self._ssl = NULL
        self._rbio = NULL
        self._wbio = NULL
        self._in = NULL
        self._out = NULL

    def __dealloc__(self):
        # Our references; the SSL keeps its own as long as it lives.
        if self._rbio != NULL:
            picows_ossl.BIO_free(self._rbio)
        if self._wbio != NULL:
            picows_ossl.BIO_free(self._wbio)

    def __init__(self, ssl_context, bint server_side, server_hostname,
                 WSProtocolCore app, handshake_timeout=None):
        self._context = ssl_context
        self._server_side = server_side
        self._server_hostname = server_hostname or None
        self._app = app
        self._handshake_timeout = (_TLS_HANDSHAKE_TIMEOUT if handshake_timeout is None
                                   else handshake_timeout)
        self._state = TLS_HANDSHAKE
        self._cview = _ReadBufferView()
        self._pview = _ReadBufferView()
        self._wview = _ReadBufferView()
        self.app_transport = _TLSTransport(self)
        self.handshake_waiter = None

    @property
    def app_protocol(self):
        """The websocket protocol on top (None once the connection is lost)."""
        return self._app

    @property
    def record_path(self):
        """"openssl" when records go through OpenSSL's C API directly,
        "ssl-module" when through the ssl module's methods (tests)."""
        return "openssl" if self._ssl != NULL else "ssl-module"

    # -- protocol of the TCP transport -----------------------------------------

    def connection_made(self, transport):
        self._loop = asyncio.get_running_loop()
        self._tcp = transport
        if not self._server_side:
            # ws_connect waits for it (and gets the handshake's exception).
            self.handshake_waiter = self._loop.create_future()
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        try:
            if (not self._server_side and self._context.check_hostname
                    and not self._server_hostname):
                # What SSLSocket (the loop's TLS) refuses; SSLObject does not,
                # and would skip the host name check.
                raise ValueError("check_hostname requires server_hostname")
            self.ssl_object = self._context.wrap_bio(
                self._incoming, self._outgoing, server_side=self._server_side,
                server_hostname=self._server_hostname)
        except Exception as exc:
            # E.g. check_hostname without a server_hostname: ws_connect
            # raises it (the loop's own TLS raises it from create_connection).
            self._handshake_failed(exc)
            return
        # The C object under ssl.SSLObject: same read/write, no Python frame.
        sslobj = getattr(self.ssl_object, "_sslobj", self.ssl_object)
        self._ssl_read = sslobj.read
        self._ssl_write = sslobj.write
        self._ssl_pending = sslobj.pending
        self._incoming_write = self._incoming.write
        self._outgoing_read = self._outgoing.read
        # Ciphertext straight to the socket (see writer.pyx).
        self._writer = _SocketWriter(
            transport, type(transport).__module__ in ("asyncio.selector_events", "uvloop.loop"))
        self._direct_reads(transport)
        if self._handshake_timeout is not None and self._handshake_timeout > 0:
            self._handshake_timer = self._loop.call_later(
                self._handshake_timeout, self._on_handshake_timeout)
        self._do_handshake()

    @cython.binding(False)
    @cython.always_allow_keywords(False)
    def get_buffer(self, Py_ssize_t sizehint):
        self._read_window()
        return self._cview

    @cython.binding(False)
    @cython.always_allow_keywords(False)
    def buffer_updated(self, Py_ssize_t nbytes):
        self._received(nbytes)

    def _asyncio_read_ready(self):
        """asyncio's _SelectorSocketTransport._read_ready__get_buffer for
        this layer, installed as the transport's _read_ready_cb (see
        _direct_reads): the same steps and the same errors, without its
        Python frame, the get_buffer and buffer_updated calls and recv_into's
        argument parsing."""
        cdef Py_ssize_t n
        cdef int err
        tcp = self._tcp
        if tcp._conn_lost:
            return
        try:
            self._read_window()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            tcp._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return
        n = picows_recv(self._rfd, self._cview.ptr, <size_t>self._cview.size)
        if n < 0:
            err = picows_errno()
            if picows_retry_errno(err):
                return
            # OSError(errno, ...) is the subclass recv_into raises
            # (ConnectionResetError, ...).
            tcp._fatal_error(OSError(err, os.strerror(err)),
                             "Fatal read error on socket transport")
            return
        if n == 0:
            tcp._read_ready__on_eof()
            return
        try:
            self._received(n)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            tcp._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")

    cdef _direct_reads(self, transport):
        """On asyncio's selector loop, read the socket from C (see
        _asyncio_read_ready). Safe for the same reason as direct writes
        (writer.pyx): the transport closes the socket only after
        connection_lost, and removes its reader before that.
        PICOWS_NO_DIRECT_READ=1 turns it off."""
        if (not PICOWS_HAVE_SEND or os.environ.get("PICOWS_NO_DIRECT_READ")
                or type(transport).__name__ != "_SelectorSocketTransport"
                or type(transport).__module__ != "asyncio.selector_events"
                or getattr(transport, "_read_ready_cb", None) is None
                or not hasattr(transport, "_conn_lost")):
            return
        sock = transport.get_extra_info("socket")
        if sock is None:
            return
        try:
            self._rfd = sock.fileno()
        except Exception:
            return
        if self._rfd >= 0:
            transport._read_ready_cb = self._asyncio_read_ready

    cdef int _read_window(self) except -1:
        """The window the next read goes into, in self._cview."""
        cdef Py_ssize_t size = _TLS_READ_BUFFER_LARGE if self._read_full else _TLS_READ_BUFFER
        cdef picows_tlsbio* st = <picows_tlsbio*>self._in
        cdef Py_ssize_t lead = <Py_ssize_t>st.len if st != NULL else 0
        # The thread's read buffer (includes/scratch.h): buffer_updated
        # decrypts from it (or copies it into the BIO) before anything else
        # can use it. A partial record left over goes in front, so records
        # stay contiguous (includes/tlsbio.h).
        cdef char* buf = picows_scratch(size + lead)
        if buf == NULL:
            raise MemoryError()
        if lead:
            memcpy(buf, st.data, lead)
        self._lead = lead
        self._cview.ptr = buf + lead
        self._cview.size = size
        return 0

    cdef int _received(self, Py_ssize_t nbytes) except -1:
        """`nbytes` were read into the window."""
        cdef picows_tlsbio* st = <picows_tlsbio*>self._in
        if nbytes <= 0 or self._state == TLS_CLOSED:
            return 0
        self._read_full = nbytes == self._cview.size
        self._cview.size = nbytes
        if st != NULL:
            # Our BIO reads the thread's buffer for the length of this call.
            st.data = self._cview.ptr - self._lead
            st.len = <size_t>(self._lead + nbytes)
            try:
                self._feed_app()
            finally:
                if self._state == TLS_CLOSED:
                    st.len = 0  # never decrypted now
                if picows_tlsbio_keep(st) < 0:
                    st.len = 0
                    self._fatal(MemoryError())
            return 0
        self._incoming_write(self._cview)
        if self._state == TLS_HANDSHAKE:
            self._do_handshake()
        else:
            self._feed_app()
        return 0

    def eof_received(self):
        if self._state == TLS_HANDSHAKE:
            self._handshake_failed(ConnectionResetError(
                "connection closed during the TLS handshake"))
            return False
        if self._app_connected:
            return self._app.eof_received()
        return False

    def connection_lost(self, exc):
        self._shut()
        self._cancel_handshake_timer()
        if exc is None:
            exc = self._exc
        if self.handshake_waiter is not None and not self.handshake_waiter.done():
            self.handshake_waiter.set_exception(
                exc if exc is not None else
                ConnectionResetError("connection lost during the TLS handshake"))
        if self._app_connected:
            self._app_connected = False
            self._app.connection_lost(exc)
        # The websocket protocol holds the app transport, which holds the
        # layer: let go of both, or the connection ends in a reference cycle
        # that only the garbage collector frees. (The app transport keeps the
        # layer for get_extra_info.)
        self._app = None
        self.app_transport = None

    def pause_writing(self):
        if self._app_connected:
            self._app.pause_writing()

    def resume_writing(self):
        if self._app_connected:
            self._app.resume_writing()

    # -- handshake --------------------------------------------------------------

    cdef _do_handshake(self):
        try:
            self.ssl_object.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except Exception as exc:
            self._flush()
            self._handshake_failed(exc)
            return
        self._flush()
        self._state = TLS_OPEN
        self._attach_openssl()
        self._cancel_handshake_timer()
        if self.handshake_waiter is not None and not self.handshake_waiter.done():
            self.handshake_waiter.set_result(None)
        self._app_connected = True
        self._app.connection_made(self.app_transport)
        if self._pending is not None:
            pending, self._pending = self._pending, None
            for data in pending:
                self.write(data)
        # Data that came with the end of the handshake.
        self._feed_app()

    cdef _attach_openssl(self):
        """Take the SSL* and BIO*s out of the ssl module's objects for the
        record path, when that is known to be safe (see the top)."""
        cdef void* s
        cdef void* rbio
        cdef void* wbio
        cdef void* bio_in
        cdef void* bio_out
        if not _OPENSSL or os.environ.get("PICOWS_TLS_SSL_MODULE"):
            return
        sslobj = getattr(self.ssl_object, "_sslobj", None)
        if (type(sslobj) is not _ssl_SSLSocket or type(self._incoming) is not _ssl_MemoryBIO
                or type(self._outgoing) is not _ssl_MemoryBIO):
            return
        # PySSLSocket: {PyObject *Socket; SSL *ssl; PySSLContext *ctx; ...}:
        # its ctx must be the context the object reports, before its ssl is
        # trusted at all.
        if picows_ssl_field(<PyObject*>sslobj, 2) != <void*>sslobj.context:
            return
        s = picows_ssl_field(<PyObject*>sslobj, 1)
        rbio = picows_ssl_field(<PyObject*>self._incoming, 0)
        wbio = picows_ssl_field(<PyObject*>self._outgoing, 0)
        if s == NULL or rbio == NULL or wbio == NULL:
            return
        if picows_ossl.SSL_get_rbio(s) != rbio or picows_ossl.SSL_get_wbio(s) != wbio:
            return
        bio_in = picows_tlsbio_new(0)
        bio_out = picows_tlsbio_new(1)
        if bio_in == NULL or bio_out == NULL or picows_tlsbio_adopt(s, bio_in, bio_out) < 0:
            if bio_in != NULL:
                picows_ossl.BIO_free(bio_in)
            if bio_out != NULL:
                picows_ossl.BIO_free(bio_out)
            picows_ossl.ERR_clear_error()
            return
        self._ssl = s
        self._rbio = bio_in
        self._wbio = bio_out
        self._in = picows_tlsbio_state(bio_in)
        self._out = picows_tlsbio_state(bio_out)

    cdef object _openssl_error(self, int err, unsigned long code):
        """The ssl.SSLError of a failed SSL_read / SSL_write."""
        cdef char buf[256]
        if code == 0:
            return ssl.SSLError(err, f"TLS error (SSL_get_error {err})")
        picows_ossl.ERR_error_string_n(code, buf, sizeof(buf))
        return ssl.SSLError(err, buf.decode("ascii", "replace"))

    cdef _handshake_failed(self, exc):
        self._cancel_handshake_timer()
        if self._app is not None:
            self._app._logger.debug("TLS handshake failed: %r", exc)
        self._exc = exc
        if self.handshake_waiter is not None and not self.handshake_waiter.done():
            self.handshake_waiter.set_exception(exc)
        self._shut()
        self._tcp.abort()

    def _on_handshake_timeout(self):
        self._handshake_timer = None
        if self._state == TLS_HANDSHAKE:
            self._handshake_failed(ConnectionAbortedError(
                f"TLS handshake is taking longer than {self._handshake_timeout} "
                f"seconds: aborting the connection"))

    cdef _cancel_handshake_timer(self):
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None

    # -- data -------------------------------------------------------------------

    cdef int _feed_app(self) except -1:
        """Decrypt what the incoming BIO holds into the app's read buffer."""
        cdef WSProtocolCore app = self._app
        cdef _ReadBufferView view = self._pview
        cdef Py_ssize_t n
        cdef int err
        cdef unsigned long code
        while self._app_connected and self._state != TLS_CLOSED and not app._closing:
            app._read_window(&view.ptr, &view.size)
            if view.size > _TLS_MAX_CALL:
                view.size = _TLS_MAX_CALL
            if self._ssl != NULL:
                n = picows_ssl_io(0, self._ssl, view.ptr, <int>view.size, &err, &code)
                if n <= 0:
                    if err == PICOWS_SSL_ERROR_WANT_READ:
                        break
                    if err != PICOWS_SSL_ERROR_ZERO_RETURN:
                        self._fatal(self._openssl_error(err, code))
                        return 0
                    n = 0
            else:
                try:
                    n = self._ssl_read(view.size, view)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    n = 0
                except Exception as exc:
                    self._fatal(exc)
                    return 0
            if n <= 0:
                # close_notify (the ssl module reads 0 bytes): the peer
                # sends no more.
                self._flush()
                if not app.eof_received():
                    self.close()
                return 0
            app._data_in(n)
            if self._ssl != NULL:
                if ((<picows_tlsbio*>self._in).len == 0
                        and picows_ossl.SSL_pending(self._ssl) == 0):
                    break
            elif self._incoming.pending == 0 and self._ssl_pending() == 0:
                break
        # Post-handshake messages (key updates) may need an answer.
        self._flush()
        if self._pending is not None and self._state != TLS_CLOSED:
            pending, self._pending = self._pending, None
            for data in pending:
                self.write(data)
        return 0

    cdef int _encrypt2(self, const uint8_t* header, size_t hlen,
                       const uint8_t* payload, size_t size) except -1:
        """Like _encrypt, for a frame's header and payload in two places
        (only on OpenSSL's path): the header and the payload's first bytes
        go out in one full record, the rest straight from the payload, so
        that at most one record's worth is copied, and one send() carries it
        all."""
        cdef uint8_t first[_TLS_RECORD]
        cdef size_t n = min(size, <size_t>_TLS_RECORD - hlen)
        memcpy(first, header, hlen)
        memcpy(first + hlen, payload, n)
        self._encrypt_ex(first, hlen + n, size == n)
        if size > n:
            # Queued behind the first part if that had to wait.
            self._encrypt_ex(payload + n, size - n, True)
        return 0

    cdef int _encrypt(self, const uint8_t* data, size_t size) except -1:
        """Encrypt and send `size` bytes at `data` (the sender's buffer)."""
        return self._encrypt_ex(data, size, True)

    cdef int _encrypt_ex(self, const uint8_t* data, size_t size, bint flush) except -1:
        """_encrypt; the records stay in the outgoing BIO unless `flush`
        (more follow at once)."""
        cdef _ReadBufferView view = self._wview
        cdef size_t done = 0, chunk
        cdef int n, err
        cdef unsigned long code
        if self._state == TLS_CLOSED:
            return 0
        if self._state == TLS_HANDSHAKE or self._pending is not None:
            self._queue(PyBytes_FromStringAndSize(<char*>data, size))
            return 0
        if self._ssl != NULL:
            while done < size:
                chunk = size - done
                if chunk > <size_t>_TLS_WRITE_CHUNK + _TLS_WRITE_CHUNK // 4:
                    # (A small tail goes with the last chunk: no send of its own.)
                    chunk = _TLS_WRITE_CHUNK
                n = picows_ssl_io(1, self._ssl, data + done, <int>chunk, &err, &code)
                if n <= 0:
                    if (err == PICOWS_SSL_ERROR_WANT_READ
                            or (err == PICOWS_SSL_ERROR_SYSCALL and code == 0)):
                        # A renegotiation (TLS 1.2) must finish first. (A
                        # SYSCALL error without an error: the handshake met
                        # application data that the peer sent before its
                        # handshake messages, which must be read first;
                        # OpenSSL says nothing more. Memory BIOs have no
                        # system calls that could fail.)
                        self._queue(PyBytes_FromStringAndSize(<char*>data + done, size - done))
                        break
                    self._fatal(self._openssl_error(err, code))
                    return 0
                done += <size_t>n
                if done < size:
                    # Bounded BIO: send each chunk's records as they come.
                    self._flush()
            if flush or self._pending is not None:
                self._flush()
            return 0
        while done < size:
            # The ssl module takes at most INT_MAX bytes per call.
            chunk = min(size - done, <size_t>_TLS_MAX_CALL)
            view.ptr = <char*>data + done
            view.size = chunk
            try:
                self._ssl_write(view)
            except (ssl.SSLWantReadError, ssl.SSLEOFError):
                # A renegotiation (TLS 1.2) must finish first (the ssl
                # module calls the SYSCALL case above an EOF: no EOF can
                # come through a write to memory BIOs).
                self._queue(PyBytes_FromStringAndSize(<char*>data + done, size - done))
                break
            except Exception as exc:
                self._fatal(exc)
                return 0
            done += chunk
        self._flush()
        return 0

    cdef _queue(self, bytes data):
        if self._pending is None:
            self._pending = []
        self._pending.append(data)

    cdef int _flush(self) except -1:
        """Send the ciphertext the outgoing BIO holds."""
        cdef picows_tlsbio* st = <picows_tlsbio*>self._out
        cdef const char* buf
        cdef size_t size
        if self._state == TLS_CLOSED:
            return 0
        if st == NULL:
            self._writer.write_bytes(self._outgoing_read())
            return 0
        if st.len:
            # Valid until the next write into one of our BIOs: the writer
            # copies what the socket does not take before anything else runs.
            buf = picows_tlsbio_take(st, &size)
            self._writer.write(<const uint8_t*>buf, size)
        return 0

    cdef _shut(self):
        """TLS_CLOSED: nothing more is read, written or queued."""
        cdef size_t size
        self._state = TLS_CLOSED
        if self._writer is not None:
            self._writer.close()
        if self._out != NULL:
            # Nothing more is sent: let the thread's send buffer go.
            picows_tlsbio_take(<picows_tlsbio*>self._out, &size)

    cdef _fatal(self, exc):
        if self._app is not None:
            self._app._logger.debug("TLS error: %r", exc)
        self._exc = exc
        self._shut()
        self._tcp.abort()

    # -- what _TLSTransport calls ------------------------------------------------

    def write(self, data):
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self._encrypt(<uint8_t*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    def close(self):
        if self._state == TLS_CLOSED:
            return
        if self._state == TLS_OPEN:
            # Our close_notify; the peer's is not waited for.
            try:
                self.ssl_object.unwrap()
            except ssl.SSLError:
                pass
            self._flush()
        self._shut()
        self._tcp.close()

    def abort(self):
        self._shut()
        self._tcp.abort()

    def is_closing(self):
        return self._state == TLS_CLOSED or self._tcp.is_closing()


class _TLSTransport(asyncio.Transport):
    """What the websocket protocol and ``WSTransport.underlying_transport``
    see when picows does TLS: an asyncio transport like asyncio's own TLS one."""

    def __init__(self, layer):
        super().__init__()
        self._layer = layer

    def get_extra_info(self, name, default=None):
        layer = self._layer
        sslobj = layer.ssl_object
        if name == "ssl_object":
            return sslobj
        if name == "sslcontext":
            return layer._context
        if sslobj is not None:
            if name == "peercert":
                return sslobj.getpeercert()
            if name == "cipher":
                return sslobj.cipher()
            if name == "compression":
                return sslobj.compression()
        return layer._tcp.get_extra_info(name, default)

    def write(self, data):
        self._layer.write(data)

    def writelines(self, list_of_data):
        self._layer.write(b"".join(list_of_data))

    def can_write_eof(self):
        return False

    def write_eof(self):
        raise NotImplementedError("TLS transports cannot write EOF")

    def close(self):
        self._layer.close()

    def abort(self):
        self._layer.abort()

    def is_closing(self):
        return self._layer.is_closing()

    def pause_reading(self):
        self._layer._tcp.pause_reading()

    def resume_reading(self):
        self._layer._tcp.resume_reading()

    def is_reading(self):
        return self._layer._tcp.is_reading()

    def set_write_buffer_limits(self, high=None, low=None):
        self._layer._tcp.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self):
        return self._layer._tcp.get_write_buffer_limits()

    def get_write_buffer_size(self):
        return self._layer._tcp.get_write_buffer_size()

    def set_protocol(self, protocol):
        raise NotImplementedError("picows does not support replacing its protocol")

    def get_protocol(self):
        return self._layer._app

    def __repr__(self):
        return f"<picows TLS transport over {self._layer._tcp!r}>"


class TLSLayer(_TLSLayer, asyncio.BufferedProtocol):
    """The TCP protocol when picows does TLS (internal; see _TLSLayer)."""
    __slots__ = ()
