/* hist.c: log-linear latency histograms (at most 1/128 relative error) and
 * their sliding windows of sparse per-second deltas. */
#include <stdbool.h>
#include <string.h>

#include "surgegate/common.h"
#include "surgegate/hist.h"

/* ---- bucket layout ---- */

/* Nominal width of bucket i (1 for the exact buckets). */
static uint64_t bucket_width(unsigned i)
{
    if (i < SG_HIST_SUB) {
        return 1;
    }
    unsigned oct = (i - SG_HIST_SUB) / SG_HIST_SUB; /* k - 6 */
    return (uint64_t)1 << oct;
}

uint64_t sg_hist_bucket_lo(unsigned i)
{
    SG_BUG_ON(i >= SG_HIST_NBUCKETS);
    if (i < SG_HIST_SUB) {
        return i;
    }
    unsigned oct = (i - SG_HIST_SUB) / SG_HIST_SUB;
    unsigned sub = (i - SG_HIST_SUB) % SG_HIST_SUB;
    return (uint64_t)(SG_HIST_SUB + sub) << oct;
}

uint64_t sg_hist_bucket_hi(unsigned i)
{
    SG_BUG_ON(i >= SG_HIST_NBUCKETS);
    if (i == SG_HIST_NBUCKETS - 1) {
        return UINT64_MAX; /* every larger value is clamped here */
    }
    return sg_hist_bucket_lo(i) + bucket_width(i) - 1;
}

uint64_t sg_hist_bucket_mid(unsigned i)
{
    return sg_hist_bucket_lo(i) + bucket_width(i) / 2;
}

/* ---- live and dense histograms ---- */

struct sg_hist *sg_hist_new(void)
{
    struct sg_hist *h = sg_xmalloc(sizeof(*h));
    for (unsigned i = 0; i < SG_HIST_NBUCKETS; i++) {
        atomic_init(&h->c[i], 0);
    }
    atomic_init(&h->count, 0);
    atomic_init(&h->sum_us, 0);
    return h;
}

void sg_hist_free(struct sg_hist *h)
{
    free(h);
}

void sg_hist_dense_clear(struct sg_hist_dense *d)
{
    memset(d, 0, sizeof(*d));
}

void sg_hist_dense_add(struct sg_hist_dense *acc, const struct sg_hist *h)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < SG_HIST_NBUCKETS; i++) {
        uint64_t v = atomic_load_explicit(&h->c[i], memory_order_relaxed);
        acc->c[i] += v;
        n += v;
    }
    /* The bucket sum, not h->count: the writer may have moved on between the
     * reads, and quantiles need count == sum of the buckets. */
    acc->count += n;
    acc->sum_us += atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}

void sg_hist_dense_merge(struct sg_hist_dense *acc, const struct sg_hist_dense *d)
{
    for (unsigned i = 0; i < SG_HIST_NBUCKETS; i++) {
        acc->c[i] += d->c[i];
    }
    acc->count += d->count;
    acc->sum_us += d->sum_us;
}

/* ceil(q * count), clamped to 1..count; q outside [0,1] (or NaN) clamped. */
static uint64_t rank_of(uint64_t count, double q)
{
    if (!(q > 0.0)) {
        q = 0.0;
    }
    if (q > 1.0) {
        q = 1.0;
    }
    double x = q * (double)count;
    uint64_t r = x >= (double)count ? count : (uint64_t)x;
    if ((double)r < x) {
        r++;
    }
    if (r < 1) {
        r = 1;
    }
    if (r > count) {
        r = count;
    }
    return r;
}

/* out[j] = the mid value of the bucket holding rank ceil(q[j]*count), for
 * q[] ascending, in one pass. A rank beyond the buckets' total (a dense
 * histogram whose count disagrees with its buckets) gets the highest
 * non-empty bucket. */
static void quantiles(const struct sg_hist_dense *d, const double *q, uint64_t *out, size_t nq)
{
    if (d->count == 0) {
        memset(out, 0, nq * sizeof(*out));
        return;
    }
    size_t j = 0;
    uint64_t seen = 0;
    unsigned top = 0;
    bool any = false;
    for (unsigned i = 0; i < SG_HIST_NBUCKETS && j < nq; i++) {
        if (d->c[i] == 0) {
            continue;
        }
        seen += d->c[i];
        top = i;
        any = true;
        while (j < nq && rank_of(d->count, q[j]) <= seen) {
            out[j++] = sg_hist_bucket_mid(i);
        }
    }
    for (; j < nq; j++) {
        out[j] = any ? sg_hist_bucket_mid(top) : 0;
    }
}

uint64_t sg_hist_quantile(const struct sg_hist_dense *d, double q)
{
    uint64_t v;
    quantiles(d, &q, &v, 1);
    return v;
}

uint64_t sg_hist_count_le(const struct sg_hist_dense *d, uint64_t le_us)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < SG_HIST_NBUCKETS && sg_hist_bucket_hi(i) <= le_us; i++) {
        n += d->c[i];
    }
    return n;
}

void sg_hist_summarize(const struct sg_hist_dense *d, struct sg_hist_summary *out)
{
    static const double q[5] = {0.50, 0.90, 0.95, 0.99, 1.0};
    uint64_t v[5];
    quantiles(d, q, v, 5);
    out->count = d->count;
    out->sum_us = d->sum_us;
    out->p50 = v[0];
    out->p90 = v[1];
    out->p95 = v[2];
    out->p99 = v[3];
    out->max = v[4];
}

/* ---- sliding windows ---- */

/* One bucket of a stored second. A count over UINT32_MAX in one second is
 * split over several entries with the same idx (sums add them up). */
struct hent {
    uint16_t idx;
    uint16_t pad_;
    uint32_t cnt;
};

/* A non-empty second: its delta, sparse, allocated to size. */
struct hsec {
    uint64_t count;
    uint64_t sum_us;
    uint32_t n;
    struct hent e[];
};

struct hslot {
    uint64_t tick; /* the tick (1 = the first) this second was stored at */
    struct hsec *s;
};

#define SG_HWIN_MAGIC 0x6877696eu /* "hwin" */

struct sg_hwin {
    uint32_t magic;
    uint32_t cap;               /* ring slots allocated (grows to SG_HWIN_SECONDS) */
    uint32_t head;              /* oldest stored second */
    uint32_t len;               /* stored seconds: only the non-empty ones */
    uint64_t now;               /* ticks so far; the newest second is tick `now` */
    struct hslot *ring;         /* NULL until the first non-empty second */
    struct sg_hist_dense *prev; /* cum at the last tick; NULL while that was all zero */
};

_Static_assert(SG_HIST_NBUCKETS <= UINT16_MAX + 1, "bucket index must fit struct hent.idx");

struct sg_hwin *sg_hwin_new(void)
{
    struct sg_hwin *w = sg_xcalloc(1, sizeof(*w));
    w->magic = SG_HWIN_MAGIC;
    return w;
}

void sg_hwin_free(struct sg_hwin *w)
{
    if (w == NULL) {
        return;
    }
    SG_CHECK_MAGIC(w, SG_HWIN_MAGIC);
    for (uint32_t j = 0; j < w->len; j++) {
        free(w->ring[(w->head + j) % w->cap].s);
    }
    free(w->ring);
    free(w->prev);
    w->magic = 0;
    free(w);
}

static bool dense_is_zero(const struct sg_hist_dense *d)
{
    if (d->count != 0 || d->sum_us != 0) {
        return false;
    }
    for (unsigned i = 0; i < SG_HIST_NBUCKETS; i++) {
        if (d->c[i] != 0) {
            return false;
        }
    }
    return true;
}

/* Drops the seconds that left the window. */
static void hwin_expire(struct sg_hwin *w)
{
    while (w->len > 0 && w->ring[w->head].tick + SG_HWIN_SECONDS <= w->now) {
        free(w->ring[w->head].s);
        w->ring[w->head].s = NULL;
        w->head = (w->head + 1) % w->cap;
        w->len--;
    }
}

/* Room for one more stored second: false when the ring could not grow. */
static bool hwin_reserve(struct sg_hwin *w)
{
    if (w->len < w->cap) {
        return true;
    }
    uint32_t ncap = w->cap ? w->cap * 2 : 4;
    if (ncap > SG_HWIN_SECONDS) {
        ncap = SG_HWIN_SECONDS;
    }
    SG_BUG_ON(ncap <= w->len); /* expiry keeps len < SG_HWIN_SECONDS before a push */
    struct hslot *r = malloc(ncap * sizeof(*r));
    if (r == NULL) {
        return false;
    }
    for (uint32_t j = 0; j < w->len; j++) {
        r[j] = w->ring[(w->head + j) % w->cap];
    }
    free(w->ring);
    w->ring = r;
    w->cap = ncap;
    w->head = 0;
    return true;
}

/* The delta cum - prev (prev NULL = zero) as a stored second; NULL when the
 * second is empty or out of memory. */
static struct hsec *hwin_delta(const struct sg_hist_dense *prev, const struct sg_hist_dense *cum)
{
    uint64_t n = 0, count = 0;
    for (unsigned i = 0; i < SG_HIST_NBUCKETS; i++) {
        uint64_t p = prev ? prev->c[i] : 0;
        if (cum->c[i] > p) {
            uint64_t dv = cum->c[i] - p;
            n += (dv - 1) / UINT32_MAX + 1;
            count += dv;
        }
    }
    uint64_t psum = prev ? prev->sum_us : 0;
    uint64_t sum = cum->sum_us > psum ? cum->sum_us - psum : 0;
    if (n == 0 && sum == 0) {
        return NULL;
    }
    struct hsec *s = malloc(sizeof(*s) + n * sizeof(s->e[0]));
    if (s == NULL) {
        return NULL;
    }
    s->count = count;
    s->sum_us = sum;
    s->n = (uint32_t)n;
    uint32_t k = 0;
    for (unsigned i = 0; i < SG_HIST_NBUCKETS; i++) {
        uint64_t p = prev ? prev->c[i] : 0;
        if (cum->c[i] <= p) {
            continue;
        }
        uint64_t dv = cum->c[i] - p;
        while (dv > 0) {
            uint32_t part = dv > UINT32_MAX ? UINT32_MAX : (uint32_t)dv;
            s->e[k].idx = (uint16_t)i;
            s->e[k].pad_ = 0;
            s->e[k].cnt = part;
            k++;
            dv -= part;
        }
    }
    SG_BUG_ON(k != n);
    return s;
}

/* prev := cum, allocating prev only once cum is non-zero. */
static void hwin_set_prev(struct sg_hwin *w, const struct sg_hist_dense *cum)
{
    if (w->prev == NULL) {
        if (dense_is_zero(cum)) {
            return;
        }
        w->prev = sg_xmalloc(sizeof(*w->prev));
    }
    memcpy(w->prev, cum, sizeof(*cum));
}

void sg_hwin_tick(struct sg_hwin *w, const struct sg_hist_dense *cum)
{
    SG_CHECK_MAGIC(w, SG_HWIN_MAGIC);
    w->now++;
    hwin_expire(w);
    if (w->now > 1) {
        struct hsec *s = hwin_delta(w->prev, cum);
        if (s != NULL) {
            if (hwin_reserve(w)) {
                w->ring[(w->head + w->len) % w->cap] = (struct hslot){.tick = w->now, .s = s};
                w->len++;
            } else {
                free(s);
            }
        }
    }
    /* The first tick only takes the baseline: its second stays empty. */
    hwin_set_prev(w, cum);
}

void sg_hwin_sum(const struct sg_hwin *w, unsigned seconds, struct sg_hist_dense *out)
{
    SG_CHECK_MAGIC(w, SG_HWIN_MAGIC);
    if (seconds < 1) {
        seconds = 1;
    }
    if (seconds > SG_HWIN_SECONDS) {
        seconds = SG_HWIN_SECONDS;
    }
    sg_hist_dense_clear(out);
    for (uint32_t j = 0; j < w->len; j++) {
        const struct hslot *sl = &w->ring[(w->head + j) % w->cap];
        if (sl->tick + seconds <= w->now) {
            continue; /* older than the last `seconds` ticks */
        }
        for (uint32_t k = 0; k < sl->s->n; k++) {
            out->c[sl->s->e[k].idx] += sl->s->e[k].cnt;
        }
        out->count += sl->s->count;
        out->sum_us += sl->s->sum_us;
    }
}

size_t sg_hwin_mem_bytes(const struct sg_hwin *w)
{
    SG_CHECK_MAGIC(w, SG_HWIN_MAGIC);
    size_t n = sizeof(*w) + (size_t)w->cap * sizeof(struct hslot);
    if (w->prev != NULL) {
        n += sizeof(*w->prev);
    }
    for (uint32_t j = 0; j < w->len; j++) {
        n += sizeof(struct hsec) + w->ring[(w->head + j) % w->cap].s->n * sizeof(struct hent);
    }
    return n;
}
