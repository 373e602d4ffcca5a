/* stats.c: per-worker traffic records and the control thread's snapshots.
 *
 * Workers write their own struct sg_wstats (wstats.c) with relaxed loads and
 * stores (one writer each). Once a second the main thread sums them per backend
 * slot and per pool, keeps the cumulative counts, the last ten per-second
 * samples (for rps and error_rate), the cumulative histograms (for
 * /metrics) and their sliding windows (for percentiles). Readers of the
 * snapshots (admin API, metrics, autoscaler) run on the main thread too. */
#include <math.h>
#include <string.h>

#include "surgegate/cluster-t.h"
#include "surgegate/pool.h"
#include "surgegate/stats.h"
#include "surgegate/worker-t.h"
#include "surgegate/wpool-t.h"

struct sg_stats {
    struct sg_pools *pools;
    struct sg_worker **workers;
    uint32_t nworkers;
    struct sg_snap **bsnap; /* [pool][slot] */
    struct sg_snap *psnap;  /* [pool] */
    struct sg_hist_dense scratch;
};

static const char *const lat_names[SG_LAT_N] = {"queue", "connect", "ttfb", "total"};
static const char *const ek_names[SG_EK_N] = {"connect", "timeout", "reset", "bad_response"};
static const char *const ce_names[SG_CE_N] = {"timeout", "aborted"};
static const char *const win_names[SG_WIN_N] = {"10s", "1m", "5m"};
static const unsigned win_secs[SG_WIN_N] = {10, 60, 300};

const char *sg_lat_name(enum sg_lat k)
{
    return lat_names[k];
}

const char *sg_ek_name(enum sg_ek k)
{
    return ek_names[k];
}

const char *sg_ce_name(enum sg_ce k)
{
    return ce_names[k];
}

const char *sg_win_name(enum sg_win w)
{
    return win_names[w];
}

unsigned sg_win_seconds(enum sg_win w)
{
    return win_secs[w];
}

/* ------------------------------------------------------- control thread */

static void counts_add(struct sg_counts *acc, const struct sg_wstats *w)
{
    acc->requests += atomic_load_explicit(&w->requests, memory_order_relaxed);
    for (int i = 0; i < 5; i++)
        acc->responses[i] += atomic_load_explicit(&w->responses[i], memory_order_relaxed);
    for (int i = 0; i < SG_EK_N; i++)
        acc->errors[i] += atomic_load_explicit(&w->errors[i], memory_order_relaxed);
    for (int i = 0; i < SG_CE_N; i++)
        acc->client_errors[i] += atomic_load_explicit(&w->client_errors[i], memory_order_relaxed);
    acc->retries += atomic_load_explicit(&w->retries, memory_order_relaxed);
    acc->bytes_in += atomic_load_explicit(&w->bytes_in, memory_order_relaxed);
    acc->bytes_out += atomic_load_explicit(&w->bytes_out, memory_order_relaxed);
}

static void counts_sub(struct sg_counts *a, const struct sg_counts *b)
{
#define SUB(f) a->f = a->f >= b->f ? a->f - b->f : 0
    SUB(requests);
    for (int i = 0; i < 5; i++)
        SUB(responses[i]);
    for (int i = 0; i < SG_EK_N; i++)
        SUB(errors[i]);
    for (int i = 0; i < SG_CE_N; i++)
        SUB(client_errors[i]);
    SUB(retries);
    SUB(bytes_in);
    SUB(bytes_out);
#undef SUB
}

/* Failures for error_rate: 5xx answers and upstream errors. */
static uint64_t counts_failures(const struct sg_counts *c)
{
    uint64_t n = c->responses[4];
    return n;
}

static const struct sg_hist_dense stats_zero;

static void snap_init(struct sg_snap *s)
{
    memset(s, 0, sizeof(*s));
    /* A zero first sample: traffic before the first tick counts in the rates. */
    s->ring_n = 1;
    s->ring_pos = 1;
    for (int k = 0; k < SG_LAT_N; k++) {
        s->hwin[k] = sg_hwin_new();
        /* Baseline zero: every request from now on lands in the windows. */
        sg_hwin_tick(s->hwin[k], &stats_zero);
    }
}

static void snap_fini(struct sg_snap *s)
{
    for (int k = 0; k < SG_LAT_N; k++) {
        sg_hwin_free(s->hwin[k]);
        free(s->hcum[k]);
        free(s->hbase[k]);
        free(s->hcarry[k]);
        free(s->hat_carry[k]);
    }
}

static void counts_plus(struct sg_counts *a, const struct sg_counts *b)
{
    a->requests += b->requests;
    for (int i = 0; i < 5; i++)
        a->responses[i] += b->responses[i];
    for (int i = 0; i < SG_EK_N; i++)
        a->errors[i] += b->errors[i];
    for (int i = 0; i < SG_CE_N; i++)
        a->client_errors[i] += b->client_errors[i];
    a->retries += b->retries;
    a->bytes_in += b->bytes_in;
    a->bytes_out += b->bytes_out;
}

static struct sg_hist_dense *hist_dup(const struct sg_hist_dense *h)
{
    struct sg_hist_dense *d = sg_xmalloc(sizeof(*d));
    *d = *h;
    return d;
}

struct sg_stats *sg_stats_new(struct sg_pools *pools, struct sg_worker **workers, uint32_t nworkers)
{
    struct sg_stats *st = sg_xcalloc(1, sizeof(*st));
    st->pools = pools;
    st->workers = workers;
    st->nworkers = nworkers;
    st->bsnap = sg_xcalloc(pools->n, sizeof(*st->bsnap));
    st->psnap = sg_xcalloc(pools->n, sizeof(*st->psnap));
    for (size_t i = 0; i < pools->n; i++) {
        snap_init(&st->psnap[i]);
        st->bsnap[i] = sg_xcalloc(pools->pools[i].nbackends, sizeof(struct sg_snap));
        for (size_t j = 0; j < pools->pools[i].nbackends; j++)
            snap_init(&st->bsnap[i][j]);
    }
    return st;
}

void sg_stats_free(struct sg_stats *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->pools->n; i++) {
        snap_fini(&st->psnap[i]);
        for (size_t j = 0; j < st->pools->pools[i].nbackends; j++)
            snap_fini(&st->bsnap[i][j]);
        free(st->bsnap[i]);
    }
    free(st->bsnap);
    free(st->psnap);
    free(st);
}

/* Sums the workers' histograms of kind k for one slot (or the pool when
 * slot < 0) into st->scratch; false when no worker has one yet. */
static bool stats_sum_hist(struct sg_stats *st, size_t pi, long slot, enum sg_lat k)
{
    bool any = false;
    sg_hist_dense_clear(&st->scratch);
    for (uint32_t w = 0; w < st->nworkers; w++) {
        struct sg_wpool *wp = &st->workers[w]->wpools[pi];
        const struct sg_wstats *ws = slot < 0 ? &wp->st : &wp->wb[slot].st;
        const struct sg_hist *h = atomic_load_explicit(&ws->h[k], memory_order_acquire);
        if (h != NULL) {
            sg_hist_dense_add(&st->scratch, h);
            any = true;
        }
    }
    return any;
}

/* The cumulative histogram of kind k of one snapshot: the workers' sums,
 * less the slot's baseline, plus what earlier generations counted. */
static void snap_hist_cum(struct sg_stats *st, struct sg_snap *s, size_t pi, long slot, int k)
{
    bool any = stats_sum_hist(st, pi, slot, (enum sg_lat)k);
    if (any && s->hbase[k] != NULL) {
        const struct sg_hist_dense *bd = s->hbase[k];
        for (size_t i = 0; i < SG_HIST_NBUCKETS; i++)
            st->scratch.c[i] = st->scratch.c[i] >= bd->c[i] ? st->scratch.c[i] - bd->c[i] : 0;
        st->scratch.count = st->scratch.count >= bd->count ? st->scratch.count - bd->count : 0;
        st->scratch.sum_us = st->scratch.sum_us >= bd->sum_us ? st->scratch.sum_us - bd->sum_us : 0;
    }
    if (s->hcarry[k] != NULL) {
        const struct sg_hist_dense *cd = s->hcarry[k];
        if (!any)
            sg_hist_dense_clear(&st->scratch);
        for (size_t i = 0; i < SG_HIST_NBUCKETS; i++)
            st->scratch.c[i] += cd->c[i];
        st->scratch.count += cd->count;
        st->scratch.sum_us += cd->sum_us;
        any = true;
    }
    if (any) {
        if (s->hcum[k] == NULL)
            s->hcum[k] = sg_xcalloc(1, sizeof(struct sg_hist_dense));
        *s->hcum[k] = st->scratch;
    }
}

/* One tick of one snapshot: counts and histograms already summed. */
static void snap_tick(struct sg_stats *st, struct sg_snap *s, size_t pi, long slot, uint32_t qmax)
{
    /* rates over the last SG_RATE_SECONDS ticks */
    s->ring[s->ring_pos] = s->cum;
    unsigned oldest =
        s->ring_n < SG_RATE_SECONDS + 1 ? 0 : (s->ring_pos + 1) % (SG_RATE_SECONDS + 1);
    if (s->ring_n < SG_RATE_SECONDS + 1)
        s->ring_n++;
    const struct sg_counts *old = &s->ring[oldest];
    unsigned span = s->ring_n - 1;
    if (span > 0) {
        uint64_t dreq = s->cum.requests - old->requests;
        uint64_t dfail = counts_failures(&s->cum) - counts_failures(old);
        s->rps = (double)dreq / span;
        s->error_rate = dreq > 0 ? (double)dfail / (double)dreq : 0.0;
    }
    s->ring_pos = (s->ring_pos + 1) % (SG_RATE_SECONDS + 1);

    /* queue depth max over 10 s */
    memmove(s->qdepth_ring + 1, s->qdepth_ring, sizeof(s->qdepth_ring) - sizeof(uint32_t));
    s->qdepth_ring[0] = qmax;
    s->queue_depth_max = 0;
    for (unsigned i = 0; i < SG_RATE_SECONDS; i++)
        if (s->qdepth_ring[i] > s->queue_depth_max)
            s->queue_depth_max = s->qdepth_ring[i];

    for (int k = 0; k < SG_LAT_N; k++) {
        snap_hist_cum(st, s, pi, slot, k);
        if (s->hcum[k] == NULL)
            continue;
        sg_hwin_tick(s->hwin[k], s->hcum[k]);
        for (int w = 0; w < SG_WIN_N; w++) {
            sg_hwin_sum(s->hwin[k], win_secs[w], &st->scratch);
            sg_hist_summarize(&st->scratch, &s->sum[k][w]);
        }
    }
}

/* The cumulative counts of a pool's snapshot, of a backend slot's (and
 * its connections). */
static void snap_pool_counts(struct sg_stats *st, size_t pi)
{
    struct sg_snap *ps = &st->psnap[pi];
    ps->cum = ps->carry;
    for (uint32_t w = 0; w < st->nworkers; w++)
        counts_add(&ps->cum, &st->workers[w]->wpools[pi].st);
}

static void snap_backend_counts(struct sg_stats *st, size_t pi, size_t j)
{
    struct sg_snap *bs = &st->bsnap[pi][j];
    memset(&bs->cum, 0, sizeof(bs->cum));
    bs->conns_active = bs->conns_idle = 0;
    for (uint32_t w = 0; w < st->nworkers; w++) {
        struct sg_wbackend *wb = &st->workers[w]->wpools[pi].wb[j];
        counts_add(&bs->cum, &wb->st);
        bs->conns_active += atomic_load_explicit(&wb->st.conns_active, memory_order_relaxed);
        bs->conns_idle += atomic_load_explicit(&wb->nidle, memory_order_relaxed);
    }
    counts_sub(&bs->cum, &bs->base);
    counts_plus(&bs->cum, &bs->carry);
}

/* Counts and cumulative histograms brought up to now, the windows left as
 * they are (a reload, between ticks). */
static void stats_refresh(struct sg_stats *st)
{
    for (size_t pi = 0; pi < st->pools->n; pi++) {
        snap_pool_counts(st, pi);
        for (int k = 0; k < SG_LAT_N; k++)
            snap_hist_cum(st, &st->psnap[pi], pi, -1, k);
        for (size_t j = 0, n = sg_pool_nused(&st->pools->pools[pi]); j < n; j++) {
            snap_backend_counts(st, pi, j);
            for (int k = 0; k < SG_LAT_N; k++)
                snap_hist_cum(st, &st->bsnap[pi][j], pi, (long)j, k);
        }
    }
}

void sg_stats_tick(struct sg_stats *st)
{
    for (size_t pi = 0; pi < st->pools->n; pi++) {
        struct sg_pool *p = &st->pools->pools[pi];
        struct sg_snap *ps = &st->psnap[pi];
        snap_pool_counts(st, pi);
        uint32_t pq = atomic_exchange(&p->queue.depth_max, atomic_load(&p->queue.depth));
        uint32_t pact = 0, pidle = 0;
        size_t n = sg_pool_nused(p);
        for (size_t j = 0; j < n; j++) {
            struct sg_backend *b = &p->backends[j];
            struct sg_snap *bs = &st->bsnap[pi][j];
            uint32_t bq = atomic_exchange(&b->queue_depth_max, atomic_load(&b->queue_depth));
            snap_backend_counts(st, pi, j);
            pact += bs->conns_active;
            pidle += bs->conns_idle;
            if (sg_backend_live(b))
                snap_tick(st, bs, pi, (long)j, bq);
        }
        ps->conns_active = pact;
        ps->conns_idle = pidle;
        snap_tick(st, ps, pi, -1, pq);
    }
}

void sg_stats_slot_reset(struct sg_stats *st, const struct sg_backend *b)
{
    if (st == NULL)
        return;
    size_t pi = b->pool->id;
    struct sg_snap *bs = &st->bsnap[pi][b->id];
    struct sg_counts base = {0};
    for (uint32_t w = 0; w < st->nworkers; w++)
        counts_add(&base, &st->workers[w]->wpools[pi].wb[b->id].st);
    snap_fini(bs);
    snap_init(bs);
    bs->base = base;
    /* The slot's earlier life stays in the workers' histograms: keep their
     * totals now as a baseline to subtract. */
    for (int k = 0; k < SG_LAT_N; k++)
        if (stats_sum_hist(st, pi, (long)b->id, (enum sg_lat)k)) {
            bs->hbase[k] = sg_xmalloc(sizeof(struct sg_hist_dense));
            *bs->hbase[k] = st->scratch;
        }
}

/* One snapshot's history moves from `from` to `to`; `from` remembers what
 * it handed over (sg_stats_fold adds what it counts after). */
static void snap_carry(struct sg_snap *to, struct sg_snap *from)
{
    to->carry = from->cum;
    to->cum = from->cum; /* what readers see until the next tick */
    from->at_carry = from->cum;
    memcpy(to->ring, from->ring, sizeof(to->ring));
    to->ring_pos = from->ring_pos;
    to->ring_n = from->ring_n;
    memcpy(to->qdepth_ring, from->qdepth_ring, sizeof(to->qdepth_ring));
    to->queue_depth_max = from->queue_depth_max;
    to->rps = from->rps;
    to->error_rate = from->error_rate;
    for (int k = 0; k < SG_LAT_N; k++) {
        if (from->hcum[k] == NULL)
            continue;
        free(to->hcarry[k]);
        free(to->hcum[k]);
        free(from->hat_carry[k]);
        from->hat_carry[k] = hist_dup(from->hcum[k]);
        to->hcarry[k] = hist_dup(from->hcum[k]);
        to->hcum[k] = hist_dup(from->hcum[k]);
        sg_hwin_free(to->hwin[k]);
        to->hwin[k] = from->hwin[k];
        from->hwin[k] = NULL;
        memcpy(to->sum[k], from->sum[k], sizeof(to->sum[k]));
    }
}

/* Calls fn(to's snapshot, from's) for each pool and live backend of `to`
 * that `from` has by name. */
static void stats_pair(struct sg_stats *to, struct sg_stats *from,
                       void (*fn)(struct sg_snap *t, struct sg_snap *f))
{
    for (size_t i = 0; i < to->pools->n; i++) {
        struct sg_pool *p = &to->pools->pools[i];
        const struct sg_pool *op = sg_pools_find(from->pools, p->name);
        if (op == NULL)
            continue;
        fn(&to->psnap[i], &from->psnap[op->id]);
        for (size_t j = 0, n = sg_pool_nused(p); j < n; j++) {
            struct sg_backend *b = &p->backends[j];
            if (!sg_backend_live(b))
                continue;
            const struct sg_backend *ob =
                sg_pool_find_backend((struct sg_pool *)op, b->name, strlen(b->name));
            if (ob != NULL)
                fn(&to->bsnap[i][j], &from->bsnap[op->id][ob->id]);
        }
    }
}

void sg_stats_carry(struct sg_stats *to, struct sg_stats *from)
{
    stats_refresh(from);
    stats_pair(to, from, snap_carry);
}

/* What `from` counted after it was carried goes to `to`'s carry. */
static void snap_fold(struct sg_snap *to, struct sg_snap *from)
{
    struct sg_counts d = from->cum;
    counts_sub(&d, &from->at_carry);
    counts_plus(&to->carry, &d);
    for (int k = 0; k < SG_LAT_N; k++) {
        const struct sg_hist_dense *now = from->hcum[k], *then = from->hat_carry[k];
        if (now == NULL)
            continue;
        if (to->hcarry[k] == NULL)
            to->hcarry[k] = sg_xcalloc(1, sizeof(struct sg_hist_dense));
        struct sg_hist_dense *c = to->hcarry[k];
        for (size_t i = 0; i < SG_HIST_NBUCKETS; i++)
            c->c[i] += now->c[i] - (then != NULL && then->c[i] <= now->c[i] ? then->c[i] : 0);
        c->count += now->count - (then != NULL && then->count <= now->count ? then->count : 0);
        c->sum_us += now->sum_us - (then != NULL && then->sum_us <= now->sum_us ? then->sum_us : 0);
    }
}

void sg_stats_fold(struct sg_stats *to, struct sg_stats *from)
{
    stats_refresh(from);
    stats_pair(to, from, snap_fold);
}

const struct sg_snap *sg_stats_backend(const struct sg_stats *st, const struct sg_backend *b)
{
    return &st->bsnap[b->pool->id][b->id];
}

const struct sg_snap *sg_stats_pool(const struct sg_stats *st, const struct sg_pool *p)
{
    return &st->psnap[p->id];
}

/* See stats.h. */
void sg_stats_pool_raw(const struct sg_stats *st, const struct sg_pool *p, uint32_t current,
                       struct sg_cluster_raw *r)
{
    uint64_t now = sg_now_ms();
    const struct sg_snap *s = sg_stats_pool(st, p);
    uint64_t inflight = 0, maxconn = 0;
    uint32_t usable = 0;
    bool unlimited = false;
    for (size_t j = 0, n = sg_pool_nused(p); j < n; j++) {
        const struct sg_backend *b = &p->backends[j];
        if (!sg_backend_live(b))
            continue;
        inflight += atomic_load(&b->inflight);
        if (!sg_backend_usable(b, now))
            continue;
        usable++;
        uint32_t mc = atomic_load(&b->maxconn);
        if (mc == 0)
            unlimited = true;
        maxconn += mc;
    }
    /* The queue's highest depth during the last second, not a sample. */
    r->queue_peak = (double)s->qdepth_ring[0];
    r->queued = (double)atomic_load(&p->queue.depth);
    r->inflight = (double)inflight;
    r->maxconn = (double)maxconn;
    r->unlimited = unlimited;
    r->usable = (double)usable;
    r->current = (double)current;
    r->rps = s->rps;
    r->error_rate = s->error_rate;
    const struct sg_hist_summary *h = &s->sum[SG_LAT_TOTAL][SG_WIN_10S];
    r->lat_count = (double)h->count;
    r->lat_p50_ms = h->count ? (double)h->p50 / 1000.0 : NAN;
    r->lat_p95_ms = h->count ? (double)h->p95 / 1000.0 : NAN;
    r->lat_p99_ms = h->count ? (double)h->p99 / 1000.0 : NAN;
}
