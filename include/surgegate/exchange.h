/* exchange.h: one request's exchange with a backend (see exchange-t.h).
 * Every function runs on the worker thread that owns the exchange. */
#ifndef SURGEGATE_EXCHANGE_H
#define SURGEGATE_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "surgegate/exchange-t.h"

struct sg_cfg_retry_budget;
struct sg_worker;

/* The high mark in force: SG_OUT_HIGH, or 0 while the connections' buffers
 * are over limits.buffer_memory (sg_conn_buffers_full). */
size_t sg_exchange_out_high(void);

/* Sets x up for a client side (once per client connection): ops are called
 * with cl. SG_OK, or SG_ERR (out of memory; x needs no sg_exchange_free). */
int sg_exchange_init(struct sg_exchange *x, struct sg_worker *w, const struct sg_wfrontend *fe,
                     const struct sg_xclient_ops *ops, void *cl);

/* Ends a request in progress without calling ops (closes the backend
 * connection, gives the slot back, leaves the queue) and frees x's memory. */
void sg_exchange_free(struct sg_exchange *x);

/* A new request begins on the client side: forgets the last one's facts
 * (pool, backend, timings). x must be IDLE. */
void sg_exchange_begin(struct sg_exchange *x);

/* Between requests of a keep-alive connection: holds no head or replay memory. */
void sg_exchange_park(struct sg_exchange *x);

/* Starts the exchange of the request in x->rq, filled by the client side
 * (IDLE -> CONNECT). What follows comes through ops: `ready` once a backend
 * connection is there, or `fail` (503 when no pool, backend or queue room). */
void sg_exchange_start(struct sg_exchange *x);

/* Request body pieces while RELAY: framed for the backend (chunked when
 * x->rq.chunked) and staged in the worker's w->uout, kept for a resend while
 * the request is small. */
void sg_exchange_req_body(struct sg_exchange *x, const char *p, size_t n);
/* Moves n raw bytes (a Content-Length body) out of src. */
void sg_exchange_req_body_move(struct sg_exchange *x, struct evbuffer *src, size_t n);
/* The request is complete (the chunked terminator is staged when needed). */
void sg_exchange_req_end(struct sg_exchange *x);
/* Sends what is staged in w->uout to the backend (MSG_MORE when `more`);
 * discards it when there is no backend connection. */
void sg_exchange_send_req(struct sg_exchange *x, bool more);
/* True when the backend's output holds more than SG_OUT_HIGH bytes: the
 * client side stops reading until ops->req_resume. */
bool sg_exchange_req_full(const struct sg_exchange *x);

/* The client's output drained: reading the backend may resume. */
void sg_exchange_resp_resume(struct sg_exchange *x);

/* The client side ends the request early (its own error answer, a timeout,
 * a close): the backend connection is closed, the slot and queue place
 * given back; no op is called. x is IDLE afterwards. Idempotent. */
void sg_exchange_stop(struct sg_exchange *x);

/* Records the request that ended in the stats of its pool and backend and
 * in the access log: r carries the client side's facts (status, bytes, and
 * when an access log is configured the request line fields); the exchange
 * adds pool, backend, timings and retries. t_start_us: monotonic time of
 * the request's first byte. */
void sg_exchange_record(struct sg_exchange *x, struct sg_alog_rec *r, uint64_t t_start_us,
                        enum sg_end end);

/* True while a backend connection is ready for the request body. */
static inline bool sg_exchange_relaying(const struct sg_exchange *x)
{
    return x->state == SG_XS_RELAY;
}

/* Health checks took backends down (their down_gen moved since the last
 * call; with `again`, every backend down now): each of w's requests still
 * waiting for the first response byte of such a backend is retried on
 * another backend at once when it may be (idempotent, replayable, retries
 * left) and the retry budget allows; the others keep waiting. Returns how
 * many only the budget kept: the caller asks again (`again` = true) a
 * little later, once some retries have ended. Worker thread, from the kick
 * that follows a backend state change. */
uint32_t sg_exchange_backends_down(struct sg_worker *w, bool again);

/* The retry decision after a failed attempt: a pure function. The retry
 * budget is asked separately (sg_retry_budget_allows) for SG_XR_RETRY (a
 * timeout, or a backend taken down: what a busy pool shows); SG_XR_RESEND
 * (refused, or closed before any response byte: a backend that is gone)
 * is retried without asking it. Both cost one of the pool's `retries`. */
enum sg_xretry sg_exchange_retry_decide(const struct sg_xretry_in *in);

/* Envoy's retry budget: retries in flight stay under rb->percent of the
 * pool's active requests, rb->min_retries always allowed. `retrying` counts
 * the retries in flight other than this request's. */
bool sg_retry_budget_allows(const struct sg_cfg_retry_budget *rb, uint32_t active,
                            uint32_t retrying);

#endif
