/* lb.h: the balancer registry (lb.c) and the rules every algorithm shares
 * (lb_common.c). */
#ifndef SURGEGATE_LB_H
#define SURGEGATE_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "surgegate/lb-t.h"

/* The algorithms (lb_*.c). Outside the registry and the unit tests, reach
 * them through sg_lb_find() / sg_lb_at(). */
extern const struct sg_lb_ops sg_lb_roundrobin;
extern const struct sg_lb_ops sg_lb_leastreq;
extern const struct sg_lb_ops sg_lb_ewma;
extern const struct sg_lb_ops sg_lb_hash;
extern const struct sg_lb_ops sg_lb_random;

/* Returns the algorithm called `name`, the default for NULL, or NULL for a
 * name no balancer has. Pure, any thread. */
const struct sg_lb_ops *sg_lb_find(const char *name);

/* The balancer of a pool whose config names none ("roundrobin"). */
const struct sg_lb_ops *sg_lb_default(void);

/* The registered balancers in order, i = 0, 1, ...: the i-th one, or NULL
 * past the last. sg_lb_name(i) is its name (NULL past the last): the one
 * list of balancer names, for validation and messages. Pure, any thread. */
const struct sg_lb_ops *sg_lb_at(size_t i);
const char *sg_lb_name(size_t i);

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
