/* admin.h: the admin HTTP/JSON API (/api/v1/...) on the control thread. */
#ifndef SURGEGATE_ADMIN_H
#define SURGEGATE_ADMIN_H

#include "surgegate/cfg-t.h"
#include "surgegate/pool-t.h"

struct event_base;
struct sg_admin;

/* Called after an admin call changed a backend (state): the caller wakes the
 * workers so they drop idle connections and kick queues. */
typedef void (*sg_admin_changed_cb)(struct sg_backend *b, void *arg);

/* Listens on cfg->admin.listen. NULL when it cannot (logged); an explicitly
 * configured listener that fails is fatal to the caller, the implicit
 * default is not. Main thread. */
struct sg_admin *sg_admin_start(struct event_base *base, const struct sg_cfg *cfg,
                                struct sg_pools *pools, sg_admin_changed_cb changed, void *arg);
void sg_admin_stop(struct sg_admin *a);

#endif
