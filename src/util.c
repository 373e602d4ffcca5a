/* util.c: allocation wrappers and clocks. */
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "surgegate/common.h"

void *sg_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fputs("surgegate: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *sg_xcalloc(size_t nmemb, size_t n)
{
    void *p = calloc(nmemb ? nmemb : 1, n ? n : 1);
    if (p == NULL) {
        fputs("surgegate: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *sg_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        fputs("surgegate: out of memory\n", stderr);
        abort();
    }
    return q;
}

char *sg_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = sg_xmalloc(n);
    memcpy(p, s, n);
    return p;
}

static uint64_t util_clock(clockid_t id, uint64_t per_sec)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * per_sec + (uint64_t)ts.tv_nsec / (1000000000u / per_sec);
}

uint64_t sg_now_ms(void)
{
    return util_clock(CLOCK_MONOTONIC, 1000u);
}

uint64_t sg_now_us(void)
{
    return util_clock(CLOCK_MONOTONIC, 1000000u);
}

uint64_t sg_wall_ms(void)
{
    return util_clock(CLOCK_REALTIME, 1000u);
}

uint64_t sg_wall_us(void)
{
    return util_clock(CLOCK_REALTIME, 1000000u);
}

void sg_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int sg_open_append(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

void sg_timeval_from_ms(struct timeval *tv, uint32_t ms)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}
