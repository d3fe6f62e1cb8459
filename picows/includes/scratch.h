/* One read buffer per thread for the TLS layer's ciphertext.
 *
 * get_buffer() hands it to the event loop, buffer_updated() decrypts what
 * was read (or copies it into the incoming BIO) before it returns, and keeps
 * what it could not use (tlsbio.h): the bytes never outlive the one loop
 * callback that reads them, and everything between the two calls runs on the
 * loop's thread without running another protocol's get_buffer (asyncio's
 * _read_ready and libuv's uv__read call them back to back; a callback cannot
 * run a loop of its own on the same thread). So one buffer
 * per thread serves every connection of the loop, and an idle connection
 * holds none: a malloc/free of 33 KiB per read was costlier than the rest of
 * the read path. It grows to the largest size asked (1 MiB and a partial
 * record, tls.pyx) and stays. */
#ifndef PICOWS_SCRATCH_H
#define PICOWS_SCRATCH_H

#include <Python.h>

#if defined(_MSC_VER)
#define PICOWS_THREAD_LOCAL __declspec(thread)
#else
#define PICOWS_THREAD_LOCAL __thread
#endif

static PICOWS_THREAD_LOCAL char* picows_scratch_buf = NULL;
static PICOWS_THREAD_LOCAL Py_ssize_t picows_scratch_size = 0;

/* The thread's buffer, at least `size` bytes; NULL when out of memory.
 * Raw malloc: it is not tied to the interpreter's allocators and lives as
 * long as the thread (one per loop thread; freed at exit). */
static inline char* picows_scratch(Py_ssize_t size) {
    if (size > picows_scratch_size) {
        char* p = (char*)realloc(picows_scratch_buf, (size_t)size);
        if (p == NULL) {
            return NULL;
        }
        picows_scratch_buf = p;
        picows_scratch_size = size;
    }
    return picows_scratch_buf;
}

#endif
