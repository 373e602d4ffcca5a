/* control.c: the control plane (main thread). See control.h. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "surgegate/cfg-t.h"
#include "surgegate/common.h"
#include "surgegate/control.h"
#include "surgegate/health.h"
#include "surgegate/journal.h"
#include "surgegate/log.h"
#include "surgegate/pool.h"
#include "surgegate/stats.h"
#include "surgegate/worker.h"

#define CONTROL_TICK_MS 1000u

struct control_pool {
    uint64_t overflows_seen; /* queue overflows already journaled */
};

struct sg_control {
    struct event_base *base;
    const struct sg_cfg *cfg;
    struct sg_pools *pools;
    struct sg_worker **workers;
    uint32_t nworkers;
    struct sg_health *health;
    struct sg_stats *stats;
    struct event *tick;
    struct control_pool *cp;
};

static void control_kick(struct sg_control *ctl)
{
    for (uint32_t i = 0; i < ctl->nworkers; i++)
        sg_worker_kick(ctl->workers[i]);
}

static json_t *control_backend_fields(const struct sg_backend *b)
{
    return json_pack("{s:s, s:s}", "pool", b->pool->name, "backend", b->name);
}

void sg_control_backend_changed(struct sg_control *ctl, struct sg_backend *b)
{
    uint64_t now = sg_now_ms();
    if (b->pool->slowstart_ms > 0 && sg_backend_usable(b, now))
        atomic_store(&b->ramp_from, now);
    int st = (int)sg_backend_state(b, now);
    if (sg_backend_live(b) && st != b->last_state) {
        json_t *f = control_backend_fields(b);
        json_object_set_new(f, "from", json_string(sg_backend_state_name(b->last_state)));
        json_object_set_new(f, "to", json_string(sg_backend_state_name(st)));
        json_object_set_new(f, "reason", json_string(b->reason));
        const char *type = st == SG_BACKEND_DOWN ? "backend_down"
                           : st == SG_BACKEND_UP ? "backend_up"
                                                 : "backend_state";
        sg_journal_emit(type, f);
        b->last_state = st;
    }
    control_kick(ctl);
}

int sg_control_add_backend(struct sg_control *ctl, struct sg_pool *p, const char *addr,
                           uint32_t weight, uint32_t maxconn, const char *source,
                           struct sg_backend **out, char *err, size_t errlen)
{
    bool checked = p->cfg != NULL && p->cfg->health.enabled && ctl->health != NULL;
    struct sg_backend *b = NULL;
    int rc = sg_pool_add_backend(p, addr, weight, maxconn, checked, &b, err, errlen);
    if (out != NULL)
        *out = b;
    if (rc != SG_OK)
        return rc;
    sg_stats_slot_reset(ctl->stats, b);
    if (checked)
        sg_health_backend_added(ctl->health, b);
    json_t *f = control_backend_fields(b);
    json_object_set_new(f, "source", json_string(source));
    json_object_set_new(f, "weight", json_integer(weight));
    json_object_set_new(f, "maxconn", json_integer(maxconn));
    sg_journal_emit("backend_added", f);
    sg_log_info("backend %s added to pool '%s' by %s%s", b->name, p->name, source,
                checked ? " (joins when its health checks pass)" : "");
    control_kick(ctl);
    return SG_OK;
}

void sg_control_remove_backend(struct sg_control *ctl, struct sg_backend *b, const char *source)
{
    if (!sg_backend_live(b) || atomic_load(&b->removing))
        return;
    sg_pool_remove_backend(b->pool, b);
    json_t *f = control_backend_fields(b);
    json_object_set_new(f, "source", json_string(source));
    json_object_set_new(f, "inflight", json_integer(atomic_load(&b->inflight)));
    sg_journal_emit("backend_removing", f);
    sg_log_info("backend %s of pool '%s': removal asked by %s, draining", b->name, b->pool->name,
                source);
    b->last_state = SG_BACKEND_DRAIN;
    control_kick(ctl);
}

void sg_control_set_weight(struct sg_control *ctl, struct sg_backend *b, uint32_t weight,
                           const char *source)
{
    uint32_t old = atomic_exchange(&b->weight, weight);
    if (old == weight)
        return;
    atomic_fetch_add(&b->pool->members_gen, 1);
    json_t *f = control_backend_fields(b);
    json_object_set_new(f, "source", json_string(source));
    json_object_set_new(f, "from", json_integer(old));
    json_object_set_new(f, "to", json_integer(weight));
    sg_journal_emit("backend_weight", f);
    sg_log_info("backend %s of pool '%s': weight %" PRIu32 " -> %" PRIu32 " by %s", b->name,
                b->pool->name, old, weight, source);
    control_kick(ctl);
}

static void control_emptied(struct sg_backend *b, void *arg)
{
    sg_journal_emit("backend_removed", control_backend_fields(b));
    sg_log_info("backend %s of pool '%s' removed (drained)", b->name, b->pool->name);
}

void sg_control_tick(struct sg_control *ctl)
{
    sg_stats_tick(ctl->stats);
    for (size_t i = 0; i < ctl->pools->n; i++) {
        struct sg_pool *p = &ctl->pools->pools[i];
        struct control_pool *cp = &ctl->cp[i];
        if (sg_pool_reap(p, control_emptied, ctl) > 0)
            control_kick(ctl);
        uint64_t ov = atomic_load(&p->queue.overflows);
        if (ov > cp->overflows_seen) {
            /* One event per tick, not one per refused request. */
            sg_journal_emit("queue_overflow",
                            json_pack("{s:s, s:I, s:I}", "pool", p->name, "refused",
                                      (json_int_t)(ov - cp->overflows_seen), "maxqueue",
                                      (json_int_t)p->cfg->maxqueue));
            cp->overflows_seen = ov;
        }
    }
}

static void control_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    sg_control_tick(arg);
}

struct sg_control *sg_control_new(struct event_base *base, const struct sg_cfg *cfg,
                                  struct sg_pools *pools, struct sg_worker **workers,
                                  uint32_t nworkers)
{
    struct sg_control *ctl = sg_xcalloc(1, sizeof(*ctl));
    ctl->base = base;
    ctl->cfg = cfg;
    ctl->pools = pools;
    ctl->workers = workers;
    ctl->nworkers = nworkers;
    ctl->stats = sg_stats_new(pools, workers, nworkers);
    ctl->cp = sg_xcalloc(pools->n ? pools->n : 1, sizeof(struct control_pool));
    for (size_t i = 0; i < pools->n; i++)
        for (size_t j = 0; j < pools->pools[i].ncfg; j++)
            pools->pools[i].backends[j].last_state = SG_BACKEND_UP;
    ctl->tick = event_new(base, -1, EV_PERSIST, control_tick_cb, ctl);
    struct timeval tv = {CONTROL_TICK_MS / 1000, (CONTROL_TICK_MS % 1000) * 1000};
    if (ctl->tick == NULL || event_add(ctl->tick, &tv) != 0) {
        sg_log_error("control: cannot start the tick timer");
        sg_control_free(ctl);
        return NULL;
    }
    return ctl;
}

void sg_control_set_health(struct sg_control *ctl, struct sg_health *h)
{
    ctl->health = h;
}

struct sg_stats *sg_control_stats(const struct sg_control *ctl)
{
    return ctl->stats;
}

void sg_control_metrics(const struct sg_control *ctl, struct evbuffer *out)
{
    SG_UNUSED(ctl);
    SG_UNUSED(out);
}

void sg_control_free(struct sg_control *ctl)
{
    if (ctl == NULL)
        return;
    if (ctl->tick != NULL)
        event_free(ctl->tick);
    sg_stats_free(ctl->stats);
    free(ctl->cp);
    free(ctl);
}
