/* conn-t.h: a non-blocking stream socket with input and output buffers.
 *
 * The proxy's own replacement for libevent's bufferevent on the hot path:
 * reads go straight into reserved evbuffer space with readv (bufferevent
 * asks FIONREAD first: one more syscall per read), writes are attempted at
 * once with sendmsg and only what the kernel refuses is queued behind an
 * EPOLLOUT event. Owned by exactly one session or upstream connection.
 *
 * With a batch (sg_iob_new, on kernels that allow io_uring), the reads that
 * epoll reports in one loop pass and the sends the callbacks make are not
 * issued one syscall each: they are collected and issued together, inline and
 * non-blocking, in one io_uring_enter at the end of the pass.
 *
 * The bytes travel through a transport (transport-t.h): plain TCP by
 * default; the batch serves only batchable transports. */
#ifndef SURGEGATE_CONN_T_H
#define SURGEGATE_CONN_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include <event2/event_struct.h>

#include "surgegate/transport-t.h"

/* Event callback flags (same meanings as libevent's BEV_EVENT_*). */
#define SG_CONN_READING   0x01
#define SG_CONN_WRITING   0x02
#define SG_CONN_EOF       0x10
#define SG_CONN_ERROR     0x20
#define SG_CONN_TIMEOUT   0x40
#define SG_CONN_CONNECTED 0x80

struct evbuffer;
struct sg_conn;
struct sg_iobatch;

typedef void (*sg_conn_data_cb)(struct sg_conn *c, void *arg);
typedef void (*sg_conn_event_cb)(struct sg_conn *c, short what, void *arg);

struct sg_conn {
    int fd;                            /* -1 when closed */
    const struct sg_transport_ops *tp; /* moves the bytes; &sg_transport_tcp by default */
    void *tp_ctx;                      /* the transport's state (TLS: its SSL *), or NULL */
    struct event rev, wev;
    struct evbuffer *in, *out;
    sg_conn_data_cb readcb;   /* new bytes in `in` */
    sg_conn_data_cb writecb;  /* `out` drained to write_low or below */
    sg_conn_event_cb eventcb; /* SG_CONN_* */
    void *arg;
    struct timeval rto, wto; /* inactivity limits; zero = none */
    size_t read_size;        /* bytes asked of each read */
    size_t read_high;        /* stop reading while `in` holds this much; 0 = never */
    size_t write_low;
    int pending_err;  /* connect() failed at once: reported from wev */
    bool reading;     /* the caller wants reads */
    bool read_armed;  /* rev is added */
    bool write_armed; /* wev is added */
    bool connecting;
    bool shut_pending; /* sg_conn_shutdown: shut down once `out` is sent */
    uint32_t acct;     /* bytes of in + out counted in the buffer total (conn.c) */
    uint64_t nin;      /* bytes read so far */
    uint64_t nout;     /* bytes handed to sg_conn_send so far */
    /* Batched I/O (conn.c): the worker's batch, or NULL for plain syscalls;
     * indexes of this connection's entries in it, -1 when none. */
    struct sg_iobatch *iob;
    int32_t rslot;     /* a read: queued, or done and its callback due */
    int32_t wslot;     /* a send not yet issued */
    int32_t wdoneslot; /* a send issued, its write callback due */
    bool send_more;    /* MSG_MORE for the queued send */
    bool read_big;     /* the last batched read filled its slot */
    bool fresh;        /* accepted, first read not yet asked for */
    bool read_defer;   /* that first read is in the batch: epoll waits for it */
};

#endif
