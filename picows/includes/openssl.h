/* The few OpenSSL calls of picows' TLS record path, resolved at run time
 * from the libssl that Python's own _ssl module links (POSIX only).
 *
 * Why not link libssl at build time: the SSL* and BIO* we drive belong to
 * the ssl module's objects, so the functions must come from the very same
 * library copy (a second copy, e.g. one bundled into a wheel, has its own
 * globals and error queues). dlopen(_ssl's file, RTLD_NOLOAD) returns the
 * module already loaded, and dlsym() on that handle searches it and its
 * dependencies: the libssl/libcrypto it was linked with. No OpenSSL headers
 * or libraries are needed to build; the few constants below are the stable
 * ABI values of OpenSSL 1.1 and 3.x.
 *
 * Where any of it is unavailable (Windows, a static _ssl without exported
 * symbols, a missing function) picows_openssl_load() fails and the TLS layer
 * keeps calling the ssl module's methods instead.
 */
#ifndef PICOWS_OPENSSL_H
#define PICOWS_OPENSSL_H

#include <Python.h>
#include <stdint.h>

#define PICOWS_SSL_ERROR_NONE 0
#define PICOWS_SSL_ERROR_SSL 1
#define PICOWS_SSL_ERROR_WANT_READ 2
#define PICOWS_SSL_ERROR_WANT_WRITE 3
#define PICOWS_SSL_ERROR_SYSCALL 5
#define PICOWS_SSL_ERROR_ZERO_RETURN 6
#define PICOWS_BIO_CTRL_PENDING 10

typedef struct {
    int (*SSL_read)(void*, void*, int);
    int (*SSL_write)(void*, const void*, int);
    int (*SSL_get_error)(const void*, int);
    int (*SSL_pending)(const void*);
    void* (*SSL_get_rbio)(const void*);
    void* (*SSL_get_wbio)(const void*);
    int (*BIO_read)(void*, void*, int);
    int (*BIO_write)(void*, const void*, int);
    long (*BIO_ctrl)(void*, int, long, void*);
    uint64_t (*BIO_number_read)(void*);
    uint64_t (*BIO_number_written)(void*);
    unsigned long (*ERR_get_error)(void);
    unsigned long (*ERR_peek_last_error)(void);
    void (*ERR_clear_error)(void);
    void (*ERR_error_string_n)(unsigned long, char*, size_t);
    /* The BIOs of tlsbio.h, and handing them to the SSL. */
    int (*BIO_get_new_index)(void);
    void* (*BIO_meth_new)(int, const char*);
    void (*BIO_meth_free)(void*);
    int (*BIO_meth_set_write)(void*, int (*)(void*, const char*, int));
    int (*BIO_meth_set_read)(void*, int (*)(void*, char*, int));
    int (*BIO_meth_set_ctrl)(void*, long (*)(void*, int, long, void*));
    int (*BIO_meth_set_create)(void*, int (*)(void*));
    int (*BIO_meth_set_destroy)(void*, int (*)(void*));
    void* (*BIO_new)(void*);
    int (*BIO_up_ref)(void*);
    int (*BIO_free)(void*);
    void (*BIO_set_data)(void*, void*);
    void* (*BIO_get_data)(void*);
    void (*BIO_set_init)(void*, int);
    void (*BIO_set_flags)(void*, int);
    void (*BIO_clear_flags)(void*, int);
    void (*SSL_set0_rbio)(void*, void*);
    void (*SSL_set0_wbio)(void*, void*);
} picows_openssl_api;

static picows_openssl_api picows_ossl;

/* What a memory BIO holds: all it was given minus all that was read from
 * it (two plain getters; BIO_ctrl_pending goes through BIO_ctrl's dispatch
 * and callbacks, several times the cost). */
static inline uint64_t picows_bio_pending(void* bio) {
    return picows_ossl.BIO_number_written(bio) - picows_ossl.BIO_number_read(bio);
}

/* SSL_read (write == 0) or SSL_write of `n` bytes. Returns what OpenSSL
 * returns; when that is <= 0, *err is SSL_get_error()'s code and *code the
 * error that explains it (0: none).
 *
 * The thread's error queue is not cleared before the call, which would cost
 * more than the call itself on a small record. SSL_get_error() needs an
 * empty queue, so when it says SSL_ERROR_SSL or SYSCALL the queue may hold
 * someone else's stale errors: then it is cleared and the call made once
 * more. A retry returns the same again (WANT_READ, ZERO_RETURN) or, after a
 * real failure, fails again (OpenSSL stays in its error state). */
static inline int picows_ssl_io(int write, void* ssl, const void* buf, int n,
                                int* err, unsigned long* code) {
    int r = write ? picows_ossl.SSL_write(ssl, buf, n) : picows_ossl.SSL_read(ssl, (void*)buf, n);
    int e;
    if (r > 0) {
        return r;
    }
    e = picows_ossl.SSL_get_error(ssl, r);
    if (e == PICOWS_SSL_ERROR_SSL || e == PICOWS_SSL_ERROR_SYSCALL) {
        *code = picows_ossl.ERR_peek_last_error();
        picows_ossl.ERR_clear_error();
        r = write ? picows_ossl.SSL_write(ssl, buf, n) : picows_ossl.SSL_read(ssl, (void*)buf, n);
        if (r > 0) {
            return r;
        }
        e = picows_ossl.SSL_get_error(ssl, r);
        if (e == PICOWS_SSL_ERROR_SSL || e == PICOWS_SSL_ERROR_SYSCALL) {
            unsigned long again = picows_ossl.ERR_peek_last_error();
            if (again != 0) {
                *code = again;
            }
            picows_ossl.ERR_clear_error();
        }
    } else {
        *code = 0;
    }
    *err = e;
    return r;
}

/* The pointer that a CPython object of the _ssl module holds right after
 * its `n_before` leading PyObject* fields (CPython 3.8-3.13: PySSLContext
 * {SSL_CTX *ctx}, PySSLSocket {PyObject *Socket; SSL *ssl; PySSLContext
 * *ctx}, PySSLMemoryBIO {BIO *bio}). The caller checks the result. */
static inline void* picows_ssl_field(PyObject* o, int n_before) {
    return *(void**)((char*)o + sizeof(PyObject) + n_before * sizeof(void*));
}

#ifndef _WIN32
#include <dlfcn.h>

#ifndef RTLD_NOLOAD
#define RTLD_NOLOAD 0
#endif

#define PICOWS_SYM(name) \
    if ((*(void**)&api.name = dlsym(h, #name)) == NULL) return -1;

/* 0 once every function is found in `ssl_module_path`'s dependency tree. */
static int picows_openssl_load(const char* ssl_module_path) {
    picows_openssl_api api;
    void* h = dlopen(ssl_module_path, RTLD_NOW | RTLD_NOLOAD);
    if (h == NULL) {
        return -1;
    }
    /* The handle is kept: _ssl is never unloaded. */
    PICOWS_SYM(SSL_read)
    PICOWS_SYM(SSL_write)
    PICOWS_SYM(SSL_get_error)
    PICOWS_SYM(SSL_pending)
    PICOWS_SYM(SSL_get_rbio)
    PICOWS_SYM(SSL_get_wbio)
    PICOWS_SYM(BIO_read)
    PICOWS_SYM(BIO_write)
    PICOWS_SYM(BIO_ctrl)
    PICOWS_SYM(BIO_number_read)
    PICOWS_SYM(BIO_number_written)
    PICOWS_SYM(ERR_get_error)
    PICOWS_SYM(ERR_peek_last_error)
    PICOWS_SYM(ERR_clear_error)
    PICOWS_SYM(ERR_error_string_n)
    PICOWS_SYM(BIO_get_new_index)
    PICOWS_SYM(BIO_meth_new)
    PICOWS_SYM(BIO_meth_free)
    PICOWS_SYM(BIO_meth_set_write)
    PICOWS_SYM(BIO_meth_set_read)
    PICOWS_SYM(BIO_meth_set_ctrl)
    PICOWS_SYM(BIO_meth_set_create)
    PICOWS_SYM(BIO_meth_set_destroy)
    PICOWS_SYM(BIO_new)
    PICOWS_SYM(BIO_up_ref)
    PICOWS_SYM(BIO_free)
    PICOWS_SYM(BIO_set_data)
    PICOWS_SYM(BIO_get_data)
    PICOWS_SYM(BIO_set_init)
    PICOWS_SYM(BIO_set_flags)
    PICOWS_SYM(BIO_clear_flags)
    PICOWS_SYM(SSL_set0_rbio)
    PICOWS_SYM(SSL_set0_wbio)
    picows_ossl = api;
    return 0;
}
#undef PICOWS_SYM

#else
static int picows_openssl_load(const char* ssl_module_path) {
    (void)ssl_module_path;
    return -1;
}
#endif

#endif
