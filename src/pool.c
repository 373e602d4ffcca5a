/* pool.c: runtime pools and backends built from the config; membership
 * changes at runtime. Each pool's balancer comes from the registry (lb.c). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "surgegate/cfg.h"
#include "surgegate/common.h"
#include "surgegate/lb.h"
#include "surgegate/log.h"
#include "surgegate/members.h"
#include "surgegate/pool.h"
#include "surgegate/queue.h"

/* ------------------------------------------------------------ backends */

/* The facts a balancer asks about one backend (usable, weight, room) are in
 * backend.c. */

enum sg_backend_state sg_backend_state(const struct sg_backend *b, uint64_t now_ms)
{
    int adm = atomic_load_explicit(&b->admin, memory_order_relaxed);
    if (adm == SG_ADMIN_MAINT)
        return SG_BACKEND_MAINT;
    if (adm == SG_ADMIN_DRAIN)
        return SG_BACKEND_DRAIN;
    if (atomic_load_explicit(&b->health, memory_order_relaxed) == SG_HEALTH_CHECKING)
        return SG_BACKEND_CHECKING;
    if (!sg_backend_usable(b, now_ms) && b->weight > 0)
        return SG_BACKEND_DOWN;
    return SG_BACKEND_UP;
}

const char *sg_backend_state_name(enum sg_backend_state st)
{
    switch (st) {
    case SG_BACKEND_UP:
        return "up";
    case SG_BACKEND_DOWN:
        return "down";
    case SG_BACKEND_DRAIN:
        return "drain";
    case SG_BACKEND_MAINT:
        return "maint";
    case SG_BACKEND_CHECKING:
        return "checking";
    case SG_BACKEND__COUNT:
        break;
    }
    return "?";
}

/* --------------------------------------------------------------- pools */

/* Free slots a pool keeps for backends added at runtime: enough for its
 * autoscale max, and at least SG_POOL_SPARE_SLOTS; plus, for members found
 * at run time (discover.c), twice what its sources may give (a removed
 * member's slot is not reused for SG_SLOT_REUSE_MS, so a whole set may be
 * replaced while the old one drains). */
#define SG_POOL_SPARE_SLOTS 64u
/* Most A/AAAA records taken for one host-name backend (discover.c). */
#define SG_POOL_NAME_MEMBERS 16u

static void backend_slot_init(struct sg_backend *b, struct sg_pool *p, uint32_t id)
{
    b->magic = SG_BACKEND_MAGIC;
    b->id = id;
    b->pool = p;
    b->name = b->name_buf;
    atomic_init(&b->admin, SG_ADMIN_EMPTY);
    atomic_init(&b->health, SG_HEALTH_UP);
    atomic_init(&b->down_gen, 0);
    atomic_init(&b->eject_until, 0);
    atomic_init(&b->ramp_from, 0);
    atomic_init(&b->weight, 0);
    atomic_init(&b->maxconn, 0);
    atomic_init(&b->removing, false);
    atomic_init(&b->inflight, 0);
    atomic_init(&b->awaiting, 0);
    atomic_init(&b->ttfb_max_ms, 0);
    atomic_init(&b->progress_ms, 0);
    atomic_init(&b->queue_depth, 0);
    atomic_init(&b->consec_errors, 0);
    atomic_init(&b->requests, 0);
    atomic_init(&b->failures, 0);
}

static void backend_set_addr(struct sg_backend *b, const char *text,
                             const struct sockaddr_storage *ss, socklen_t sslen)
{
    snprintf(b->name_buf, sizeof(b->name_buf), "%s", text);
    b->ss = *ss;
    b->sslen = sslen;
}

int sg_pools_build(struct sg_pools *ps, const struct sg_cfg *cfg)
{
    ps->n = cfg->npools;
    ps->pools = sg_xcalloc(cfg->npools, sizeof(struct sg_pool));
    for (size_t i = 0; i < cfg->npools; i++) {
        const struct sg_cfg_pool *cp = &cfg->pools[i];
        struct sg_pool *p = &ps->pools[i];
        p->magic = SG_POOL_MAGIC;
        p->id = (uint32_t)i;
        p->name = cp->name;
        p->cfg = cp;
        p->lb = sg_lb_find(cp->balance);
        p->slowstart_ms = cp->slowstart_ms;
        sg_pqueue_init(&p->queue);
        if (p->lb == NULL) {
            p->lb = sg_lb_default();
            sg_log_warn("pool '%s': balance '%s' is not known, using %s", cp->name, cp->balance,
                        p->lb->name);
        }
        size_t spare = SG_POOL_SPARE_SLOTS;
        if (cp->autoscale.enabled && cp->autoscale.max > spare)
            spare = cp->autoscale.max;
        size_t numeric = 0;
        for (size_t j = 0; j < cp->nbackends; j++) {
            if (cp->backends[j].host != NULL)
                spare += 2 * SG_POOL_NAME_MEMBERS;
            else
                numeric++;
        }
        if (cp->discover.enabled)
            spare += 2 * (size_t)cp->discover.max_members;
        /* Backends named by a host name get no slot here: their addresses
         * are added as members once resolved (discover.c). */
        p->ncfg = numeric;
        p->nbackends = numeric + spare;
        p->backends = sg_xcalloc(p->nbackends, sizeof(struct sg_backend));
        for (size_t j = 0; j < p->nbackends; j++)
            backend_slot_init(&p->backends[j], p, (uint32_t)j);
        for (size_t j = 0, k = 0; j < cp->nbackends; j++) {
            const struct sg_cfg_backend *cb = &cp->backends[j];
            if (cb->host != NULL)
                continue;
            struct sg_backend *b = &p->backends[k++];
            b->cfg = cb;
            backend_set_addr(b, cb->address.text, &cb->address.ss, cb->address.sslen);
            atomic_init(&b->weight, cb->weight);
            atomic_init(&b->maxconn, cb->maxconn);
            b->backup = cb->backup;
            b->state_since_ms = sg_wall_ms(); /* "up since" the start */
            snprintf(b->reason, sizeof(b->reason), "configured");
            atomic_init(&b->admin, SG_ADMIN_READY);
        }
        atomic_init(&p->nlive, (uint32_t)numeric);
        atomic_init(&p->nused, (uint32_t)numeric);
        atomic_init(&p->members_gen, 1);
    }
    return SG_OK;
}

void sg_pools_free(struct sg_pools *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->pools[i].backends);
        sg_pqueue_destroy(&ps->pools[i].queue);
    }
    free(ps->pools);
    ps->pools = NULL;
    ps->n = 0;
}

struct sg_backend *sg_pool_find_addr(struct sg_pool *p, const struct sockaddr *sa)
{
    for (size_t i = 0; i < p->nbackends; i++) {
        struct sg_backend *b = &p->backends[i];
        if (sg_backend_live(b) && sg_sockaddr_same((const struct sockaddr *)&b->ss, sa))
            return b;
    }
    return NULL;
}

struct sg_backend *sg_pool_find_backend(struct sg_pool *p, const char *name, size_t len)
{
    char text[256];
    if (len < sizeof(text)) {
        struct sg_cfg_addr a;
        char why[160];
        memcpy(text, name, len);
        text[len] = '\0';
        if (sg_cfg_parse_addr(text, &a, why, sizeof(why)) == SG_OK) {
            struct sg_backend *b = sg_pool_find_addr(p, (const struct sockaddr *)&a.ss);
            sg_cfg_addr_free(&a);
            return b;
        }
    }
    for (size_t i = 0; i < p->nbackends; i++) {
        struct sg_backend *b = &p->backends[i];
        if (sg_backend_live(b) && strlen(b->name) == len && memcmp(b->name, name, len) == 0)
            return b;
    }
    return NULL;
}

struct sg_pool *sg_pools_find(const struct sg_pools *ps, const char *name)
{
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->pools[i].name, name) == 0)
            return &ps->pools[i];
    return NULL;
}

/* Slots emptied less than this long ago are not reused, so that a worker
 * still finishing with the old backend never sees its slot change under it. */
#define SG_SLOT_REUSE_MS 60000u

enum sg_ctl_err sg_pool_add_backend(struct sg_pool *p, const char *addr, uint32_t weight,
                                    uint32_t maxconn, bool checking, struct sg_backend **out,
                                    char *err, size_t errlen)
{
    struct sg_cfg_addr a = {0};
    char why[160];
    *out = NULL;
    if (sg_cfg_parse_addr(addr, &a, why, sizeof(why)) != SG_OK) {
        snprintf(err, errlen, "bad address '%s': %s", addr, why);
        sg_cfg_addr_free(&a);
        return SG_CTL_BAD_REQUEST;
    }
    if (strlen(a.text) >= SG_BACKEND_NAME_MAX) {
        snprintf(err, errlen, "address '%s' is longer than %d bytes", addr,
                 SG_BACKEND_NAME_MAX - 1);
        sg_cfg_addr_free(&a);
        return SG_CTL_BAD_REQUEST;
    }
    struct sg_backend *dup = sg_pool_find_addr(p, (const struct sockaddr *)&a.ss);
    if (dup != NULL) {
        if (strcmp(dup->name, a.text) == 0)
            snprintf(err, errlen, "pool '%s' already has backend %s", p->name, a.text);
        else
            snprintf(err, errlen, "pool '%s' already has backend %s, the same address as %s",
                     p->name, dup->name, a.text);
        sg_cfg_addr_free(&a);
        return SG_CTL_EXISTS;
    }
    uint64_t now = sg_now_ms();
    struct sg_backend *slot = NULL;
    for (size_t i = 0; i < p->nbackends && slot == NULL; i++) {
        struct sg_backend *b = &p->backends[i];
        if (!sg_backend_live(b) && atomic_load(&b->inflight) == 0 &&
            (b->emptied_ms == 0 || now >= b->emptied_ms + SG_SLOT_REUSE_MS))
            slot = b;
    }
    if (slot == NULL) {
        snprintf(err, errlen, "pool '%s' has no free backend slot (%zu slots)", p->name,
                 p->nbackends);
        sg_cfg_addr_free(&a);
        return SG_CTL_CONFLICT;
    }
    backend_set_addr(slot, a.text, &a.ss, a.sslen);
    sg_cfg_addr_free(&a);
    slot->cfg = NULL;
    slot->backup = false;
    atomic_store(&slot->weight, weight);
    atomic_store(&slot->maxconn, maxconn);
    atomic_store(&slot->eject_until, 0);
    atomic_store(&slot->consec_errors, 0);
    atomic_store(&slot->removing, false);
    atomic_store(&slot->health, checking ? SG_HEALTH_CHECKING : SG_HEALTH_UP);
    atomic_store(&slot->ramp_from, checking ? 0 : now);
    slot->nejections = 0;
    slot->state_since_ms = sg_wall_ms();
    snprintf(slot->reason, sizeof(slot->reason), "%s",
             checking ? "added: waiting for a passing health check" : "added");
    slot->last_state = checking ? SG_BACKEND_CHECKING : SG_BACKEND_UP;
    /* Publishes everything above to the workers. */
    atomic_store(&slot->admin, SG_ADMIN_READY);
    atomic_fetch_add(&p->nlive, 1);
    if (slot->id >= atomic_load(&p->nused))
        atomic_store(&p->nused, slot->id + 1);
    atomic_fetch_add(&p->members_gen, 1);
    *out = slot;
    return SG_CTL_OK;
}

void sg_pool_remove_backend(struct sg_pool *p, struct sg_backend *b)
{
    if (!sg_backend_live(b) || atomic_load(&b->removing))
        return;
    atomic_store(&b->removing, true);
    atomic_store(&b->admin, SG_ADMIN_DRAIN);
    snprintf(b->reason, sizeof(b->reason), "removing: draining");
    b->state_since_ms = sg_wall_ms();
}

void sg_pool_cancel_removal(struct sg_pool *p, struct sg_backend *b, uint32_t weight,
                            uint32_t maxconn)
{
    if (!sg_backend_live(b) || !atomic_load(&b->removing))
        return;
    atomic_store(&b->weight, weight);
    atomic_store(&b->maxconn, maxconn);
    snprintf(b->reason, sizeof(b->reason), "added again: removal cancelled");
    b->state_since_ms = sg_wall_ms();
    /* Same thread as sg_pool_reap: the slot cannot be freed meanwhile. */
    atomic_store(&b->removing, false);
    atomic_store(&b->admin, SG_ADMIN_READY);
    atomic_fetch_add(&p->members_gen, 1);
}

uint32_t sg_pool_nserving(const struct sg_pool *p)
{
    uint32_t n = 0;
    for (size_t i = 0; i < p->nbackends; i++) {
        const struct sg_backend *b = &p->backends[i];
        if (sg_backend_live(b) && !atomic_load(&b->removing))
            n++;
    }
    return n;
}

size_t sg_pool_reap(struct sg_pool *p, void (*emptied)(struct sg_backend *b, void *arg), void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nbackends; i++) {
        struct sg_backend *b = &p->backends[i];
        if (!sg_backend_live(b) || !atomic_load(&b->removing) || atomic_load(&b->inflight) != 0 ||
            atomic_load(&b->queue_depth) != 0)
            continue;
        if (emptied != NULL)
            emptied(b, arg);
        atomic_store(&b->admin, SG_ADMIN_EMPTY);
        atomic_store(&b->removing, false);
        atomic_store(&b->weight, 0);
        b->emptied_ms = sg_now_ms();
        atomic_fetch_sub(&p->nlive, 1);
        atomic_fetch_add(&p->members_gen, 1);
        n++;
    }
    return n;
}

uint32_t sg_pool_ncurrent(const struct sg_pool *p)
{
    uint32_t n = 0;
    for (size_t i = 0; i < p->nbackends; i++) {
        const struct sg_backend *b = &p->backends[i];
        if (sg_backend_live(b) && !atomic_load(&b->removing) && !b->backup)
            n++;
    }
    return n;
}
