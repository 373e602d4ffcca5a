/* lb_hash.c: consistent hashing with bounded loads ("hash").
 *
 * Ring: each backend gets HASH_POINTS points per unit of configured weight
 * (a backend of weight 0 gets none), placed by hashing its address, so the
 * ring depends on which backends exist and not on their order: a backend
 * added or removed moves only the keys of its own arcs. A key is hashed to a
 * point of the ring and served by the backend of the next point clockwise.
 * Primaries and backups have a ring each.
 *
 * The walk from the key's point skips backends that are not eligible (down,
 * drained, ejected, excluded by a retry, at maxconn), so when a backend
 * leaves, only its keys move, spread over the others by its many points.
 *
 * Bounded loads (Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing with
 * Bounded Loads", as in HAProxy's hash-balance-factor): with c the pool's
 * hash_balance_factor, a backend takes a new request only while its inflight
 * is under
 *     ceil(c x (total inflight + 1) x weight / total weight)
 * (c x the mean load, scaled by its share of the weight), else the walk goes
 * on to the next backend. A hot key therefore spills over to its ring
 * successors instead of piling onto one backend, while ordinary keys keep
 * their backend. c = 0 turns the bound off. The totals are summed over the
 * usable backends of the set (per-request exclusions and maxconn aside) and
 * cached, refreshed every n/2 picks: the inflight counters are written by
 * every worker, so each read can cost a cache miss, and summing them on
 * every pick would make the pick O(n). Between refreshes the mean is off by
 * at most about half a request per backend from this worker's own picks;
 * when the stale totals put every backend at its bound, they are recounted
 * before the bound is given up. A pick is thus O(1) amortised: a bucket
 * lookup into the ring, a short walk, two counter reads.
 *
 * A request without a key gets a random point: a weighted random choice,
 * bounded like any other. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lb-internal.h"
#include "surgegate/common.h"
#include "surgegate/lb.h"
#include "surgegate/lb_hash.h"
#include "surgegate/pool.h"

/* Points per unit of weight. With V points a backend's share of the ring
 * deviates from fair by about 1/sqrt(V): 4.4% here, so that the worst of 10
 * equal backends is 8% off on average and beyond 15% in under 1% of the
 * address sets (nginx's 160 points give 14%, and beyond 20% one time in
 * 12). */
#define HASH_POINTS 512
/* Ring size cap (8 bytes a point, plus the lookup index: 2.25 MiB at most
 * per worker and pool): beyond it, every backend's count is scaled down by
 * the same factor, which pools of over 512 units of weight pay with a less
 * even split. */
#define HASH_RING_MAX  (1u << 18)
#define HASH_DEFAULT_C 1.25
/* Cached totals: refreshed every max(1, n / HASH_REFRESH_DIV) picks (about
 * HASH_REFRESH_DIV reads of a shared counter per pick, amortised). */
#define HASH_REFRESH_DIV 2

/* ------------------------------------------------------- hash function */

#define HASH_K1 0x9e3779b97f4a7c15u
#define HASH_K2 0xc2b2ae3d27d4eb4fu
#define HASH_K3 0x27d4eb2f165667c5u

static inline uint64_t hash_rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

/* Little-endian load of n <= 8 bytes (compilers make it one load for 8). */
static inline uint64_t hash_load(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Final avalanche (xorshift-multiply rounds, as in splitmix64): each input
 * bit flips each output bit with probability close to 1/2. */
static inline uint64_t hash_fmix(uint64_t h)
{
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9u;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebu;
    return h ^ (h >> 31);
}

static inline uint64_t hash_round(uint64_t h, uint64_t lane)
{
    lane *= HASH_K2;
    lane = hash_rotl(lane, 29);
    lane *= HASH_K1;
    h ^= lane;
    return hash_rotl(h, 31) * HASH_K1 + HASH_K3;
}

uint64_t sg_lb_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = HASH_K3 ^ ((uint64_t)len * HASH_K2);
    for (; len >= 8; len -= 8, p += 8)
        h = hash_round(h, hash_load(p, 8));
    if (len > 0)
        h = hash_round(h, hash_load(p, len));
    return hash_fmix(h);
}

/* ---------------------------------------------------------------- ring */

struct hash_ring {
    uint32_t *pos; /* sorted ring points (the top 32 bits of a 64-bit hash) */
    uint32_t *idx; /* backend index of each point */
    size_t npoints;
    uint32_t nbackends; /* distinct backends on the ring */
    /* Lookup index: bucket[k] is the first point at or after k << shift.
     * About 4 points a bucket, so a lookup is one load and a short scan of
     * one cache line instead of a binary search's mispredicted branches. */
    uint32_t *bucket;
    uint32_t nbuckets;
    int shift;
};

/* Cached totals over the usable backends of one set. */
struct hash_totals {
    uint64_t inflight;
    uint64_t weight;
    uint32_t picks; /* since the last refresh */
    bool valid;
};

struct hash_state {
    struct sg_lb_rng rng;
    struct hash_ring ring[2]; /* [0] primaries, [1] backups */
    struct hash_totals tot[2];
    uint32_t refresh_every[2];
    double c; /* balance factor; 0 = unbounded */
    size_t n; /* pool->nbackends at state_new */
    uint32_t gen;
    uint32_t seen[]; /* per backend: == gen when the current walk met it */
};

struct hash_point {
    uint32_t pos;
    uint64_t tie; /* the backend's address hash: order of equal points */
    uint32_t idx;
};

static int hash_point_cmp(const void *x, const void *y)
{
    const struct hash_point *a = x, *b = y;
    if (a->pos != b->pos)
        return a->pos < b->pos ? -1 : 1;
    if (a->tie != b->tie)
        return a->tie < b->tie ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* The identity a backend's points derive from: its address. */
static uint64_t hash_backend_seed(const struct sg_backend *b)
{
    if (b->name != NULL)
        return sg_lb_hash64(b->name, strlen(b->name));
    unsigned char id[4] = {(unsigned char)b->id, (unsigned char)(b->id >> 8),
                           (unsigned char)(b->id >> 16), (unsigned char)(b->id >> 24)};
    return hash_fmix(sg_lb_hash64(id, sizeof(id)) ^ HASH_K2);
}

static void hash_ring_free(struct hash_ring *r)
{
    free(r->pos);
    free(r->idx);
    free(r->bucket);
    *r = (struct hash_ring){0};
}

static int hash_ring_build(struct hash_ring *r, const struct sg_pool *pool, bool backup)
{
    *r = (struct hash_ring){0};
    uint64_t want = 0;
    for (size_t i = 0, n_ = sg_pool_nused(pool); i < n_; i++) {
        const struct sg_backend *b = &pool->backends[i];
        if (b->backup == backup && b->weight > 0)
            want += (uint64_t)HASH_POINTS * b->weight;
    }
    if (want == 0)
        return SG_OK;
    double scale = want > HASH_RING_MAX ? (double)HASH_RING_MAX / (double)want : 1.0;
    size_t cap = (size_t)(want > HASH_RING_MAX ? HASH_RING_MAX : want) + pool->nbackends;
    struct hash_point *pts = calloc(cap, sizeof(*pts));
    if (pts == NULL)
        return SG_ERR;
    size_t np = 0;
    for (size_t i = 0, n_ = sg_pool_nused(pool); i < n_; i++) {
        const struct sg_backend *b = &pool->backends[i];
        if (b->backup != backup || b->weight == 0)
            continue;
        uint64_t k = (uint64_t)((double)HASH_POINTS * b->weight * scale);
        if (k == 0)
            k = 1;
        uint64_t seed = hash_backend_seed(b), x = seed;
        for (uint64_t j = 0; j < k && np < cap; j++) {
            x += HASH_K1; /* the points of a backend: a splitmix sequence */
            pts[np++] = (struct hash_point){
                .pos = (uint32_t)(hash_fmix(x) >> 32), .tie = seed, .idx = (uint32_t)i};
        }
        r->nbackends++;
    }
    qsort(pts, np, sizeof(*pts), hash_point_cmp);
    int bits = 1;
    while (bits < 24 && ((size_t)4 << bits) < np)
        bits++;
    r->shift = 32 - bits;
    r->nbuckets = (uint32_t)1 << bits;
    r->pos = malloc(np * sizeof(uint32_t));
    r->idx = malloc(np * sizeof(uint32_t));
    r->bucket = malloc(r->nbuckets * sizeof(uint32_t));
    if (r->pos == NULL || r->idx == NULL || r->bucket == NULL) {
        free(pts);
        hash_ring_free(r);
        return SG_ERR;
    }
    uint32_t k = 0;
    for (size_t i = 0; i < np; i++) {
        r->pos[i] = pts[i].pos;
        r->idx[i] = pts[i].idx;
        while (k < r->nbuckets && (uint64_t)k << r->shift <= pts[i].pos)
            r->bucket[k++] = (uint32_t)i;
    }
    while (k < r->nbuckets)
        r->bucket[k++] = (uint32_t)np;
    r->npoints = np;
    free(pts);
    return SG_OK;
}

/* Index of the first point at or after h, wrapping to 0. npoints > 0. */
static size_t hash_ring_find(const struct hash_ring *r, uint32_t h)
{
    size_t i = r->bucket[h >> r->shift];
    while (i < r->npoints && r->pos[i] < h)
        i++;
    return i == r->npoints ? 0 : i;
}

/* --------------------------------------------------------------- state */

static void hash_state_free(void *state)
{
    struct hash_state *st = state;
    if (st == NULL)
        return;
    hash_ring_free(&st->ring[0]);
    hash_ring_free(&st->ring[1]);
    free(st);
}

static void *hash_state_new(const struct sg_pool *pool)
{
    struct hash_state *st = calloc(1, sizeof(*st) + pool->nbackends * sizeof(uint32_t));
    if (st == NULL)
        return NULL;
    st->n = pool->nbackends;
    st->c = pool->cfg != NULL ? pool->cfg->hash_balance_factor : HASH_DEFAULT_C;
    if (st->c < 0.0)
        st->c = 0.0;
    for (int set = 0; set < 2; set++) {
        if (hash_ring_build(&st->ring[set], pool, set == 1) != SG_OK) {
            hash_state_free(st);
            return NULL;
        }
        uint32_t every = st->ring[set].nbackends / HASH_REFRESH_DIV;
        st->refresh_every[set] = every > 0 ? every : 1;
    }
    sg_lb_rng_seed(&st->rng, pool);
    return st;
}

static void hash_totals_refresh(struct hash_totals *t, const struct sg_pool *pool, bool backup,
                                uint64_t now)
{
    t->inflight = 0;
    t->weight = 0;
    for (size_t i = 0, n_ = sg_pool_nused(pool); i < n_; i++) {
        const struct sg_backend *b = &pool->backends[i];
        if (b->backup != backup || !sg_backend_usable(b, now))
            continue;
        t->inflight += atomic_load_explicit(&b->inflight, memory_order_relaxed);
        t->weight += sg_backend_weight(b, now);
    }
    t->picks = 0;
    t->valid = true;
}

/* True when b is under its bounded-load capacity. */
static bool hash_has_capacity(const struct hash_state *st, const struct hash_totals *t,
                              const struct sg_backend *b, uint64_t now)
{
    if (t->weight == 0)
        return true; /* b turned usable since the refresh: no mean to compare */
    double cap =
        st->c * (double)(t->inflight + 1) * (double)sg_backend_weight(b, now) / (double)t->weight;
    uint32_t inflight = atomic_load_explicit(&b->inflight, memory_order_relaxed);
    return (double)inflight < ceil(cap);
}

/* Walks the ring from point i: the first eligible backend under its bound
 * (any eligible one when unbounded), else NULL with *first set to the first
 * eligible one met (NULL when none). */
static struct sg_backend *hash_walk(struct hash_state *st, const struct hash_ring *r, size_t i,
                                    const struct sg_pool *pool, const struct sg_lb_req *req,
                                    bool backup, uint64_t now, struct sg_backend **first)
{
    const struct hash_totals *t = &st->tot[backup];
    bool bounded = st->c > 0.0;
    if (++st->gen == 0) {
        memset(st->seen, 0, st->n * sizeof(uint32_t));
        st->gen = 1;
    }
    *first = NULL;
    uint32_t nseen = 0;
    for (size_t step = 0; step < r->npoints; step++, i = i + 1 == r->npoints ? 0 : i + 1) {
        uint32_t id = r->idx[i];
        if (id >= st->n || id >= pool->nbackends || st->seen[id] == st->gen)
            continue;
        st->seen[id] = st->gen;
        nseen++;
        struct sg_backend *b = &pool->backends[id];
        if (sg_lb_eligible(b, req, backup)) {
            if (!bounded || hash_has_capacity(st, t, b, now))
                return b;
            if (*first == NULL)
                *first = b;
        }
        if (nseen == r->nbackends)
            break;
    }
    return NULL;
}

static struct sg_backend *hash_pick(void *state, const struct sg_pool *pool,
                                    const struct sg_lb_req *req)
{
    struct hash_state *st = state;
    bool backup = sg_lb_use_backup(pool, req);
    const struct hash_ring *r = &st->ring[backup];
    if (r->npoints == 0)
        return NULL; /* no backend of this set has a weight */
    uint64_t now = sg_lb_now(req);
    uint64_t h = req != NULL && req->key != NULL && req->keylen > 0
                     ? sg_lb_hash64(req->key, req->keylen)
                     : sg_lb_rng_next(&st->rng);
    size_t i = hash_ring_find(r, (uint32_t)(h >> 32));

    struct hash_totals *t = &st->tot[backup];
    if (st->c > 0.0 && (!t->valid || ++t->picks >= st->refresh_every[backup]))
        hash_totals_refresh(t, pool, backup, now);
    struct sg_backend *first, *b = hash_walk(st, r, i, pool, req, backup, now, &first);
    if (b == NULL && first != NULL && t->picks > 0) {
        /* Everyone at the bound: the totals may be behind a rise of the
         * load; recount before overriding the bound. */
        hash_totals_refresh(t, pool, backup, now);
        b = hash_walk(st, r, i, pool, req, backup, now, &first);
    }
    return b != NULL ? b : first;
}

const struct sg_lb_ops sg_lb_hash = {
    .name = "hash",
    .flags = SG_LB_F_KEY,
    .state_new = hash_state_new,
    .state_free = hash_state_free,
    .pick = hash_pick,
};
