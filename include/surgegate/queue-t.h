/* queue-t.h: a request waiting in its pool's FIFO for a backend slot. */
#ifndef SURGEGATE_QUEUE_T_H
#define SURGEGATE_QUEUE_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct sg_backend;
struct sg_pool;
struct sg_lb_req;

enum sg_qstate {
    SG_Q_NONE = 0, /* not queued */
    SG_Q_WAITING,  /* in pool->queue.q */
    SG_Q_GRANTED,  /* given a slot on `granted`; in its owner's inbox */
};

struct sg_qentry;

/* Where granted entries wait for their owner's thread: one per worker,
 * embedded in it. The owner sets it up with sg_inbox_init and says how it
 * wants to be woken: queue.c calls notify(arg, same_thread) after putting an
 * entry in, with same_thread true when the grant was made by the owner
 * itself (no cross-thread wakeup needed). notify runs with the pool's queue
 * lock held, on whichever thread made the grant: it must only wake the owner
 * (eventfd write, event_active), never run the entries. */
struct sg_inbox {
    pthread_mutex_t mu;
    TAILQ_HEAD(sg_inbox_list, sg_qentry) q; /* under mu */
    void (*notify)(void *arg, bool same_thread);
    void *arg;
};

/* Embedded in the session. Fields other than `link`, `inbox`, `st` and `granted`
 * are set by the owner before queueing and read-only while queued. */
struct sg_qentry {
    TAILQ_ENTRY(sg_qentry) link;
    struct sg_inbox *inbox; /* the owner's: the grant is delivered there */
    struct sg_pool *pool;
    struct sg_backend *pref;  /* first choice (its queue_depth counts this entry) */
    const uint32_t *exclude;  /* backends the request already tried */
    const uint32_t *nexclude; /* points at the owner's count */
    const char *key;          /* hash key, may be NULL */
    size_t keylen;
    uint64_t since_ms;                     /* when it was queued (monotonic) */
    int prio;                              /* enum sg_prio: which of the pool's lists */
    _Atomic int st;                        /* enum sg_qstate; changed under pool->queue.mu or the
                                            * owner's inbox.mu (NONE only by the owner) */
    struct sg_backend *granted;            /* slot taken on this backend for the owner;
                                            * NULL in the inbox: refused (the queue began
                                            * to stand: a sheddable request), answer 503 */
    void (*on_grant)(struct sg_qentry *e); /* runs on the owner's thread */
};

/* Why a request was refused by its pool's queue (the `reason` label of
 * surgegate_requests_shed_total). */
enum sg_shed {
    SG_SHED_OVERLOAD = 0, /* the queue stands and its expected wait exceeds the limit */
    SG_SHED_FULL,         /* maxqueue requests already wait */
    SG_SHED_TIMEOUT,      /* waited timeouts.queue without a slot */
    SG_SHED_N
};

/* What sg_queue_verdict says of a request that found no free slot. */
enum sg_qverdict { SG_QV_ADMIT = 0, SG_QV_OVERLOAD, SG_QV_FULL };

/* The standing-queue detector (CoDel-style) of one pool; under the pool's
 * queue lock. See sg_qstand_observe. */
struct sg_qstand {
    uint64_t above_since_ms; /* not standing: first wait >= target of this run; 0 none */
    uint64_t calm_since_ms;  /* standing: first calm observation of this run; 0 none */
    bool standing;
    bool growing; /* input: requests arrive faster than the pool drains them */
};

/* The limits sg_queue_verdict applies (a pool's config). */
struct sg_qpolicy {
    uint32_t target_ms;  /* 0: no overload control (only maxqueue) */
    uint32_t timeout_ms; /* timeouts.queue */
    uint32_t maxqueue;
};

#endif
