/* reload.c: generations of the running configuration (reload.h).
 *
 * A reload never touches what the running workers use: it builds a new
 * generation (configuration, pools, gates, workers) beside the old one, with
 * the old pools' runtime state carried over and the old listening sockets
 * shared (a duplicate descriptor of the same socket, so the port never
 * closes and a connection waiting in a backlog is accepted by whichever
 * generation looks first). main.c then moves the control plane to it and
 * stops the old workers gracefully; the old generation is freed once they
 * have ended. */
#include <string.h>

#include "surgegate/cfg.h"
#include "surgegate/common.h"
#include "surgegate/gate.h"
#include "surgegate/log.h"
#include "surgegate/pool.h"
#include "surgegate/reload.h"
#include "surgegate/stats.h"
#include "surgegate/worker.h"

/* ------------------------------------------------------------ carrying */

static bool reload_same_addr(const struct sg_backend *a, const struct sg_backend *b)
{
    return a->sslen == b->sslen && memcmp(&a->ss, &b->ss, a->sslen) == 0;
}

/* The live backend of p at ob's socket address, or NULL. */
static struct sg_backend *reload_find(struct sg_pool *p, const struct sg_backend *ob)
{
    for (size_t j = 0, n = sg_pool_nused(p); j < n; j++) {
        struct sg_backend *b = &p->backends[j];
        if (sg_backend_live(b) && reload_same_addr(b, ob))
            return b;
    }
    return NULL;
}

static void reload_carry_backend(struct sg_backend *b, const struct sg_backend *ob)
{
    int adm = atomic_load(&ob->admin);
    if (adm == SG_ADMIN_DRAIN || adm == SG_ADMIN_MAINT) /* an operator's doing */
        atomic_store(&b->admin, adm);
    /* With checks off in the new file nothing would bring it back up. */
    bool checked = b->pool->cfg != NULL && b->pool->cfg->health.enabled;
    atomic_store(&b->health, checked ? atomic_load(&ob->health) : SG_HEALTH_UP);
    atomic_store(&b->eject_until, atomic_load(&ob->eject_until));
    atomic_store(&b->ramp_from, atomic_load(&ob->ramp_from));
    /* A weight changed at runtime (or of a backend added at runtime) wins
     * over the file's. */
    if (ob->cfg == NULL || atomic_load(&ob->weight) != ob->cfg->weight)
        atomic_store(&b->weight, atomic_load(&ob->weight));
    if (ob->cfg == NULL)
        atomic_store(&b->maxconn, atomic_load(&ob->maxconn));
    atomic_store(&b->consec_errors, atomic_load(&ob->consec_errors));
    atomic_store(&b->requests, atomic_load(&ob->requests));
    atomic_store(&b->failures, atomic_load(&ob->failures));
    b->state_since_ms = ob->state_since_ms;
    memcpy(b->reason, ob->reason, sizeof(b->reason));
    b->nejections = ob->nejections;
    b->last_state = ob->last_state;
}

#define CARRY(f) atomic_store(&to->f, atomic_load(&to->f) + atomic_load(&from->f))

static void reload_carry_counters(struct sg_pool *to, const struct sg_pool *from)
{
    CARRY(retries_total);
    CARRY(retries_denied);
    CARRY(queue.overflows);
    CARRY(queue.episodes);
    CARRY(queue.done);
    for (int p = 0; p < SG_PRIO_N; p++) {
        CARRY(queue.admitted[p]);
        CARRY(queue.queued[p]);
        for (int r = 0; r < SG_SHED_N; r++)
            CARRY(queue.shed[p][r]);
    }
    /* The measured drain rate: the new queue sheds from its first request. */
    to->queue.drain = from->queue.drain;
    atomic_store(&to->queue.drain_rps, atomic_load(&from->queue.drain_rps));
}

#undef CARRY

static void reload_carry_pool(struct sg_pool *p, const struct sg_pool *op, json_t *report)
{
    json_t *runtime = json_object_get(report, "runtime_backends");
    json_t *removed = json_object_get(report, "removed_backends");
    size_t carried = 0;
    for (size_t j = 0, n = sg_pool_nused(op); j < n; j++) {
        const struct sg_backend *ob = &op->backends[j];
        if (!sg_backend_live(ob) || atomic_load(&ob->removing))
            continue;
        struct sg_backend *b = reload_find(p, ob);
        if (b == NULL && ob->cfg == NULL) {
            /* Added at runtime: it stays, in a free slot. */
            char err[200];
            if (sg_pool_add_backend(p, ob->name, atomic_load(&ob->weight),
                                    atomic_load(&ob->maxconn), false, &b, err,
                                    sizeof(err)) != SG_CTL_OK) {
                sg_log_warn("reload: pool '%s': backend %s added at runtime is lost: %s", p->name,
                            ob->name, err);
                continue;
            }
            if (runtime != NULL)
                json_array_append_new(runtime, json_sprintf("%s/%s", p->name, ob->name));
        }
        if (b == NULL) {
            if (removed != NULL)
                json_array_append_new(removed, json_sprintf("%s/%s", p->name, ob->name));
            continue;
        }
        reload_carry_backend(b, ob);
        carried++;
    }
    atomic_fetch_add(&p->members_gen, 1);
    reload_carry_counters(p, op);
    if (report != NULL)
        json_object_set_new(report, "carried",
                            json_integer(json_integer_value(json_object_get(report, "carried")) +
                                         (json_int_t)carried));
}

void sg_pools_carry(struct sg_pools *to, const struct sg_pools *from, json_t *report)
{
    if (report != NULL) {
        json_object_set_new(report, "carried", json_integer(0));
        json_object_set_new(report, "runtime_backends", json_array());
        json_object_set_new(report, "removed_backends", json_array());
        json_object_set_new(report, "pools_added", json_array());
        json_object_set_new(report, "pools_removed", json_array());
    }
    for (size_t i = 0; i < to->n; i++) {
        struct sg_pool *p = &to->pools[i];
        const struct sg_pool *op = sg_pools_find(from, p->name);
        if (op != NULL)
            reload_carry_pool(p, op, report);
        else if (report != NULL)
            json_array_append_new(json_object_get(report, "pools_added"), json_string(p->name));
    }
    for (size_t i = 0; report != NULL && i < from->n; i++)
        if (sg_pools_find(to, from->pools[i].name) == NULL)
            json_array_append_new(json_object_get(report, "pools_removed"),
                                  json_string(from->pools[i].name));
}

size_t sg_reload_refused(const struct sg_cfg *old, const struct sg_cfg *cfg, json_t *errs)
{
    size_t n = 0;
    if (old->workers != cfg->workers) {
        json_array_append_new(errs, json_sprintf("workers %u -> %u: a worker count is changed by "
                                                 "a restart or a binary upgrade",
                                                 old->workers, cfg->workers));
        n++;
    }
    uint32_t js = old->journal.size ? old->journal.size : 10000;
    uint32_t jn = cfg->journal.size ? cfg->journal.size : 10000;
    bool jp = (old->journal.path == NULL) != (cfg->journal.path == NULL) ||
              (old->journal.path != NULL && strcmp(old->journal.path, cfg->journal.path) != 0);
    if (js != jn || jp) {
        json_array_append_new(errs, json_string("journal: its path and size are changed by a "
                                                "restart (the journal is kept across reloads)"));
        n++;
    }
    return n;
}

/* ---------------------------------------------------------- generations */

struct sg_gen *sg_gen_new(struct sg_cfg *cfg, const struct sg_gen *prev,
                          const struct sg_lfds *inherit, struct sg_alog *alog, json_t *report)
{
    struct sg_gen *g = sg_xcalloc(1, sizeof(*g));
    g->cfg = cfg;
    if (sg_pools_build(&g->pools, cfg) != SG_OK) {
        sg_gen_free(g);
        return NULL;
    }
    if (prev != NULL)
        sg_pools_carry(&g->pools, &prev->pools, report);
    g->nworkers = cfg->workers;
    g->workers = sg_xcalloc(g->nworkers, sizeof(*g->workers));
    /* Each frontend's maxconn is one limit for all the workers. */
    g->gates = sg_xcalloc(cfg->nfrontends > 0 ? cfg->nfrontends : 1, sizeof(*g->gates));
    for (size_t i = 0; i < cfg->nfrontends; i++)
        sg_gate_init(&g->gates[i], cfg->frontends[i].maxconn, g->nworkers);
    /* The running generation's listening sockets are shared, not bound
     * again (with `inherit`'s, from the process being replaced). */
    struct sg_lfds own = {0};
    for (uint32_t i = 0; prev != NULL && i < prev->nworkers; i++)
        sg_worker_listeners(prev->workers[i], &own);
    for (size_t i = 0; inherit != NULL && i < inherit->n; i++)
        sg_lfds_add(&own, inherit->v[i].worker, &inherit->v[i].ss, inherit->v[i].sslen,
                    inherit->v[i].fd);
    /* Bind every listener before any thread starts: a bad port fails now. */
    for (uint32_t i = 0; i < g->nworkers; i++) {
        g->workers[i] = sg_worker_new(i, g->nworkers, cfg, &g->pools, g->gates, &own);
        if (g->workers[i] == NULL) {
            sg_lfds_free(&own);
            sg_gen_free(g);
            return NULL;
        }
        sg_worker_set_alog(g->workers[i], alog);
    }
    sg_lfds_free(&own);
    return g;
}

int sg_gen_start(struct sg_gen *g)
{
    for (; g->started < g->nworkers; g->started++)
        if (sg_worker_start(g->workers[g->started]) != SG_OK)
            break;
    if (g->started == g->nworkers)
        return SG_OK;
    sg_gen_stop(g);
    return SG_ERR;
}

void sg_gen_stop(struct sg_gen *g)
{
    if (g->retired_ms == 0)
        g->retired_ms = sg_now_ms();
    for (uint32_t i = 0; i < g->started; i++)
        sg_worker_stop(g->workers[i]);
}

bool sg_gen_done(const struct sg_gen *g)
{
    for (uint32_t i = 0; i < g->started; i++)
        if (!sg_worker_done(g->workers[i]))
            return false;
    return true;
}

void sg_gen_free(struct sg_gen *g)
{
    if (g == NULL)
        return;
    for (uint32_t i = 0; i < g->started; i++)
        sg_worker_join(g->workers[i]);
    if (g->workers != NULL) {
        for (uint32_t i = 0; i < g->nworkers; i++)
            sg_worker_free(g->workers[i]);
        free(g->workers);
    }
    if (g->gates != NULL) {
        for (size_t i = 0; i < g->cfg->nfrontends; i++)
            sg_gate_destroy(&g->gates[i]);
        free(g->gates);
    }
    sg_stats_free(g->stats); /* not folded: the process is stopping */
    sg_pools_free(&g->pools);
    sg_cfg_free(g->cfg);
    free(g);
}
