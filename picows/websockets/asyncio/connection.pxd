# Augments connection.py when Cython compiles it: Connection becomes a cdef
# class over WSListener, so the core calls on_ws_frame through the vtable
# and the per-message state is read from the struct, not from a dict. The
# .py file stays the source and runs uncompiled as it is.

cimport cython
from picows.picows cimport WSFrame, WSListener, WSTransport
from picows.picows cimport WSMsgType as _WSMsgType


cdef class Connection(WSListener):
    cdef public object id
    cdef public object logger
    cdef public object max_message_size
    cdef public object _queue_high
    cdef public object _queue_low
    cdef public object _write_high
    cdef public object _write_low
    cdef public object ping_interval
    cdef public object ping_timeout
    cdef public object close_timeout
    cdef public bint is_client
    cdef public WSTransport _ws
    cdef public object transport
    cdef public object protocol
    cdef public object request
    cdef public object response
    cdef public object subprotocol
    cdef public object state
    cdef public object latency
    cdef public object _local_address
    cdef public object _remote_address
    cdef public object _loop
    cdef public object _messages
    cdef public Py_ssize_t _frames
    cdef public object _fragments
    cdef public object _waiter
    cdef public bint _reading_paused
    cdef public bint _write_paused
    cdef public object _drain_waiters
    cdef public object _fragmented_send
    cdef public object _pings
    cdef public object _keepalive_timer
    cdef public object _close_rcvd
    cdef public object _close_sent
    cdef public object _rcvd_then_sent
    cdef public object _close_exc
    cdef public object _closed
    cdef public object _push
    cdef public object _pop
    cdef public object _create_future
    cdef public object _future_kwargs
    cdef public object _wakeup
    cdef public object _wakeup_context
    cdef public object _send

    cpdef on_ws_connected(self, WSTransport transport)
    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame)
    cpdef on_ws_disconnected(self, WSTransport transport)
    cpdef pause_writing(self)
    cpdef resume_writing(self)

    @cython.locals(callbacks=list, entry=tuple)
    cdef bint _hand_over(self, object waiter, object message) except -1
    cdef bint _hand_over_later(self, object waiter, object message) except -1


cdef bint _COMPILED
cdef _WSMsgType _OP_TEXT, _OP_BINARY
cdef dict _running_tasks
cdef object _current_task

cdef bint _task_running(object loop) except -1

cdef extern from "awaitable.h":
    # A step of an awaitable returns `value` (then raises a bare
    # StopIteration): to the am_send stepping it, else as StopIteration(value).
    void _stop_iteration_with "picows_stop_iteration_with" (object awaitable, object value)
    # Gives a cdef class with __await__ and __next__ the am_send slot.
    int _install_am_send "picows_install_am_send" (object type) except -1
    # func(**kwargs) with that dict (Cython would copy it).
    object _call_with_kwargs "picows_call_with_kwargs" (object func, object kwargs)


cdef class _Recv:
    cdef Connection conn
    cdef object decode
    cdef bint anext
    cdef bint started
    cdef object fut
    cdef object slow


cdef class _Send:
    cdef Connection conn
    cdef object message
    cdef object text
    cdef bint started
    cdef object slow


@cython.locals(aw=_Recv)
cdef _Recv _new_recv(Connection conn, object decode, bint anext)


@cython.locals(aw=_Send)
cdef _Send _new_send(Connection conn, object message, object text)
