/* accesslog.c: the access log, one line per request, written off the request
 * path.
 *
 * Each worker formats its lines into its own buffer with hand-written
 * formatting (no printf, no allocation, no lock per line). A buffer that
 * holds 32 KiB, or whatever is there when the 1 s timer or a stop calls
 * sg_alog_flush(), is appended to the writer's queue under one mutex and the
 * writer thread is signalled; the worker takes an empty buffer from the free
 * list in the same critical section. The writer thread takes the whole queue,
 * writes each buffer with write() (finishing short writes) and gives the
 * buffers back to the free list. A reopen request (logrotate) is a marker in
 * the same queue, so what was handed over before it goes to the old file and
 * what comes after to the new one. sg_alog_close() lets the writer drain the
 * queue before it joins it: nothing handed over is lost. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "surgegate/accesslog.h"
#include "surgegate/common.h"
#include "surgegate/log.h"

#define ALOG_MAGIC      0x414c4f47u /* "ALOG" */
#define ALOG_W_MAGIC    0x414c4f57u /* "ALOW" */
#define ALOG_FLUSH_AT   (32u * 1024)
#define ALOG_BUF_CAP    (64u * 1024)
#define ALOG_MAX_QUEUED ((size_t)64 << 20) /* bytes waiting for the writer before dropping */
#define ALOG_MAX_FREE   32                 /* empty buffers kept for reuse */
/* room for everything but the escaped strings of one line */
#define ALOG_LINE_FIXED 1024

struct alog_buf {
    struct alog_buf *next;
    char *data;
    size_t len, cap;
    uint64_t lines;
    bool reopen; /* a marker, no data: reopen the file here */
};

struct sg_alog {
    unsigned magic;
    char *path;
    enum sg_alog_format fmt;
    int fd; /* the writer thread's, after open */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* under mu */
    struct alog_buf *head, *tail; /* handed to the writer, in order */
    struct alog_buf *free_list;
    size_t nfree;
    size_t queued; /* bytes handed over and not yet written */
    uint64_t dropped;
    bool drop_logged;
    bool stop;
    /* writer thread only */
    bool write_failed;
};

struct sg_alog_w {
    unsigned magic;
    struct sg_alog *a;
    struct alog_buf *buf; /* may be NULL after an allocation failure */
    uint64_t dropped;     /* lines lost to an allocation failure */
    int64_t cached_sec;
    char iso[20]; /* "2026-11-30T19:40:22" of cached_sec */
    char clf[27]; /* "30/Nov/2026:19:40:22 +0000" */
};

static struct alog_buf *alog_buf_new(size_t cap)
{
    struct alog_buf *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->data = malloc(cap);
    if (b->data == NULL) {
        free(b);
        return NULL;
    }
    b->cap = cap;
    return b;
}

static void alog_buf_free(struct alog_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    free(b);
}

/* ---- the writer thread ---- */

/* Writes all of b, finishing short writes; on an error logs once (until a
 * write succeeds again) and drops the rest of the buffer. */
static void alog_write_all(struct sg_alog *a, const struct alog_buf *b)
{
    const char *p = b->data;
    size_t left = b->len;

    while (left > 0) {
        ssize_t w = write(a->fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (!a->write_failed)
                sg_log_warn("access log '%s': write failed: %s (lines are lost until it works "
                            "again)",
                            a->path, w < 0 ? strerror(errno) : "nothing written");
            a->write_failed = true;
            return;
        }
        p += w;
        left -= (size_t)w;
    }
    a->write_failed = false;
}

static void alog_do_reopen(struct sg_alog *a)
{
    int fd = sg_open_append(a->path);
    if (fd < 0) {
        sg_log_warn("access log '%s': cannot reopen: %s (still writing to the old file)", a->path,
                    strerror(errno));
        return;
    }
    close(a->fd);
    a->fd = fd;
    a->write_failed = false;
}

static void *alog_writer_main(void *arg)
{
    struct sg_alog *a = arg;

    pthread_mutex_lock(&a->mu);
    for (;;) {
        struct alog_buf *list, *next;
        size_t written = 0;

        while (a->head == NULL && !a->stop)
            pthread_cond_wait(&a->cond, &a->mu);
        if (a->head == NULL)
            break; /* stopping and drained */
        list = a->head;
        a->head = a->tail = NULL;
        pthread_mutex_unlock(&a->mu);

        for (struct alog_buf *b = list; b != NULL; b = b->next) {
            if (b->reopen)
                alog_do_reopen(a);
            else
                alog_write_all(a, b);
            written += b->len;
        }

        pthread_mutex_lock(&a->mu);
        a->queued -= written;
        for (struct alog_buf *b = list; b != NULL; b = next) {
            next = b->next;
            if (b->reopen || a->nfree >= ALOG_MAX_FREE || b->cap > ALOG_BUF_CAP) {
                alog_buf_free(b);
            } else {
                b->len = 0;
                b->lines = 0;
                b->next = a->free_list;
                a->free_list = b;
                a->nfree++;
            }
        }
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

struct sg_alog *sg_alog_open(const char *path, enum sg_alog_format fmt, char *err, size_t errlen)
{
    struct sg_alog *a;
    int fd, rc;

    if (path == NULL || *path == '\0') {
        sg_errf(err, errlen, "access log: no path");
        return NULL;
    }
    if (fmt != SG_ALOG_JSON && fmt != SG_ALOG_COMBINED) {
        sg_errf(err, errlen, "access log: unknown format %d", (int)fmt);
        return NULL;
    }
    fd = sg_open_append(path);
    if (fd < 0) {
        sg_errf(err, errlen, "cannot open access log '%s': %s", path, strerror(errno));
        return NULL;
    }
    a = sg_xcalloc(1, sizeof(*a));
    a->magic = ALOG_MAGIC;
    a->path = sg_xstrdup(path);
    a->fmt = fmt;
    a->fd = fd;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cond, NULL);
    rc = pthread_create(&a->thread, NULL, alog_writer_main, a);
    if (rc != 0) {
        sg_errf(err, errlen, "access log: cannot start the writer thread: %s", strerror(rc));
        pthread_cond_destroy(&a->cond);
        pthread_mutex_destroy(&a->mu);
        close(fd);
        free(a->path);
        free(a);
        return NULL;
    }
    return a;
}

void sg_alog_reopen(struct sg_alog *a)
{
    struct alog_buf *m;

    if (a == NULL)
        return;
    SG_CHECK_MAGIC(a, ALOG_MAGIC);
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        sg_log_warn("access log '%s': out of memory, not reopened", a->path);
        return;
    }
    m->reopen = true;
    pthread_mutex_lock(&a->mu);
    if (a->tail != NULL)
        a->tail->next = m;
    else
        a->head = m;
    a->tail = m;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
}

void sg_alog_close(struct sg_alog *a)
{
    if (a == NULL)
        return;
    SG_CHECK_MAGIC(a, ALOG_MAGIC);
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    SG_BUG_ON(a->head != NULL);
    if (a->dropped > 0)
        sg_log_warn("access log '%s': %llu lines were dropped in all (the writer fell behind)",
                    a->path, (unsigned long long)a->dropped);
    while (a->free_list != NULL) {
        struct alog_buf *b = a->free_list;
        a->free_list = b->next;
        alog_buf_free(b);
    }
    close(a->fd);
    pthread_cond_destroy(&a->cond);
    pthread_mutex_destroy(&a->mu);
    free(a->path);
    a->magic = 0;
    free(a);
}

/* ---- worker buffers ---- */

struct sg_alog_w *sg_alog_worker_new(struct sg_alog *a)
{
    struct sg_alog_w *w;

    if (a == NULL)
        return NULL;
    SG_CHECK_MAGIC(a, ALOG_MAGIC);
    w = sg_xcalloc(1, sizeof(*w));
    w->magic = ALOG_W_MAGIC;
    w->a = a;
    w->buf = alog_buf_new(ALOG_BUF_CAP);
    w->cached_sec = -1;
    return w;
}

/* Hands w->buf to the writer; with want_new, puts an empty buffer in its
 * place (from the free list, else a new one; NULL if memory is short). */
static void alog_handoff(struct sg_alog_w *w, bool want_new)
{
    struct sg_alog *a = w->a;
    struct alog_buf *b = w->buf, *nb = NULL;
    bool log_drop = false;

    pthread_mutex_lock(&a->mu);
    if (a->queued + b->len > ALOG_MAX_QUEUED) {
        /* the writer is far behind (a stalled disk): drop rather than grow */
        a->dropped += b->lines;
        log_drop = !a->drop_logged;
        a->drop_logged = true;
        b->len = 0;
        b->lines = 0;
        nb = b;
        b = NULL;
    } else {
        b->next = NULL;
        if (a->tail != NULL)
            a->tail->next = b;
        else
            a->head = b;
        a->tail = b;
        a->queued += b->len;
        if (a->queued <= ALOG_MAX_QUEUED / 2)
            a->drop_logged = false;
        pthread_cond_signal(&a->cond);
        if (want_new && a->free_list != NULL) {
            nb = a->free_list;
            a->free_list = nb->next;
            a->nfree--;
        }
    }
    pthread_mutex_unlock(&a->mu);
    if (log_drop)
        sg_log_warn("access log '%s': the writer is more than %zu MiB behind: dropping lines",
                    a->path, ALOG_MAX_QUEUED >> 20);
    if (!want_new) {
        alog_buf_free(nb);
        nb = NULL;
    } else if (nb == NULL) {
        nb = alog_buf_new(ALOG_BUF_CAP);
    }
    w->buf = nb;
}

void sg_alog_flush(struct sg_alog_w *w)
{
    if (w == NULL)
        return;
    SG_CHECK_MAGIC(w, ALOG_W_MAGIC);
    if (w->buf != NULL && w->buf->len > 0)
        alog_handoff(w, true);
}

void sg_alog_worker_free(struct sg_alog_w *w)
{
    if (w == NULL)
        return;
    SG_CHECK_MAGIC(w, ALOG_W_MAGIC);
    if (w->buf != NULL && w->buf->len > 0)
        alog_handoff(w, false);
    alog_buf_free(w->buf);
    if (w->dropped > 0)
        sg_log_warn("access log '%s': %llu lines were dropped for lack of memory", w->a->path,
                    (unsigned long long)w->dropped);
    w->magic = 0;
    free(w);
}

/* ---- formatting ----
 * Each helper writes at p and returns the new end; the caller made sure the
 * buffer has room (see alog_need). */

static const char alog_hex[] = "0123456789ABCDEF";

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

static char *put_cstr(char *p, const char *s)
{
    return put(p, s, strlen(s));
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

static char *put_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return put_u64(p, (uint64_t)0 - (uint64_t)v);
    }
    return put_u64(p, (uint64_t)v);
}

/* µs as milliseconds with 3 decimals: 50300 -> "50.300" */
static char *put_ms3(char *p, int64_t us)
{
    uint64_t u = (uint64_t)us;
    p = put_u64(p, u / 1000);
    *p++ = '.';
    *p++ = (char)('0' + u / 100 % 10);
    *p++ = (char)('0' + u / 10 % 10);
    *p++ = (char)('0' + u % 10);
    return p;
}

/* Length of the valid UTF-8 sequence at s (0 if not valid): no overlong
 * forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t n;

    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (left < n)
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    }
    return n;
}

/* A JSON string (at most 6 bytes out per byte in, + 2); NULL -> null.
 * Bytes that are not valid UTF-8 are read as Latin-1 (\u00XX). */
static char *put_json_str(char *p, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;

    if (str == NULL)
        return PUT_LIT(p, "null");
    *p++ = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            *p++ = (char)c;
            i++;
        } else if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
            i++;
        } else if (c >= 0x80) {
            size_t len = utf8_seq(s + i, n - i);
            if (len > 0) {
                p = put(p, (const char *)s + i, len);
                i += len;
                continue;
            }
            p = PUT_LIT(p, "\\u00");
            *p++ = alog_hex[c >> 4];
            *p++ = alog_hex[c & 15];
            i++;
        } else {
            p = PUT_LIT(p, "\\u00");
            *p++ = alog_hex[c >> 4];
            *p++ = alog_hex[c & 15];
            i++;
        }
    }
    *p++ = '"';
    return p;
}

static char *put_json_cstr(char *p, const char *s)
{
    return put_json_str(p, s, s != NULL ? strlen(s) : 0);
}

/* nginx-style escaping for the combined format: '"', '\\', control bytes,
 * DEL and bytes >= 0x80 as \xHH (at most 4 bytes out per byte in); with
 * in_token also ' ' (for key=value fields). NULL -> "-". */
static char *put_clf_str(char *p, const char *str, size_t n, bool in_token)
{
    const unsigned char *s = (const unsigned char *)str;

    if (str == NULL || (in_token && n == 0))
        return PUT_LIT(p, "-");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || (in_token && c == ' ')) {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = alog_hex[c >> 4];
            *p++ = alog_hex[c & 15];
        } else {
            *p++ = (char)c;
        }
    }
    return p;
}

static char *put_clf_cstr(char *p, const char *s, bool in_token)
{
    return put_clf_str(p, s, s != NULL ? strlen(s) : 0, in_token);
}

static size_t alog_slen(const char *s)
{
    return s != NULL ? strlen(s) : 0;
}

/* Bytes one line may take at most. */
static size_t alog_need(const struct sg_alog_rec *r)
{
    size_t strs =
        (r->method != NULL ? r->method_len : 0) + (r->target != NULL ? r->target_len : 0) +
        (r->host != NULL ? r->host_len : 0) + (r->referer != NULL ? r->referer_len : 0) +
        (r->user_agent != NULL ? r->ua_len : 0) + alog_slen(r->client_ip) + alog_slen(r->frontend) +
        alog_slen(r->pool) + alog_slen(r->backend) + alog_slen(r->end);
    return strs * 6 + ALOG_LINE_FIXED;
}

static char *put_2(char *p, int v)
{
    *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

/* Formats the second of the line once per second, not once per line. */
static void alog_cache_time(struct sg_alog_w *w, int64_t sec)
{
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)sec;
    struct tm tm;
    char *p;
    int y;

    if (sec == w->cached_sec)
        return;
    gmtime_r(&t, &tm);
    y = tm.tm_year + 1900;
    p = w->iso;
    p = put_2(p, y / 100);
    p = put_2(p, y % 100);
    *p++ = '-';
    p = put_2(p, tm.tm_mon + 1);
    *p++ = '-';
    p = put_2(p, tm.tm_mday);
    *p++ = 'T';
    p = put_2(p, tm.tm_hour);
    *p++ = ':';
    p = put_2(p, tm.tm_min);
    *p++ = ':';
    p = put_2(p, tm.tm_sec);
    *p = '\0';
    p = w->clf;
    p = put_2(p, tm.tm_mday);
    *p++ = '/';
    p = put(p, months[tm.tm_mon], 3);
    *p++ = '/';
    p = put_2(p, y / 100);
    p = put_2(p, y % 100);
    *p++ = ':';
    p = put_2(p, tm.tm_hour);
    *p++ = ':';
    p = put_2(p, tm.tm_min);
    *p++ = ':';
    p = put_2(p, tm.tm_sec);
    p = PUT_LIT(p, " +0000");
    *p = '\0';
    w->cached_sec = sec;
}

static char *put_json_ms(char *p, const char *key, size_t keylen, int64_t us)
{
    p = put(p, key, keylen);
    return us < 0 ? PUT_LIT(p, "null") : put_ms3(p, us);
}

#define PUT_JSON_MS(p, key, us) put_json_ms((p), (key), sizeof(key) - 1, (us))

static char *alog_format_json(struct sg_alog_w *w, char *p, const struct sg_alog_rec *r)
{
    unsigned ms = (unsigned)(r->start_us / 1000 % 1000);

    p = PUT_LIT(p, "{\"time\":\"");
    p = put_cstr(p, w->iso);
    *p++ = '.';
    *p++ = (char)('0' + ms / 100);
    p = put_2(p, (int)(ms % 100));
    p = PUT_LIT(p, "Z\",\"client\":");
    p = put_json_cstr(p, r->client_ip);
    p = PUT_LIT(p, ",\"method\":");
    p = put_json_str(p, r->method, r->method_len);
    p = PUT_LIT(p, ",\"uri\":");
    p = put_json_str(p, r->target, r->target_len);
    p = PUT_LIT(p, ",\"host\":");
    p = put_json_str(p, r->host, r->host_len);
    p = PUT_LIT(p, ",\"proto\":");
    if (r->method != NULL) {
        p = PUT_LIT(p, "\"HTTP/1.");
        p = put_i64(p, r->http_minor);
        *p++ = '"';
    } else {
        p = PUT_LIT(p, "null");
    }
    p = PUT_LIT(p, ",\"frontend\":");
    p = put_json_cstr(p, r->frontend);
    p = PUT_LIT(p, ",\"pool\":");
    p = put_json_cstr(p, r->pool);
    p = PUT_LIT(p, ",\"backend\":");
    p = put_json_cstr(p, r->backend);
    p = PUT_LIT(p, ",\"status\":");
    p = put_i64(p, r->status);
    p = PUT_LIT(p, ",\"bytes_in\":");
    p = put_u64(p, r->bytes_in);
    p = PUT_LIT(p, ",\"bytes_out\":");
    p = put_u64(p, r->bytes_out);
    p = PUT_JSON_MS(p, ",\"queue_ms\":", r->queue_us);
    p = PUT_JSON_MS(p, ",\"connect_ms\":", r->connect_us);
    p = PUT_JSON_MS(p, ",\"ttfb_ms\":", r->ttfb_us);
    p = PUT_JSON_MS(p, ",\"total_ms\":", r->total_us);
    p = PUT_LIT(p, ",\"retries\":");
    p = put_u64(p, r->retries);
    p = PUT_LIT(p, ",\"end\":");
    p = put_json_cstr(p, r->end);
    p = PUT_LIT(p, ",\"referer\":");
    p = put_json_str(p, r->referer, r->referer_len);
    p = PUT_LIT(p, ",\"user_agent\":");
    p = put_json_str(p, r->user_agent, r->ua_len);
    return PUT_LIT(p, "}\n");
}

static char *put_clf_ms(char *p, const char *key, size_t keylen, int64_t us)
{
    p = put(p, key, keylen);
    return us < 0 ? PUT_LIT(p, "-") : put_ms3(p, us);
}

#define PUT_CLF_MS(p, key, us) put_clf_ms((p), (key), sizeof(key) - 1, (us))

static char *alog_format_combined(struct sg_alog_w *w, char *p, const struct sg_alog_rec *r)
{
    p = put_clf_cstr(p, r->client_ip, true);
    p = PUT_LIT(p, " - - [");
    p = put_cstr(p, w->clf);
    p = PUT_LIT(p, "] \"");
    if (r->method != NULL) {
        p = put_clf_str(p, r->method, r->method_len, false);
        *p++ = ' ';
        p = put_clf_str(p, r->target != NULL ? r->target : "", r->target_len, false);
        p = PUT_LIT(p, " HTTP/1.");
        p = put_i64(p, r->http_minor);
    } else {
        *p++ = '-';
    }
    p = PUT_LIT(p, "\" ");
    p = put_i64(p, r->status);
    *p++ = ' ';
    p = put_u64(p, r->bytes_out);
    p = PUT_LIT(p, " \"");
    p = put_clf_str(p, r->referer != NULL ? r->referer : "-",
                    r->referer != NULL ? r->referer_len : 1, false);
    p = PUT_LIT(p, "\" \"");
    p = put_clf_str(p, r->user_agent != NULL ? r->user_agent : "-",
                    r->user_agent != NULL ? r->ua_len : 1, false);
    p = PUT_LIT(p, "\" pool=");
    p = put_clf_cstr(p, r->pool, true);
    p = PUT_LIT(p, " backend=");
    p = put_clf_cstr(p, r->backend, true);
    p = PUT_CLF_MS(p, " queue_ms=", r->queue_us);
    p = PUT_CLF_MS(p, " connect_ms=", r->connect_us);
    p = PUT_CLF_MS(p, " ttfb_ms=", r->ttfb_us);
    p = PUT_CLF_MS(p, " total_ms=", r->total_us);
    p = PUT_LIT(p, " retries=");
    p = put_u64(p, r->retries);
    p = PUT_LIT(p, " end=");
    p = put_clf_cstr(p, r->end, true);
    *p++ = '\n';
    return p;
}

void sg_alog_write(struct sg_alog_w *w, const struct sg_alog_rec *r)
{
    size_t need;
    struct alog_buf *b;
    char *start, *end;

    if (w == NULL || r == NULL)
        return;
    SG_CHECK_MAGIC(w, ALOG_W_MAGIC);
    need = alog_need(r);
    b = w->buf;
    if (b != NULL && b->cap - b->len < need && b->len > 0) {
        alog_handoff(w, true);
        b = w->buf;
    }
    if (b == NULL) {
        b = w->buf = alog_buf_new(ALOG_BUF_CAP);
        if (b == NULL) {
            w->dropped++;
            return;
        }
    }
    if (b->cap < need) {
        /* a huge line (long target or user agent) in an empty buffer */
        char *d = realloc(b->data, need);
        if (d == NULL) {
            w->dropped++;
            return;
        }
        b->data = d;
        b->cap = need;
    }
    alog_cache_time(w, (int64_t)(r->start_us / 1000000));
    start = b->data + b->len;
    if (w->a->fmt == SG_ALOG_JSON)
        end = alog_format_json(w, start, r);
    else
        end = alog_format_combined(w, start, r);
    SG_BUG_ON((size_t)(end - start) > need);
    b->len += (size_t)(end - start);
    b->lines++;
    if (b->len >= ALOG_FLUSH_AT)
        alog_handoff(w, true);
}

const char *sg_end_name(enum sg_end e)
{
    static const char *const names[SG_END__COUNT] = {
        [SG_END_NONE] = "ok",
        [SG_END_OK] = "ok",
        [SG_END_CLOSED] = "closed",
        [SG_END_CLIENT_CLOSED] = "client_closed",
        [SG_END_CLIENT_TIMEOUT] = "client_timeout",
        [SG_END_BAD_REQUEST] = "bad_request",
        [SG_END_PROXY_ERROR] = "proxy_error",
        [SG_END_NO_POOL] = "no_pool",
        [SG_END_NO_BACKEND] = "no_backend",
        [SG_END_QUEUE_FULL] = "queue_full",
        [SG_END_QUEUE_TIMEOUT] = "queue_timeout",
        [SG_END_BACKEND_ERROR] = "backend_error",
        [SG_END_BACKEND_TIMEOUT] = "backend_timeout",
        [SG_END_BACKEND_RESET] = "backend_reset",
        [SG_END_BAD_RESPONSE] = "bad_response",
        [SG_END_SHED] = "shed",
    };
    return (unsigned)e < SG_END__COUNT ? names[e] : "?";
}
