# The public C interface of picows: user Cython code can
#     from picows.picows cimport WSListener, WSTransport, WSFrame, WSMsgType
# and read frames and send without going through Python calls.

from cpython.object cimport PyObject
from libc.stdint cimport uint8_t, uint32_t, uint64_t

# Declarations of the internal units (picows/_core/), shipped with this file.
include "_core/consts.pxd"


cpdef enum WSMsgType:
    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


cpdef enum WSAutoPingStrategy:
    PING_WHEN_IDLE = 1      # ping when nothing arrived for the idle timeout
    PING_PERIODICALLY = 2   # ping every idle timeout, whatever arrives


cpdef enum WSCloseCode:
    NO_INFO = 0
    OK = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    ABNORMAL_CLOSURE = 1006
    INVALID_TEXT = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014


cdef class WSFrame:
    # Points into the protocol's read buffer: valid only during on_ws_frame.
    cdef char* payload_ptr
    cdef readonly size_t payload_size
    cdef readonly size_t tail_size
    cdef WSMsgType msg_type
    cdef readonly bint fin
    cdef readonly bint rsv1
    cdef readonly bint last_in_buffer
    # The WSMsgType member of msg_type (borrowed: the members live as long
    # as the module), read from Python through a member slot, which
    # CPython's specializing interpreter reads inline.
    cdef PyObject* _msg_type_member

    cpdef bytes get_payload_as_bytes(self)
    cpdef str get_payload_as_utf8_text(self)
    cpdef str get_payload_as_ascii_text(self)
    cpdef object get_payload_as_memoryview(self)
    cpdef object get_close_code(self)
    cpdef object get_close_message(self)
    cpdef object get_close_reason(self)


cdef class WSListener:
    cpdef on_ws_connected(self, WSTransport transport)
    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame)
    cpdef on_ws_disconnected(self, WSTransport transport)
    cpdef pause_writing(self)
    cpdef resume_writing(self)
    cpdef send_user_specific_ping(self, WSTransport transport)
    cpdef is_user_specific_pong(self, WSFrame frame)


cdef class WSProtocolCore


cdef class _ReadBufferView:
    # A writable window of a buffer of ours, handed out as a Python buffer.
    cdef char* ptr
    cdef Py_ssize_t size


include "_core/writer.pxd"
include "_core/deflate.pxd"
include "_core/options.pxd"
include "_core/tls.pxd"


cdef class WSTransport:
    cdef readonly object underlying_transport
    cdef readonly bint is_client
    cdef readonly object request
    cdef readonly object response
    cdef readonly bint is_close_frame_sent
    cdef readonly object close_frame_received
    cdef readonly object extensions
    cdef readonly bint is_secure

    # The close handshake: each CLOSE as a WSCloseInfo, None until it moved.
    cdef object _close_sent
    cdef object _close_recv
    cdef bint _close_recv_first

    cdef WSProtocolCore _protocol
    cdef object _disconnected_future
    cdef object _logger
    cdef _SocketWriter _writer  # plain TCP; also the path of queued/TLS writes
    cdef _TLSLayer _tls         # picows' own TLS (default asyncio loop), else None
    cdef bint _closed
    cdef bint _write_closed
    cdef uint8_t* _wbuf
    cdef size_t _wbuf_size
    cdef bytearray _big_out     # reused for large frames written through the transport
    cdef uint32_t _pongs_sent
    cdef object _pending_pings      # futures of measure_roundtrip_time
    cdef bint _write_paused         # between pause_writing and resume_writing
    cdef object _listener_exc
    cdef _PerMessageDeflate _deflate   # None: not negotiated
    cdef bint _sending_fragments

    cdef int send_message(self, WSMsgType msg_type, object message, bint fin, bint rsv1,
                          bint compress) except -1
    cdef send_reuse_external_buffer(self, WSMsgType msg_type,
                                    char* message, size_t message_size)
    cdef int send_frame(self, WSMsgType msg_type, const uint8_t* payload,
                        size_t size, bint fin, bint rsv1) except -1
    cdef bint _may_send(self, WSMsgType msg_type, bint fin) noexcept
    cdef int _send_in_place(self, WSMsgType msg_type, uint8_t* payload, size_t size,
                            bint fin, bint rsv1) except -1
    cdef int _send_close_frame(self, int code, const uint8_t* reason,
                               size_t reason_size) except -1
    cdef int _mark_disconnected(self) except -1
    cdef int _record_close_sent(self, const uint8_t* payload, size_t size) except -1
    cdef _send_compressed(self, WSMsgType msg_type, message)
    cdef uint8_t* _reserve(self, size_t size) except NULL


cdef struct _FrameHeader:
    # The frame being parsed, as its header said.
    uint8_t opcode
    bint fin
    bint rsv1
    bint masked
    uint8_t mask[4]
    size_t hdr_len
    uint64_t payload_len
    uint64_t processed      # payload bytes unmasked (and validated) so far
    bint text               # validate UTF-8 as the payload arrives
    bint compressed         # part of a compressed message: inflate first


cdef class WSProtocolCore:
    # Configuration
    cdef readonly bint is_client
    cdef _ConnectionOptions _opts
    cdef object _handshake_timeout  # float or None
    cdef object _opened_at          # time.monotonic() the timeout counts from, or None
    cdef object _logger
    cdef bytes _upgrade_request     # client: the request to send
    cdef str _client_key            # client: its Sec-WebSocket-Key
    cdef set _connections           # server: its open WSTransports, or None
    cdef object _request_obj        # client: the WSUpgradeRequest sent
    cdef list _subprotocols         # client: the subprotocols offered
    cdef bytes _error_head          # client: a refusal's head, body pending
    cdef Py_ssize_t _body_expected  # its Content-Length, -1: until EOF

    # Connection
    cdef object _loop
    cdef object _transport
    cdef readonly WSTransport transport
    cdef readonly WSListener listener
    cdef readonly object handshake_future
    cdef object _handshake_timer
    cdef object _upgrade_task       # server: awaits an async listener factory's result
    cdef object _close_timer
    cdef object _ping_timer
    cdef double _last_activity
    cdef bint _ping_outstanding     # a keepalive ping waits for its pong
    cdef double _last_ping          # when keepalive last pinged (PING_PERIODICALLY)
    cdef bint _user_pong_expected   # a user-specific ping was sent
    cdef object _user_ping          # the listener's send_user_specific_ping override
    cdef object _user_pong          # the listener's is_user_specific_pong override
    cdef _State _state
    cdef bint _connected_called
    cdef bint _closing
    cdef bint _disconnected_called
    cdef object _listener_exc

    # Read buffer: unread bytes are [_rstart, _rend) of _rbuf.
    cdef uint8_t* _rbuf
    cdef size_t _rcap
    cdef size_t _rstart
    cdef size_t _rend
    cdef size_t _recent_max_frame
    cdef size_t _head_scanned
    cdef object _view

    # The frame being parsed (offsets relative to _rstart).
    cdef _FrameState _fstate
    cdef _FrameHeader _f

    # The message being received (fragmentation and UTF-8 state).
    cdef uint8_t _msg_opcode
    cdef uint32_t _utf8_state
    cdef bint _msg_compressed
    cdef _PerMessageDeflate _deflate   # None: not negotiated

    cdef WSFrame _frame
    # The listener's on_ws_frame when it is a Python override: called
    # directly, skipping the cpdef override lookup on every frame.
    cdef object _on_frame_py

    cdef int _read_window(self, char** ptr, Py_ssize_t* size) except -1
    cdef int _data_in(self, Py_ssize_t nbytes) except -1
    cdef _peer(self)
    cdef _log_disconnected(self, exc)
    cdef _open(self, WSTransport ws, WSListener listener)
    cdef _setup_deflate(self, WSTransport ws, deflate)
    cdef _bound_writes(self, WSTransport ws)
    cdef _reject(self, int status, str reason, headers=*)
    cdef _cancel_handshake_timer(self)
    cdef _cancel_timers(self)
    cdef int _parse_header(self) except -1
    cdef bint _next_frame_complete(self, size_t offset) noexcept
    cdef int _process_frames(self) except -1
    cdef WSFrame _make_frame(self)
    cdef int _deliver_frame(self) except -1
    cdef int _call_on_frame(self, WSFrame frame) except -1
    cdef int _on_close_frame(self, WSFrame frame) except -1
    cdef _on_close_sent(self)
    cdef _start_close_timer(self)
    cdef _fail(self, int code, str reason, bint peer_closed=*)
    cdef _disconnect(self, bint abort=*)
