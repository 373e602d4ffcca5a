/* journal.c: the event journal, a ring of the last N events in memory and a
 * JSON lines file.
 *
 * Events are rare (state changes, hook runs, config loads), so everything
 * happens under one mutex: the timestamp is taken, the line written and the
 * event stored in that order, and the file, the ring and the times all agree
 * on one order. The ring holds the event objects and, beside them, their
 * times in ms so that "since" filters without parsing strings. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "surgegate/common.h"
#include "surgegate/journal.h"
#include "surgegate/log.h"

#define JOURNAL_MAGIC 0x4a524e4cu /* "JRNL" */

struct sg_journal {
    unsigned magic;
    pthread_mutex_t mu;
    char *path;        /* NULL: memory only */
    int fd;            /* -1 without a file */
    bool write_failed; /* a write error was logged; cleared by a good write */
    json_t **ev;       /* ring of cap events; ev[(head + i) % cap], i < n, oldest first */
    uint64_t *ms;      /* time of each event, same index */
    size_t cap, head, n;
};

static pthread_rwlock_t journal_default_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct sg_journal *journal_default;

struct sg_journal *sg_journal_new(const char *path, size_t ring_size, char *err, size_t errlen)
{
    struct sg_journal *j;
    int fd = -1;

    if (ring_size == 0 || ring_size > ((size_t)1 << 28)) {
        sg_errf(err, errlen, "journal size %zu is out of range 1..%zu", ring_size, (size_t)1 << 28);
        return NULL;
    }
    if (path != NULL) {
        fd = sg_open_append(path);
        if (fd < 0) {
            sg_errf(err, errlen, "cannot open journal '%s': %s", path, strerror(errno));
            return NULL;
        }
    }
    j = sg_xcalloc(1, sizeof(*j));
    j->magic = JOURNAL_MAGIC;
    pthread_mutex_init(&j->mu, NULL);
    j->path = path != NULL ? sg_xstrdup(path) : NULL;
    j->fd = fd;
    j->cap = ring_size;
    j->ev = sg_xcalloc(ring_size, sizeof(*j->ev));
    j->ms = sg_xcalloc(ring_size, sizeof(*j->ms));
    return j;
}

void sg_journal_free(struct sg_journal *j)
{
    if (j == NULL)
        return;
    SG_CHECK_MAGIC(j, JOURNAL_MAGIC);
    for (size_t i = 0; i < j->n; i++)
        json_decref(j->ev[(j->head + i) % j->cap]);
    free(j->ev);
    free(j->ms);
    if (j->fd >= 0)
        close(j->fd);
    free(j->path);
    pthread_mutex_destroy(&j->mu);
    j->magic = 0;
    free(j);
}

/* "2026-11-30T19:40:22.123Z" into buf (at least 32 bytes). */
static void journal_format_time(uint64_t ms, char *buf, size_t len)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    /* The fields are in range (gmtime), but the compiler cannot know it:
     * check the result instead of letting -Wformat-truncation guess. */
    int n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                     (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
                     tm.tm_sec % 100, (unsigned)(ms % 1000));
    if (n < 0 || (size_t)n >= len)
        buf[0] = '\0';
}

static uint64_t journal_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Writes line + '\n' with one writev(), finishing a short write. Called with
 * j->mu held. */
static void journal_write(struct sg_journal *j, const char *line, size_t len)
{
    struct iovec iov[2] = {{(void *)line, len}, {(void *)"\n", 1}};
    int niov = 2;
    struct iovec *v = iov;

    while (niov > 0) {
        ssize_t w = writev(j->fd, v, niov);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (!j->write_failed)
                sg_log_warn("journal '%s': write failed: %s (events are still kept in memory)",
                            j->path, w < 0 ? strerror(errno) : "nothing written");
            j->write_failed = true;
            return;
        }
        while (niov > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            niov--;
        }
        if (niov > 0) {
            v->iov_base = (char *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    j->write_failed = false;
}

void sg_journal_add(struct sg_journal *j, const char *type, json_t *fields)
{
    char ts[40];
    json_t *ev;
    uint64_t now;
    char *line;

    if (j == NULL) {
        json_decref(fields);
        return;
    }
    SG_CHECK_MAGIC(j, JOURNAL_MAGIC);
    ev = json_object();
    if (ev == NULL) {
        json_decref(fields);
        return;
    }
    pthread_mutex_lock(&j->mu);
    now = journal_wall_ms();
    journal_format_time(now, ts, sizeof(ts));
    json_object_set_new(ev, "time", json_string(ts));
    json_object_set_new(ev, "type", json_string(type != NULL ? type : "unknown"));
    if (json_is_object(fields))
        json_object_update_missing(ev, fields);
    else if (fields != NULL)
        json_object_set(ev, "data", fields);
    json_decref(fields);

    if (j->fd >= 0) {
        line = json_dumps(ev, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (line != NULL) {
            journal_write(j, line, strlen(line));
            free(line);
        }
    }
    if (j->n == j->cap) {
        json_decref(j->ev[j->head]);
        j->ev[j->head] = ev;
        j->ms[j->head] = now;
        j->head = (j->head + 1) % j->cap;
    } else {
        size_t i = (j->head + j->n) % j->cap;
        j->ev[i] = ev;
        j->ms[i] = now;
        j->n++;
    }
    pthread_mutex_unlock(&j->mu);
}

json_t *sg_journal_since(struct sg_journal *j, uint64_t since_ms, size_t limit)
{
    json_t *out = json_array();
    size_t first, count = 0;

    if (j == NULL || out == NULL)
        return out;
    SG_CHECK_MAGIC(j, JOURNAL_MAGIC);
    pthread_mutex_lock(&j->mu);
    /* times are in insertion order but the wall clock may step back: filter
     * each event rather than search for the first match */
    for (size_t i = 0; i < j->n; i++)
        count += j->ms[(j->head + i) % j->cap] >= since_ms;
    first = limit != 0 && count > limit ? count - limit : 0; /* matches to skip */
    for (size_t i = 0; i < j->n; i++) {
        size_t k = (j->head + i) % j->cap;
        if (j->ms[k] < since_ms)
            continue;
        if (first > 0) {
            first--;
            continue;
        }
        json_array_append_new(out, json_deep_copy(j->ev[k]));
    }
    pthread_mutex_unlock(&j->mu);
    return out;
}

int sg_journal_reopen(struct sg_journal *j)
{
    int fd, old;

    if (j == NULL)
        return SG_OK;
    SG_CHECK_MAGIC(j, JOURNAL_MAGIC);
    if (j->path == NULL)
        return SG_OK;
    fd = sg_open_append(j->path);
    if (fd < 0) {
        sg_log_warn("journal '%s': cannot reopen: %s (still writing to the old file)", j->path,
                    strerror(errno));
        return SG_ERR;
    }
    pthread_mutex_lock(&j->mu);
    old = j->fd;
    j->fd = fd;
    j->write_failed = false;
    pthread_mutex_unlock(&j->mu);
    if (old >= 0)
        close(old);
    return SG_OK;
}

/* ---- parsing times ---- */

/* n decimal digits at *p into *out; advances *p. */
static bool journal_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool journal_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian, y >= 1970). */
static int64_t journal_days(int y, int m, int d)
{
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t days = 0;
    int yy = y - 1; /* leap years in 1..y-1, minus those in 1..1969 */
    days = (int64_t)(y - 1970) * 365 + (yy / 4 - yy / 100 + yy / 400) -
           (1969 / 4 - 1969 / 100 + 1969 / 400);
    days += before[m - 1] + (m > 2 && journal_leap(y)) + (d - 1);
    return days;
}

int sg_journal_parse_time(const char *s, uint64_t *ms)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, frac = 0, off = 0;
    const char *p = s;
    int64_t total;

    if (s == NULL || ms == NULL)
        return SG_ERR;
    if (!journal_digits(&p, 4, &y) || *p++ != '-' || !journal_digits(&p, 2, &mo) || *p++ != '-' ||
        !journal_digits(&p, 2, &d) || *p++ != 'T' || !journal_digits(&p, 2, &h) || *p++ != ':' ||
        !journal_digits(&p, 2, &mi) || *p++ != ':' || !journal_digits(&p, 2, &sec))
        return SG_ERR;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
        d > mdays[mo - 1] + (mo == 2 && journal_leap(y)) || h > 23 || mi > 59 || sec > 59)
        return SG_ERR;
    if (*p == '.') {
        int ndig = 0, scale = 100;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (ndig < 3) {
                frac += (*p - '0') * scale;
                scale /= 10;
            }
            ndig++;
            p++;
        }
        if (ndig == 0 || ndig > 9)
            return SG_ERR;
    }
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (!journal_digits(&p, 2, &oh) || *p++ != ':' || !journal_digits(&p, 2, &om) || oh > 23 ||
            om > 59)
            return SG_ERR;
        off = sign * (oh * 60 + om);
    }
    if (*p != '\0')
        return SG_ERR;
    total = journal_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - (int64_t)off * 60;
    if (total < 0)
        return SG_ERR;
    *ms = (uint64_t)total * 1000u + (uint64_t)frac;
    return SG_OK;
}

/* ---- the default journal ---- */

void sg_journal_set_default(struct sg_journal *j)
{
    pthread_rwlock_wrlock(&journal_default_lock);
    journal_default = j;
    pthread_rwlock_unlock(&journal_default_lock);
}

void sg_journal_emit(const char *type, json_t *fields)
{
    /* the read lock keeps the journal alive until the event is added */
    pthread_rwlock_rdlock(&journal_default_lock);
    sg_journal_add(journal_default, type, fields);
    pthread_rwlock_unlock(&journal_default_lock);
}

json_t *sg_journal_default_since(uint64_t since_ms, size_t limit)
{
    pthread_rwlock_rdlock(&journal_default_lock);
    json_t *r = journal_default != NULL ? sg_journal_since(journal_default, since_ms, limit) : NULL;
    pthread_rwlock_unlock(&journal_default_lock);
    return r;
}
