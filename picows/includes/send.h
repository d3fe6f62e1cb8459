/* Writing to (and, for the TLS layer on asyncio, reading from) a socket
 * directly, without the event loop (POSIX only). */
#ifndef PICOWS_SEND_H
#define PICOWS_SEND_H

#include <string.h>
#include <stdint.h>
#ifndef _WIN32
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <errno.h>
#define PICOWS_HAVE_SEND 1
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif
static inline Py_ssize_t picows_send(int fd, const void* buf, size_t n) {
    return (Py_ssize_t)send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}
static inline Py_ssize_t picows_recv(int fd, void* buf, size_t n) {
    return (Py_ssize_t)recv(fd, buf, n, MSG_DONTWAIT);
}
static inline int picows_errno(void) {
    return errno;
}
/* What recv_into turns into BlockingIOError / InterruptedError. */
static inline int picows_retry_errno(int err) {
    return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}
/* Header and payload in one system call, without copying the payload. */
static inline Py_ssize_t picows_send2(int fd, const void* a, size_t na,
                                      const void* b, size_t nb) {
    struct iovec iov[2];
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    iov[0].iov_base = (void*)a;
    iov[0].iov_len = na;
    iov[1].iov_base = (void*)b;
    iov[1].iov_len = nb;
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    return (Py_ssize_t)sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}
#else
#define PICOWS_HAVE_SEND 0
static inline Py_ssize_t picows_send(int fd, const void* buf, size_t n) {
    return -1;
}
static inline Py_ssize_t picows_recv(int fd, void* buf, size_t n) {
    return -1;
}
static inline int picows_errno(void) {
    return 0;
}
static inline int picows_retry_errno(int err) {
    return 0;
}
static inline Py_ssize_t picows_send2(int fd, const void* a, size_t na,
                                      const void* b, size_t nb) {
    return -1;
}
#endif

#endif /* PICOWS_SEND_H */
