# The read window handed to the event loop (BufferedProtocol.get_buffer).


cdef class _ReadBufferView:
    """The writable window of the read buffer handed to the event loop.

    One per connection, reused for every read, so reading allocates nothing.
    """

    def __getbuffer__(self, Py_buffer* buffer, int flags):
        PyBuffer_FillInfo(buffer, self, self.ptr, self.size, 0, flags)

    def __releasebuffer__(self, Py_buffer* buffer):
        pass

    def __len__(self):
        return self.size

    # asyncio's TLS transport slices the buffer it is given.
    def __getitem__(self, key):
        return memoryview(self)[key]

    def __setitem__(self, key, value):
        memoryview(self)[key] = value
