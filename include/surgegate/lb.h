/* lb.h: balancer registry and the rules every algorithm shares. */
#ifndef SURGEGATE_LB_H
#define SURGEGATE_LB_H

#include <stdbool.h>

#include "surgegate/lb-t.h"

extern const struct sg_lb_ops sg_lb_roundrobin;
extern const struct sg_lb_ops sg_lb_leastreq;
extern const struct sg_lb_ops sg_lb_ewma;
extern const struct sg_lb_ops sg_lb_hash;
extern const struct sg_lb_ops sg_lb_random;

/* Returns the algorithm called `name`, or NULL. */
const struct sg_lb_ops *sg_lb_find(const char *name);

/* True when backend id is in req->exclude. */
bool sg_lb_excluded(const struct sg_lb_req *req, uint32_t id);

/* Which set to pick from: false = primaries, true = backups. Backups serve
 * only when no primary backend is usable (HAProxy's rule: a full primary
 * queues, it does not spill to backups). Exclusions count as unusable, so a
 * retry can reach a backup once every primary was tried. */
bool sg_lb_use_backup(const struct sg_pool *pool, const struct sg_lb_req *req);

/* True when b may be picked for req from the set `backup`: b->backup ==
 * backup, usable, not excluded, and (unless req->ignore_room) has room. */
bool sg_lb_eligible(const struct sg_backend *b, const struct sg_lb_req *req, bool backup);

/* req->now_ms, or sg_now_ms() when req is NULL. */
uint64_t sg_lb_now(const struct sg_lb_req *req);

#endif
