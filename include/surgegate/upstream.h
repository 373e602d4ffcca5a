/* upstream.h: backend connections and the per-worker idle keep-alive pool. */
#ifndef SURGEGATE_UPSTREAM_H
#define SURGEGATE_UPSTREAM_H

#include "surgegate/conn.h"

#include "surgegate/upstream-t.h"

/* Returns a connection to backend b for the calling worker: the most recently
 * idled keep-alive connection when allow_idle and one exists (c->reused set,
 * c->connected set), else a new non-blocking connect in progress (the
 * SG_CONN_CONNECTED event reports completion to eventcb). Callbacks are
 * installed before return. NULL when no socket could be made. The caller
 * owns the result and gives it back with sg_upstream_release/_free. */
struct sg_upconn *sg_upstream_acquire(struct sg_worker *w, struct sg_backend *b, bool allow_idle,
                                      sg_conn_data_cb readcb, sg_conn_data_cb writecb,
                                      sg_conn_event_cb eventcb, void *arg);

/* Gives a connection back after a complete exchange. When reusable and the
 * idle pool has room it is parked (read enabled to notice a close, idle
 * timeout armed); otherwise it is closed. */
void sg_upstream_release(struct sg_upconn *c, bool reusable);

/* Closes a connection now. */
void sg_upstream_free(struct sg_upconn *c);

/* Closes every idle connection of worker w (graceful stop). */
void sg_upstream_close_idle(struct sg_worker *w);

/* Closes w's idle connections to backends that are not usable now
 * (drain, maint, down, ejected). */
void sg_upstream_close_unusable(struct sg_worker *w);

#endif
