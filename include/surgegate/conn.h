/* conn.h: non-blocking stream sockets (see conn-t.h). All functions run on
 * the thread owning the event base; callbacks may close the connection.
 *
 * Every byte goes through the connection's transport (c->tp, transport-t.h):
 * sg_conn_init and sg_conn_connect set plain TCP, sg_conn_set_transport
 * another. Not yet supported (for TLS to add): a transport whose read waits
 * for the socket to be writable, or whose write waits for it to be readable
 * (*wait changed from its preset value); conn.c stops on it (SG_BUG_ON). */
#ifndef SURGEGATE_CONN_H
#define SURGEGATE_CONN_H

#include <sys/socket.h>

#include "surgegate/conn-t.h"

/* Above this many bytes waiting for a peer, its producer pauses; it resumes
 * at or below SG_OUT_LOW. Both sides of the proxy use the same marks. A read
 * from a backend takes at most what SG_OUT_BUDGET leaves beside the bytes
 * still waiting for the client (a whole 64 KiB response in one read when
 * the client keeps up), so a client that stops reading holds at most
 * ~64 KiB of proxy memory (the kernel's socket buffers come on top). */
#define SG_OUT_HIGH   (32 * 1024)
#define SG_OUT_LOW    (16 * 1024)
#define SG_OUT_BUDGET (64 * 1024)

/* TCP_NOTSENT_LOWAT of client sockets (set on the listeners, inherited by
 * accepted sockets): unsent response bytes the kernel holds for a client,
 * beyond those in flight. */
#define SG_CLIENT_NOTSENT_LOWAT (16 * 1024)

struct event_base;

/* The bytes all connections hold in their buffers, summed (within 64 KiB
 * per thread: each thread adds its changes in steps), and the limit
 * (limits.buffer_memory; 0: none). Over it, sg_conn_buffers_full() is true
 * and the relays stop reading from a peer whose other side still has bytes
 * to send, and reads take at most 4 KiB: each connection then holds about
 * one small read until clients drain. sg_conn_buffers_hits() counts the times the total went over.
 */
void sg_conn_set_buffer_limit(uint64_t bytes);
uint64_t sg_conn_buffered(void);
bool sg_conn_buffers_full(void);
uint64_t sg_conn_buffers_hits(void);

/* Wraps an accepted, non-blocking socket (owned from now on: closed by
 * sg_conn_close, also on failure) with the TCP transport. SG_OK or SG_ERR. */
int sg_conn_init(struct sg_conn *c, struct event_base *base, int fd);
/* Starts a non-blocking connect; completion or failure is reported to the
 * event callback (SG_CONN_CONNECTED, or SG_CONN_ERROR / SG_CONN_TIMEOUT with
 * SG_CONN_WRITING), never from inside this call. The write timeout in force
 * (sg_conn_set_timeouts) bounds the connect. The transport is TCP. SG_OK or
 * SG_ERR (no socket). */
int sg_conn_connect(struct sg_conn *c, struct event_base *base, const struct sockaddr *sa,
                    socklen_t salen, const struct timeval *timeout);
/* Puts c over transport tp with its state ctx (stored as c->tp_ctx; the
 * transport's close releases it). Call right after sg_conn_init or
 * sg_conn_connect, before any read or send is asked for. A transport without
 * SG_TP_F_BATCH takes c out of the thread's I/O batch: its reads, sends and
 * close are plain calls of its operations. */
void sg_conn_set_transport(struct sg_conn *c, const struct sg_transport_ops *tp, void *ctx);
/* readcb: new bytes in c->in; writecb (may be NULL): c->out drained to
 * write_low or below after a deferred send; eventcb: SG_CONN_* flags, errno
 * set for SG_CONN_ERROR. Each may close c. */
void sg_conn_setcb(struct sg_conn *c, sg_conn_data_cb readcb, sg_conn_data_cb writecb,
                   sg_conn_event_cb eventcb, void *arg);
/* Starts (resumes) reading, within read_high. An accepted connection's first
 * read goes with this loop pass's batch, before epoll is asked about it. */
void sg_conn_read_on(struct sg_conn *c);
void sg_conn_read_off(struct sg_conn *c);
/* NULL or a zero timeval means no limit. */
void sg_conn_set_timeouts(struct sg_conn *c, const struct timeval *rd, const struct timeval *wr);
void sg_conn_set_write_low(struct sg_conn *c, size_t low);
/* Nothing more will be sent: once what is queued is out, the connection is
 * closed or shut down for writing (the caller does that from its write
 * callback, at once, with sg_conn_close or sg_conn_shutdown). */
void sg_conn_fin_follows(struct sg_conn *c);
/* Resumes reading if it was paused at read_high and `in` has drained. */
void sg_conn_input_drained(struct sg_conn *c);
/* Sends (moves) all of data: through the transport at once when nothing is
 * queued (a small send of a batchable transport goes with the batch, at the
 * end of this loop pass), with MSG_MORE when `more`; the rest is queued
 * behind EPOLLOUT. Errors surface through the event callback, later. */
void sg_conn_send(struct sg_conn *c, struct evbuffer *data, bool more);
/* Shuts the connection down for writing through the transport (TCP: a FIN
 * with shutdown(SHUT_WR)); reading goes on, until the peer's EOF. Bytes
 * handed to sg_conn_send go first: a send still waiting in the batch is
 * attempted now, as sg_conn_close does, and when some are left queued
 * (behind EPOLLOUT) the shutdown happens once they are out. Nothing may be
 * sent afterwards. Errors are not reported (the next read meets them), nor is
 * a transport's SG_AGAIN retried yet (TCP never returns it). */
void sg_conn_shutdown(struct sg_conn *c);
/* Closes the socket through the transport (its state is released) and frees
 * the buffers; safe inside the callbacks. A send still waiting in the batch
 * is attempted first, as an immediate send is; bytes queued behind EPOLLOUT
 * are dropped. */
void sg_conn_close(struct sg_conn *c);

/* The calling thread's I/O batch over `base`: connections set up on this
 * thread afterwards use it. With enable false, or where the kernel refuses
 * io_uring (old kernel, seccomp, io_uring_disabled), returns NULL and every
 * read and send stays a plain syscall. Create, use and free it on one thread. */
struct sg_iobatch *sg_iob_new(struct event_base *base, bool enable);
/* Issues what is queued, then frees; the thread goes back to plain syscalls. */
void sg_iob_free(struct sg_iobatch *b);

#endif
