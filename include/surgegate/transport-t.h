/* transport-t.h: the byte transport under a connection (struct sg_conn).
 *
 * conn.c keeps what every stream needs whatever carries its bytes: the
 * input and output evbuffers, read_high / write_low, timeouts, callbacks,
 * the read and write events. A transport moves the bytes themselves between
 * those buffers and the socket: plain TCP (transport_tcp.c) does it with
 * one syscall each; TLS will do it through OpenSSL with its own buffering.
 *
 * The operations are called on the thread owning the connection, never
 * from inside one another, with c->fd open. c->tp_ctx is the transport's
 * (an SSL * for TLS; unused by TCP). */
#ifndef SURGEGATE_TRANSPORT_T_H
#define SURGEGATE_TRANSPORT_T_H

#include <stdbool.h>
#include <sys/types.h>

struct iovec;
struct sg_conn;

/* sg_transport_ops.flags */
/* The transport's read, write and close are exactly readv / sendmsg /
 * close(2) on c->fd, with nothing kept in between: the connection's I/O
 * batch (sg_iob_new) may then issue them itself, as recvmsg / sendmsg /
 * close SQEs on c->fd, many in one io_uring_enter, in place of the
 * operations. A transport without it (TLS: the socket's bytes are records,
 * and OpenSSL keeps state between calls) always goes through its operations,
 * one syscall (or more) each. */
#define SG_TP_F_BATCH 0x1u

struct sg_transport_ops {
    const char *name; /* "tcp", "tls": for logs */
    unsigned flags;   /* SG_TP_F_* */
    /* Reads up to the iovecs' total into them. Returns the bytes read (> 0),
     * 0 at the end of the peer's stream, or -1 with errno set: EAGAIN when
     * nothing can be read now. On EAGAIN, *wait says what must happen before
     * a new try can progress: conn.c sets it to SG_CONN_READING before the
     * call (the socket becomes readable); a transport that first needs to
     * write (TLS: SSL_ERROR_WANT_WRITE) sets SG_CONN_WRITING. */
    ssize_t (*read)(struct sg_conn *c, const struct iovec *iov, int iovcnt, short *wait);
    /* Sends from the iovecs, in order. Returns the bytes of them taken (> 0;
     * a transport with its own buffering counts what it took over, written
     * out or not), or -1 with errno set: EAGAIN when nothing can be taken
     * now, *wait then as for read (preset to SG_CONN_WRITING; SG_CONN_READING
     * for TLS's SSL_ERROR_WANT_READ). `more`: more bytes follow at once
     * (MSG_MORE), a hint. */
    ssize_t (*write)(struct sg_conn *c, const struct iovec *iov, int iovcnt, bool more,
                     short *wait);
    /* Ends the stream in the write direction (FIN; TLS: close_notify first).
     * SG_OK, SG_AGAIN (not finished: call again when the socket is writable)
     * or SG_ERR with errno. */
    int (*shutdown)(struct sg_conn *c);
    /* Releases the transport's state (tp_ctx) and closes c->fd. Does not
     * block and cannot fail; c->fd is set to -1 by the caller. The batch
     * closes a batchable transport's socket itself, without this call: such
     * a transport keeps no state to release. */
    void (*close)(struct sg_conn *c);
};

#endif
