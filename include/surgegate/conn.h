/* conn.h: non-blocking stream sockets (see conn-t.h). All functions run on
 * the thread owning the event base; callbacks may close the connection. */
#ifndef SURGEGATE_CONN_H
#define SURGEGATE_CONN_H

#include <sys/socket.h>

#include "surgegate/conn-t.h"

struct event_base;

/* Wraps an accepted, non-blocking socket (owned from now on: closed by
 * sg_conn_close, also on failure). SG_OK or SG_ERR. */
int sg_conn_init(struct sg_conn *c, struct event_base *base, int fd);
/* Starts a non-blocking connect; completion or failure is reported to the
 * event callback (SG_CONN_CONNECTED, or SG_CONN_ERROR / SG_CONN_TIMEOUT with
 * SG_CONN_WRITING), never from inside this call. The write timeout in force
 * (sg_conn_set_timeouts) bounds the connect. SG_OK or SG_ERR (no socket). */
int sg_conn_connect(struct sg_conn *c, struct event_base *base, const struct sockaddr *sa,
                    socklen_t salen, const struct timeval *timeout);
void sg_conn_setcb(struct sg_conn *c, sg_conn_data_cb readcb, sg_conn_data_cb writecb,
                   sg_conn_event_cb eventcb, void *arg);
void sg_conn_read_on(struct sg_conn *c);
void sg_conn_read_off(struct sg_conn *c);
/* NULL or a zero timeval means no limit. */
void sg_conn_set_timeouts(struct sg_conn *c, const struct timeval *rd, const struct timeval *wr);
void sg_conn_set_write_low(struct sg_conn *c, size_t low);
/* Nothing more will be sent: once what is queued is out, the connection is
 * closed or shut down for writing (the caller does that from its write
 * callback, at once). */
void sg_conn_fin_follows(struct sg_conn *c);
/* Resumes reading if it was paused at read_high and `in` has drained. */
void sg_conn_input_drained(struct sg_conn *c);
/* Sends (moves) all of data: straight to the socket when nothing is queued,
 * with MSG_MORE when `more`; the rest is queued. Errors surface through the
 * event callback, later. */
void sg_conn_send(struct sg_conn *c, struct evbuffer *data, bool more);
/* Closes the socket and frees the buffers; safe inside the callbacks. A send
 * still waiting in the batch is attempted first, as an immediate send is. */
void sg_conn_close(struct sg_conn *c);

/* The calling thread's I/O batch over `base`: connections set up on this
 * thread afterwards use it. With enable false, or where the kernel refuses
 * io_uring (old kernel, seccomp, io_uring_disabled), returns NULL and every
 * read and send stays a plain syscall. Create, use and free it on one thread. */
struct sg_iobatch *sg_iob_new(struct event_base *base, bool enable);
/* Issues what is queued, then frees; the thread goes back to plain syscalls. */
void sg_iob_free(struct sg_iobatch *b);

#endif
