/* cfg_lint.c: capacity warnings on a loaded configuration.
 *
 * Each warning is a mistake that has caused real outages: a config that loads
 * fine but falls over at the first traffic surge. They are warnings, not
 * errors: `surgegate -t` still exits 0, and the proxy starts. */
#include <stdlib.h>
#include <sys/resource.h>

#include "cfg-internal.h"
#include "surgegate/common.h"

/* Marks in reach[] the pools that frontend fe can send requests to. */
static void lint_reach(const struct sg_cfg *cfg, const struct sg_cfg_frontend *fe, bool *reach)
{
    for (size_t i = 0; i < cfg->npools; i++)
        reach[i] = false;
    if (fe->default_pool_index >= 0 && (size_t)fe->default_pool_index < cfg->npools)
        reach[fe->default_pool_index] = true;
    for (size_t r = 0; r < fe->nroutes; r++) {
        int idx = fe->routes[r].pool_index;
        if (idx >= 0 && (size_t)idx < cfg->npools)
            reach[idx] = true;
    }
}

static int lint_maxconn_line(const struct sg_cfg_frontend *fe)
{
    return fe->maxconn_line > 0 ? fe->maxconn_line : fe->line;
}

/* 1. The backends behind a frontend accept fewer connections than the
 * frontend: beyond that, requests queue and then fail. Only when the total is
 * known: every serving (non-backup, weight > 0) backend has a maxconn, and no
 * reachable pool changes size at runtime (autoscale). */
static void lint_backend_capacity(const struct sg_cfg *cfg, struct sg_cfg_diags *d, bool *reach)
{
    for (size_t f = 0; f < cfg->nfrontends; f++) {
        const struct sg_cfg_frontend *fe = &cfg->frontends[f];
        unsigned long long sum = 0;
        bool known = true, any = false;

        lint_reach(cfg, fe, reach);
        for (size_t p = 0; p < cfg->npools && known; p++) {
            const struct sg_cfg_pool *pool = &cfg->pools[p];
            size_t serving = 0;
            if (!reach[p])
                continue;
            any = true;
            /* members found at run time: how many is not known here */
            if (pool->autoscale.enabled || pool->discover.enabled) {
                known = false;
                break;
            }
            for (size_t b = 0; b < pool->nbackends; b++) {
                const struct sg_cfg_backend *be = &pool->backends[b];
                if (be->backup || be->weight == 0)
                    continue;
                if (be->maxconn == 0 || be->host != NULL) {
                    known = false;
                    break;
                }
                sum += be->maxconn;
                serving++;
            }
            if (serving == 0)
                known = false;
        }
        if (known && any && sum < fe->maxconn)
            sg_cfg_diag_add(d, SG_CFG_WARNING, lint_maxconn_line(fe),
                            "frontend '%s' accepts %u connections (maxconn) but the backends of "
                            "its pools accept only %llu in total (sum of backend maxconn): under "
                            "load the rest queue and then get 503; add backends or lower the "
                            "frontend maxconn",
                            fe->name, fe->maxconn, sum);
    }
}

/* 2. The open-file limit is below what the configured connections need.
 * Client side: the sum of frontend maxconn. Backend side, per pool: the sum of
 * its backends' maxconn, an unlimited backend counting as the maxconn of the
 * frontends that reach the pool; but never more than those frontends can
 * bring, since each upstream connection serves one client connection. Plus 64
 * for listeners, health checks, hooks, logs and the admin API. */
static void lint_nofile(const struct sg_cfg *cfg, struct sg_cfg_diags *d, bool *reach)
{
    unsigned long long clients = 0, upstream = 0, need;
    unsigned long long *pool_reach = sg_xcalloc(cfg->npools, sizeof(*pool_reach));
    const struct sg_cfg_frontend *biggest = NULL;
    struct rlimit rl;

    for (size_t f = 0; f < cfg->nfrontends; f++) {
        const struct sg_cfg_frontend *fe = &cfg->frontends[f];
        clients += fe->maxconn;
        if (biggest == NULL || fe->maxconn > biggest->maxconn)
            biggest = fe;
        lint_reach(cfg, fe, reach);
        for (size_t p = 0; p < cfg->npools; p++)
            pool_reach[p] += reach[p] ? fe->maxconn : 0;
    }
    for (size_t p = 0; p < cfg->npools; p++) {
        const struct sg_cfg_pool *pool = &cfg->pools[p];
        unsigned long long cap = 0;
        for (size_t b = 0; b < pool->nbackends; b++) {
            uint32_t mc = pool->backends[b].maxconn;
            cap += mc != 0 ? mc : pool_reach[p];
        }
        upstream += cap < pool_reach[p] ? cap : pool_reach[p];
    }
    free(pool_reach);
    need = clients + upstream + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        (unsigned long long)rl.rlim_cur >= need)
        return;
    sg_cfg_diag_add(d, SG_CFG_WARNING, biggest != NULL ? lint_maxconn_line(biggest) : 0,
                    "open file limit (RLIMIT_NOFILE) is %llu but the configured connections "
                    "need up to %llu file descriptors (%llu client + %llu backend connections "
                    "+ 64 spare): raise it with LimitNOFILE=%llu in the systemd unit or "
                    "`ulimit -n %llu` in the shell, or lower maxconn",
                    (unsigned long long)rl.rlim_cur, need, clients, upstream, need, need);
}

void sg_cfg_lint(const struct sg_cfg *cfg, struct sg_cfg_diags *d)
{
    const struct sg_cfg_timeouts *to = &cfg->timeouts;
    const struct {
        const char *name;
        bool set;
        uint32_t ms;
    } wanted[] = {
        {"connect", to->set_connect, to->connect_ms},
        {"http_request", to->set_http_request, to->http_request_ms},
        {"client", to->set_client, to->client_ms},
        {"server", to->set_server, to->server_ms},
        {"queue", to->set_queue, to->queue_ms},
    };
    bool *reach = sg_xcalloc(cfg->npools, sizeof(*reach));

    lint_backend_capacity(cfg, d, reach);
    lint_nofile(cfg, d, reach);
    free(reach);

    /* 3. A request waiting in the queue is still a client waiting: if the
     * queue may hold it longer than the client timeout, the client side gives
     * up first and the queue limit never applies. */
    if (to->queue_ms > to->client_ms) {
        char q[32], c[32];
        cfg_format_duration(to->queue_ms, q, sizeof(q));
        cfg_format_duration(to->client_ms, c, sizeof(c));
        sg_cfg_diag_add(d, SG_CFG_WARNING, to->queue_line > 0 ? to->queue_line : to->line,
                        "timeout 'queue' (%s) is longer than timeout 'client' (%s): queued "
                        "requests hit the client timeout first; make 'queue' shorter",
                        q, c);
    }

    /* 4. Defaults are rarely right for a given application: say which ones
     * are in effect so that the choice is deliberate. */
    for (size_t i = 0; i < SG_ARRAY_SIZE(wanted); i++) {
        char v[32];
        if (wanted[i].set)
            continue;
        cfg_format_duration(wanted[i].ms, v, sizeof(v));
        sg_cfg_diag_add(d, SG_CFG_WARNING, to->line, "timeout '%s' not set, using default %s",
                        wanted[i].name, v);
    }
}
