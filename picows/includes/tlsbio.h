/* The BIOs of picows' TLS record path: ciphertext in and out without the
 * copies of OpenSSL's memory BIO.
 *
 * Through the ssl module's MemoryBIOs (BIO_s_mem) every byte of ciphertext
 * is copied twice more than it needs to be: from the socket's read buffer
 * into the incoming BIO (BIO_write), and out of the outgoing BIO into the
 * buffer handed to send() (BIO_read); the memory BIO also grows with
 * BUF_MEM_grow_clean, which clears (memsets) what it adds. At 100 KiB per
 * message that was a third of all the instructions of a round trip. Once
 * the handshake is done the layer gives the SSL these two BIOs instead
 * (SSL_set0_rbio / SSL_set0_wbio; the MemoryBIO objects keep their own):
 *
 * in:  the socket is read straight into the thread's read buffer
 *      (scratch.h), and the BIO reads from there (it borrows it for one
 *      buffer_updated). A partial record left over at the end is copied into
 *      the BIO's own storage, and in front of the next read (get_buffer), so
 *      the bytes stay contiguous. Outside buffer_updated the BIO only holds
 *      its own storage: nothing dangles once the loop reads elsewhere.
 * out: SSL_write's records go into one buffer per thread, which the layer
 *      sends from (picows_tlsbio_take) before anything else can run. A BIO
 *      that finds the buffer holding another BIO's unsent bytes (a write
 *      that came from elsewhere: say the ssl object kept by the user, or a
 *      callback of theirs run by OpenSSL) uses storage of its own instead.
 *
 * Both are plain byte queues; they never fail a write, and a read of an
 * empty one is "retry" (SSL_ERROR_WANT_READ), as with a memory BIO. The
 * functions they use come from the libssl that _ssl links (openssl.h); the
 * state is owned by the BIO (freed by its destroy callback), because the
 * SSL may outlive the layer (the ssl_object in the transport's extra info).
 */
#ifndef PICOWS_TLSBIO_H
#define PICOWS_TLSBIO_H

#include <Python.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "openssl.h"
#include "scratch.h"

#define PICOWS_BIO_TYPE_SOURCE_SINK 0x0400
#define PICOWS_BIO_FLAGS_READ 0x01
#define PICOWS_BIO_FLAGS_RWS 0x07
#define PICOWS_BIO_FLAGS_SHOULD_RETRY 0x08
#define PICOWS_BIO_CTRL_FLUSH 11
#define PICOWS_BIO_CTRL_DUP 12
#define PICOWS_BIO_CTRL_WPENDING 13

typedef struct {
    const char* data;   /* the unread bytes: in `own`, or borrowed */
    size_t len;
    char* own;          /* between reads: a partial record (or more) */
    size_t own_cap;
    char* buf;          /* out: where the queued bytes are (own or scratch) */
    size_t cap;         /* out: its size */
    int out;            /* 1: the out BIO */
} picows_tlsbio;

/* The thread's send buffer and the BIO whose unsent bytes it holds. */
static PICOWS_THREAD_LOCAL char* picows_out_scratch = NULL;
static PICOWS_THREAD_LOCAL size_t picows_out_scratch_size = 0;
static PICOWS_THREAD_LOCAL picows_tlsbio* picows_out_holder = NULL;

static void* picows_bio_in_method = NULL;
static void* picows_bio_out_method = NULL;

/* Room for `need` bytes in `*p` (of `*cap` bytes, contents kept); -1 when
 * out of memory. Grows by half again, at least. */
static int picows_tlsbio_reserve(char** p, size_t* cap, size_t need) {
    char* q;
    size_t size;
    if (need <= *cap) {
        return 0;
    }
    size = *cap + *cap / 2;
    if (size < need) {
        size = need;
    }
    q = (char*)realloc(*p, size);
    if (q == NULL) {
        return -1;
    }
    *p = q;
    *cap = size;
    return 0;
}

static int picows_tlsbio_create(void* bio) {
    picows_tlsbio* st = (picows_tlsbio*)calloc(1, sizeof(picows_tlsbio));
    if (st == NULL) {
        return 0;
    }
    picows_ossl.BIO_set_data(bio, st);
    picows_ossl.BIO_set_init(bio, 1);
    return 1;
}

static int picows_tlsbio_destroy(void* bio) {
    picows_tlsbio* st = (picows_tlsbio*)picows_ossl.BIO_get_data(bio);
    if (st != NULL) {
        if (picows_out_holder == st) {
            picows_out_holder = NULL;
        }
        free(st->own);
        free(st);
        picows_ossl.BIO_set_data(bio, NULL);
    }
    return 1;
}

static int picows_tlsbio_read(void* bio, char* out, int outl) {
    picows_tlsbio* st = (picows_tlsbio*)picows_ossl.BIO_get_data(bio);
    size_t n;
    picows_ossl.BIO_clear_flags(bio, PICOWS_BIO_FLAGS_RWS | PICOWS_BIO_FLAGS_SHOULD_RETRY);
    if (st->len == 0 || outl <= 0) {
        picows_ossl.BIO_set_flags(bio, PICOWS_BIO_FLAGS_READ | PICOWS_BIO_FLAGS_SHOULD_RETRY);
        return -1;
    }
    n = st->len < (size_t)outl ? st->len : (size_t)outl;
    memcpy(out, st->data, n);
    st->data += n;
    st->len -= n;
    return (int)n;
}

static int picows_tlsbio_write(void* bio, const char* in, int inl) {
    picows_tlsbio* st = (picows_tlsbio*)picows_ossl.BIO_get_data(bio);
    size_t need;
    picows_ossl.BIO_clear_flags(bio, PICOWS_BIO_FLAGS_RWS | PICOWS_BIO_FLAGS_SHOULD_RETRY);
    if (inl <= 0) {
        return 0;
    }
    need = st->len + (size_t)inl;
    if (st->len == 0 && (picows_out_holder == NULL || picows_out_holder == st)) {
        /* Empty: take the thread's buffer, unless it holds another's bytes. */
        if (picows_tlsbio_reserve(&picows_out_scratch, &picows_out_scratch_size, need) < 0) {
            return -1;
        }
        picows_out_holder = st;
        st->buf = picows_out_scratch;
    } else if (picows_out_holder == st) {
        if (picows_tlsbio_reserve(&picows_out_scratch, &picows_out_scratch_size, need) < 0) {
            return -1;
        }
        st->buf = picows_out_scratch;
    } else {
        if (picows_tlsbio_reserve(&st->own, &st->own_cap, need) < 0) {
            return -1;
        }
        st->buf = st->own;
    }
    memcpy(st->buf + st->len, in, (size_t)inl);
    st->len = need;
    return inl;
}

static long picows_tlsbio_ctrl(void* bio, int cmd, long num, void* ptr) {
    picows_tlsbio* st = (picows_tlsbio*)picows_ossl.BIO_get_data(bio);
    (void)num;
    (void)ptr;
    switch (cmd) {
    case PICOWS_BIO_CTRL_PENDING:
        return st->out ? 0 : (long)st->len;
    case PICOWS_BIO_CTRL_WPENDING:
        return st->out ? (long)st->len : 0;
    case PICOWS_BIO_CTRL_FLUSH:
    case PICOWS_BIO_CTRL_DUP:
        return 1;
    default:
        return 0;
    }
}

static void* picows_tlsbio_method(int out) {
    void* m;
    int index;
    if (out ? picows_bio_out_method : picows_bio_in_method) {
        return out ? picows_bio_out_method : picows_bio_in_method;
    }
    index = picows_ossl.BIO_get_new_index();
    if (index < 0) {
        return NULL;
    }
    m = picows_ossl.BIO_meth_new(index | PICOWS_BIO_TYPE_SOURCE_SINK,
                                 out ? "picows TLS out" : "picows TLS in");
    if (m == NULL) {
        return NULL;
    }
    if (!picows_ossl.BIO_meth_set_create(m, picows_tlsbio_create)
            || !picows_ossl.BIO_meth_set_destroy(m, picows_tlsbio_destroy)
            || !picows_ossl.BIO_meth_set_ctrl(m, picows_tlsbio_ctrl)
            || !(out ? picows_ossl.BIO_meth_set_write(m, picows_tlsbio_write)
                     : picows_ossl.BIO_meth_set_read(m, picows_tlsbio_read))) {
        picows_ossl.BIO_meth_free(m);
        return NULL;
    }
    if (out) {
        picows_bio_out_method = m;
    } else {
        picows_bio_in_method = m;
    }
    return m;
}

/* A new BIO of ours (one reference, the caller's); NULL on failure. */
static void* picows_tlsbio_new(int out) {
    void* m = picows_tlsbio_method(out);
    void* bio;
    if (m == NULL) {
        return NULL;
    }
    bio = picows_ossl.BIO_new(m);
    if (bio != NULL) {
        ((picows_tlsbio*)picows_ossl.BIO_get_data(bio))->out = out;
    }
    return bio;
}

static inline picows_tlsbio* picows_tlsbio_state(void* bio) {
    return (picows_tlsbio*)picows_ossl.BIO_get_data(bio);
}

/* in: save the unread bytes in the BIO's own storage (the end of a
 * buffer_updated: the thread's read buffer is not ours any more). */
static int picows_tlsbio_keep(picows_tlsbio* st) {
    if (st->len == 0) {
        if (st->own_cap > 64 * 1024) {
            free(st->own);
            st->own = NULL;
            st->own_cap = 0;
        }
        st->data = st->own;
        return 0;
    }
    if (st->data == st->own) {
        return 0;
    }
    if (st->data > st->own && st->data < st->own + st->own_cap) {
        memmove(st->own, st->data, st->len);
    } else {
        if (picows_tlsbio_reserve(&st->own, &st->own_cap, st->len) < 0) {
            return -1;
        }
        memcpy(st->own, st->data, st->len);
    }
    st->data = st->own;
    return 0;
}

/* out: the queued bytes, handed over: the BIO is empty again. They stay
 * valid until the thread's next write into a BIO of ours. */
static inline const char* picows_tlsbio_take(picows_tlsbio* st, size_t* len) {
    *len = st->len;
    st->len = 0;
    if (picows_out_holder == st) {
        picows_out_holder = NULL;
    }
    return st->buf;
}

/* Give `ssl` our BIOs `in` and `out` in place of its memory BIOs, moving
 * what the incoming one still holds (bytes that came with the end of the
 * handshake). The outgoing one must be empty (flushed). Our references stay
 * the caller's; the SSL takes one of its own. 0 on success; -1 and nothing
 * changed otherwise. */
static int picows_tlsbio_adopt(void* ssl, void* in, void* out) {
    void* rbio = picows_ossl.SSL_get_rbio(ssl);
    void* wbio = picows_ossl.SSL_get_wbio(ssl);
    picows_tlsbio* st = picows_tlsbio_state(in);
    uint64_t pending;
    if (rbio == NULL || wbio == NULL || picows_bio_pending(wbio) != 0) {
        return -1;
    }
    pending = picows_bio_pending(rbio);
    if (pending > 0) {
        if (pending > INT_MAX
                || picows_tlsbio_reserve(&st->own, &st->own_cap, (size_t)pending) < 0
                || picows_ossl.BIO_read(rbio, st->own, (int)pending) != (int)pending) {
            return -1;
        }
        st->data = st->own;
        st->len = (size_t)pending;
    }
    picows_ossl.BIO_up_ref(in);
    picows_ossl.BIO_up_ref(out);
    /* Each drops the SSL's reference to its memory BIO; the MemoryBIO
     * objects keep their own (the ssl module took one for the SSL). */
    picows_ossl.SSL_set0_rbio(ssl, in);
    picows_ossl.SSL_set0_wbio(ssl, out);
    return 0;
}

#endif
