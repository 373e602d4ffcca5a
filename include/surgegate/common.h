/* common.h: return codes, assertions and small helpers shared by every subsystem. */
#ifndef SURGEGATE_COMMON_H
#define SURGEGATE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* One set of return codes everywhere (nginx style). */
#define SG_OK            0
#define SG_ERR           (-1)
#define SG_AGAIN         (-2)
#define SG_DECLINED      (-3)

#define SG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SG_UNUSED(x)     ((void)(x))

/* Invariant checks: they stay on in every build; a broken invariant is a bug,
 * and continuing would corrupt state or traffic. */
#define SG_BUG_ON(cond)                                                                  \
    do {                                                                                 \
        if (__builtin_expect(!!(cond), 0)) {                                             \
            fprintf(stderr, "surgegate: BUG at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* Magic numbers on long-lived objects (Varnish style). */
#define SG_CHECK_MAGIC(p, m) SG_BUG_ON((p) == NULL || (p)->magic != (m))

/* Checks that cost a little on the hot path (a legal state transition, a
 * magic at every callback's entry): compiled in where SG_DEBUG_CHECKS is
 * defined (Debug and sanitizer builds, which the CI suite runs), out of
 * release builds. The condition is never evaluated when compiled out. */
#ifdef SG_DEBUG_CHECKS
#define SG_DBUG_ON(cond)      SG_BUG_ON(cond)
#define SG_DCHECK_MAGIC(p, m) SG_CHECK_MAGIC(p, m)
#else
#define SG_DBUG_ON(cond)      ((void)sizeof(!!(cond)))
#define SG_DCHECK_MAGIC(p, m) ((void)sizeof((p)->magic == (m)))
#endif

#define SG_LIKELY(x)   __builtin_expect(!!(x), 1)
#define SG_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Allocation that aborts on failure: used for startup-time structures only;
 * the request path handles allocation failure by failing the request. */
void *sg_xmalloc(size_t n);
void *sg_xcalloc(size_t nmemb, size_t n);
void *sg_xrealloc(void *p, size_t n);
char *sg_xstrdup(const char *s);

/* Monotonic clock in milliseconds / microseconds. */
uint64_t sg_now_ms(void);
uint64_t sg_now_us(void);
/* Wall clock (CLOCK_REALTIME) in milliseconds / microseconds since the epoch. */
uint64_t sg_wall_ms(void);
uint64_t sg_wall_us(void);

struct timeval;
/* A duration in milliseconds as a timeval (for libevent timers). */
void sg_timeval_from_ms(struct timeval *tv, uint32_t ms);

/* Formats a message into err (when err != NULL and errlen > 0). */
void sg_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Opens a log file for appending (created mode 0640, close-on-exec): an fd
 * or -1 with errno. */
int sg_open_append(const char *path);

#endif
