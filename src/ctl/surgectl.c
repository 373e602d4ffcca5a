/* surgectl.c: the admin command-line client. Parses the command line, calls
 * the admin API (ctl_http.c) and prints tables, or the server's JSON with
 * --json. Exit codes: 0 success, 1 the server refused or answered oddly,
 * 2 usage, 3 cannot reach the admin API, 4 token refused (401/403). */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"

#define DEFAULT_ADMIN "unix:/run/surgegate/admin.sock"
#define TIMEOUT_MS    10000

enum {
    EXIT_OK = 0,
    EXIT_SERVER = 1,
    EXIT_USAGE = 2,
    EXIT_UNREACHABLE = 3,
    EXIT_AUTH = 4,
};

static const char usage_text[] =
    "usage: surgectl [--admin ADDR] [--token T] [--json] COMMAND ...\n"
    "\n"
    "commands:\n"
    "  status [--watch] [--count N]    pools and backends: state, in-flight, queue,\n"
    "                                  p50/p99 latency, error rate, requests/s (10 s)\n"
    "  backends POOL                   one pool's backends in detail\n"
    "  add POOL ADDRESS [--weight N] [--maxconn N]\n"
    "  remove POOL ADDRESS [--force]   drain the backend, then remove it (--force:\n"
    "                                  also when it is the pool's last backend)\n"
    "  drain|ready|maint POOL ADDRESS  set a backend's administrative state\n"
    "  weight POOL ADDRESS N           set a backend's weight\n"
    "  events [--since TIME|DURATION]  the event journal (e.g. --since 5m, 1h, 30s,\n"
    "                                  or --since 2026-11-30T19:40:00Z)\n"
    "  reload                          reload surgegate's configuration file in place\n"
    "                                  (a file with an error is refused: nothing changes)\n"
    "  upgrade                         binary upgrade: surgegate runs its executable again,\n"
    "                                  hands it its sockets and state, and stops\n"
    "\n"
    "options (before or after the command):\n"
    "  --admin ADDR   unix:/path or host:port (default: $SURGEGATE_ADMIN, else\n"
    "                 " DEFAULT_ADMIN ")\n"
    "  --token T      bearer token (default: $SURGEGATE_TOKEN)\n"
    "  --json         print the server's JSON instead of a table\n"
    "  --watch        status: redraw every second until Ctrl-C\n"
    "  --count N      status: stop after N tables (implies --watch)\n"
    "  -h, --help     this text;  --version  the version\n"
    "\n"
    "exit status: 0 ok, 1 the server refused the request, 2 usage error,\n"
    "3 cannot reach the admin API, 4 the token was refused\n";

struct opts {
    const char *admin;
    const char *token;
    bool json;
    bool watch;
    long count; /* 0: unlimited */
    const char *since;
    long weight; /* -1: not given */
    long maxconn;
    bool force; /* remove: also the pool's last backend */
    const char *pos[8];
    int npos;
};

static struct ctl_addr g_addr;
static const char *g_token;

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "surgectl: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage_text);
    return EXIT_USAGE;
}

/* ---- small helpers ---- */

/* A JSON value by a dotted path ("latency_ms.total.10s.p50"), or NULL. */
static json_t *jpath(json_t *o, const char *path)
{
    char key[64];
    while (o != NULL && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof(key) || !json_is_object(o))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        o = json_object_get(o, key);
        path += n + (path[n] == '.');
    }
    return o;
}

/* Copies s into buf, control characters replaced by '?'. */
static const char *clean(char *buf, size_t len, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    buf[i] = '\0';
    return buf;
}

/* A field as text: a string (cleaned), an integer, a real with `dec`
 * decimals after multiplying by scale; "-" when missing or of another type. */
static const char *fmt(char *buf, size_t len, json_t *v, double scale, int dec)
{
    if (json_is_string(v))
        return clean(buf, len, json_string_value(v));
    if (json_is_integer(v) && scale == 1.0 && dec == 0)
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_number(v))
        snprintf(buf, len, "%.*f", dec, json_number_value(v) * scale);
    else if (json_is_boolean(v))
        snprintf(buf, len, "%s", json_is_true(v) ? "yes" : "no");
    else
        snprintf(buf, len, "-");
    return buf;
}

/* A percentile of o's total latency over 10 s ("p50"...) in ms: one decimal
 * below 100 ms, whole ms above; "-" when missing or when the window holds
 * no request (a 0 would read as "fast"). */
static const char *fmt_ms(char *buf, size_t len, json_t *o, const char *pct)
{
    json_t *win = jpath(o, "latency_ms.total.10s");
    json_t *v = json_object_get(win, pct), *count = json_object_get(win, "count");
    if (!json_is_number(v) || (json_is_integer(count) && json_integer_value(count) == 0))
        return fmt(buf, len, NULL, 1.0, 0);
    double ms = json_number_value(v);
    return fmt(buf, len, v, 1.0, ms < 100.0 ? 1 : 0);
}

/* Percent-encodes s for a path segment (RFC 3986 pchar kept) or, with
 * query set, for a query value (only unreserved characters and ':' kept). */
static char *urlenc(const char *s, bool query)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = ctl_xmalloc(strlen(s) * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~:", *p) != NULL ||
                    (!query && strchr("@!$&'()*+,;=", *p) != NULL);
        if (keep) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* ---- tables ---- */

struct table {
    int ncols;
    const char *const *head;
    const char *align; /* 'l' or 'r' per column */
    char **cells;      /* nrows * ncols */
    size_t nrows, cap;
};

static void table_row(struct table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = ctl_xrealloc(t->cells, t->cap * (size_t)t->ncols * sizeof(char *));
    }
    for (int i = 0; i < t->ncols; i++)
        t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = ctl_xstrdup(cells[i]);
    t->nrows++;
}

static void table_print(struct table *t)
{
    size_t w[32] = {0};
    for (int c = 0; c < t->ncols; c++) {
        w[c] = strlen(t->head[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t n = strlen(t->cells[r * (size_t)t->ncols + (size_t)c]);
            if (n > w[c])
                w[c] = n;
        }
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = r == 0 ? t->head[c] : t->cells[(r - 1) * (size_t)t->ncols + (size_t)c];
            bool last = c == t->ncols - 1;
            if (t->align[c] == 'r')
                printf("%*s%s", (int)w[c], s, last ? "" : "  ");
            else if (last)
                printf("%s", s);
            else
                printf("%-*s  ", (int)w[c], s);
        }
        printf("\n");
    }
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

/* ---- talking to the admin API ---- */

/* The server's error text from an error body, into buf. */
static const char *error_text(char *buf, size_t len, const struct ctl_resp *r)
{
    json_t *o = json_loadb(r->body, r->len, 0, NULL);
    const char *e = json_string_value(json_object_get(o, "error"));
    if (e != NULL) {
        clean(buf, len, e);
    } else {
        size_t n = strcspn(r->body, "\r\n");
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%.*s", (int)(n < 200 ? n : 200), r->body);
        clean(buf, len, n ? tmp : "(no error text)");
    }
    json_decref(o);
    return buf;
}

/* One request. On success returns EXIT_OK with the parsed JSON body in *out
 * (the caller owns it; NULL when the body is empty). Otherwise prints one
 * line on stderr and returns the exit code. */
static int api(const char *method, const char *target, json_t *body, json_t **out)
{
    char err[512];
    struct ctl_resp r;
    char *txt = body ? json_dumps(body, JSON_COMPACT) : NULL;
    enum ctl_http_result rc =
        ctl_http_exchange(&g_addr, method, target, g_token, txt, TIMEOUT_MS, &r, err, sizeof(err));
    free(txt);
    *out = NULL;
    if (rc != CTL_HTTP_OK) {
        if (ctl_stop)
            return EXIT_OK; /* interrupted on purpose */
        if (rc == CTL_HTTP_CONNECT)
            fprintf(stderr,
                    "surgectl: cannot reach surgegate's admin API at %s: %s (is surgegate "
                    "running? see --admin)\n",
                    g_addr.text, err);
        else if (rc == CTL_HTTP_PROTOCOL)
            fprintf(stderr, "surgectl: the admin API at %s answered oddly: %s\n", g_addr.text, err);
        else
            fprintf(stderr, "surgectl: the admin API at %s did not answer: %s\n", g_addr.text, err);
        return rc == CTL_HTTP_PROTOCOL ? EXIT_SERVER : EXIT_UNREACHABLE;
    }
    int code = EXIT_OK;
    char etext[300];
    if (r.status == 401) {
        fprintf(stderr, "surgectl: the admin API refused the token (401 Unauthorized): use "
                        "--token or SURGEGATE_TOKEN\n");
        code = EXIT_AUTH;
    } else if (r.status == 403) {
        fprintf(stderr, "surgectl: the admin API refused the request: this token may only read "
                        "(403)\n");
        code = EXIT_AUTH;
    } else if (r.status < 200 || r.status >= 300) {
        char reason[64];
        clean(reason, sizeof(reason), r.reason);
        fprintf(stderr, "surgectl: %d%s%s: %s\n", r.status, reason[0] ? " " : "", reason,
                error_text(etext, sizeof(etext), &r));
        code = EXIT_SERVER;
    } else if (r.len > 0) {
        json_error_t je;
        *out = json_loadb(r.body, r.len, JSON_DECODE_ANY, &je);
        if (*out == NULL) {
            fprintf(stderr,
                    "surgectl: the admin API answered %d with a body that is not JSON: %s\n",
                    r.status, je.text);
            code = EXIT_SERVER;
        }
    }
    ctl_resp_free(&r);
    return code;
}

static void print_json(json_t *v)
{
    if (v == NULL) {
        printf("null\n");
        return;
    }
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (s != NULL)
        printf("%s\n", s);
    free(s);
}

static int unexpected(const char *what)
{
    fprintf(stderr, "surgectl: the admin API's answer is not %s\n", what);
    return EXIT_SERVER;
}

/* ---- status ---- */

static const char *const status_head[] = {"POOL/BACKEND", "STATE", "INFLIGHT", "QUEUE",   "P50 ms",
                                          "P99 ms",       "ERR%",  "RPS",      "OVERLOAD"};

/* The pool queue's overload control, one word: "ok/100ms" (its state and
 * target), "standing/100ms" (shedding), "off"; "-" for a backend (or when
 * the server does not report it). */
static const char *status_overload(char *buf, size_t len, json_t *o)
{
    json_t *qs = json_object_get(o, "queue_state");
    if (!json_is_string(qs))
        return "-";
    char st[32], tg[32];
    fmt(st, sizeof(st), qs, 1, 0);
    if (strcmp(st, "off") == 0)
        return "off";
    snprintf(buf, len, "%s/%sms", st,
             fmt(tg, sizeof(tg), json_object_get(o, "queue_target_ms"), 1, 0));
    return buf;
}

static void status_row(struct table *t, json_t *o, const char *name, const char *state)
{
    char b[9][128];
    const char *cells[9] = {
        name,
        state,
        fmt(b[2], sizeof(b[2]), json_object_get(o, "inflight"), 1.0, 0),
        fmt(b[3], sizeof(b[3]), json_object_get(o, "queue_depth"), 1.0, 0),
        fmt_ms(b[4], sizeof(b[4]), o, "p50"),
        fmt_ms(b[5], sizeof(b[5]), o, "p99"),
        fmt(b[6], sizeof(b[6]), json_object_get(o, "error_rate"), 100.0, 1),
        fmt(b[7], sizeof(b[7]), json_object_get(o, "rps"), 1.0, 1),
        status_overload(b[8], sizeof(b[8]), o),
    };
    table_row(t, cells);
}

/* The backend's state, with "ejected" / "backup" noted. */
static const char *backend_state(char *buf, size_t len, json_t *b)
{
    char st[64];
    fmt(st, sizeof(st), json_object_get(b, "state"), 1.0, 0);
    snprintf(buf, len, "%s%s%s", st, json_is_true(json_object_get(b, "ejected")) ? " ejected" : "",
             json_is_true(json_object_get(b, "backup")) ? " backup" : "");
    return buf;
}

/* "cluster: follower of 'a' (this instance: 'b'), 3 members": the role line
 * of an instance with a cluster group (none when it decides alone). */
static void print_cluster(json_t *c)
{
    const char *role = json_string_value(json_object_get(c, "role"));
    if (role == NULL || strcmp(role, "alone") == 0)
        return;
    char r[32], name[160], leader[160];
    clean(r, sizeof(r), role);
    fmt(name, sizeof(name), json_object_get(c, "name"), 1, 0);
    fmt(leader, sizeof(leader), json_object_get(c, "leader"), 1, 0);
    json_t *m = json_object_get(c, "members");
    size_t n = json_is_array(m) ? json_array_size(m) : 0;
    if (strcmp(role, "leader") == 0)
        printf("cluster: leader (this instance: '%s'; it runs the scale hooks), %zu member%s\n",
               name, n, n == 1 ? "" : "s");
    else if (strcmp(role, "follower") == 0)
        printf("cluster: follower of '%s' (this instance: '%s'), %zu member%s\n",
               json_string_length(json_object_get(c, "leader")) ? leader : "(none yet)", name, n,
               n == 1 ? "" : "s");
    else
        printf("cluster: %s (this instance: '%s'): etcd unreachable, no instance scales\n", r,
               name);
}

static int print_status(json_t *st)
{
    json_t *pools = json_object_get(st, "pools");
    if (!json_is_array(pools))
        return unexpected("stats with a \"pools\" list");
    /* "surgegate 0.1.0, up 1h02m03s, 2026-11-30T19:40:22.123Z": what the answer has */
    json_t *ver = json_object_get(st, "version"), *upt = json_object_get(st, "uptime_s");
    json_t *tm = json_object_get(st, "time");
    char buf[128];
    printf("surgegate");
    if (json_is_string(ver))
        printf(" %s", clean(buf, sizeof(buf), json_string_value(ver)));
    if (json_is_number(upt) && json_number_value(upt) >= 0) {
        long long u = (long long)json_number_value(upt);
        if (u >= 86400)
            printf(", up %lldd%02lldh%02lldm", u / 86400, u % 86400 / 3600, u % 3600 / 60);
        else if (u >= 3600)
            printf(", up %lldh%02lldm%02llds", u / 3600, u % 3600 / 60, u % 60);
        else if (u >= 60)
            printf(", up %lldm%02llds", u / 60, u % 60);
        else
            printf(", up %llds", u);
    }
    if (json_is_string(tm))
        printf(", %s", clean(buf, sizeof(buf), json_string_value(tm)));
    printf("\n");
    print_cluster(json_object_get(st, "cluster"));
    static const char align[] = "llrrrrrrl";
    struct table t = {.ncols = 9, .head = status_head, .align = align};
    size_t i, j;
    json_t *p, *b;
    json_array_foreach(pools, i, p)
    {
        char name[300], state[128], n1[32], n2[32];
        fmt(name, sizeof(name), json_object_get(p, "name"), 1, 0);
        json_t *nu = json_object_get(p, "backends_up"), *nt = json_object_get(p, "backends_total");
        if (json_is_integer(nu) && json_is_integer(nt))
            snprintf(state, sizeof(state), "%s/%s up", fmt(n1, sizeof(n1), nu, 1, 0),
                     fmt(n2, sizeof(n2), nt, 1, 0));
        else
            snprintf(state, sizeof(state), "-");
        status_row(&t, p, name, state);
        json_array_foreach(json_object_get(p, "backends"), j, b)
        {
            char addr[300], bname[304], bst[128];
            fmt(addr, sizeof(addr), json_object_get(b, "address"), 1, 0);
            snprintf(bname, sizeof(bname), "  %s", addr);
            status_row(&t, b, bname, backend_state(bst, sizeof(bst), b));
        }
    }
    table_print(&t);
    return EXIT_OK;
}

static void on_stop_signal(int sig)
{
    (void)sig;
    ctl_stop = 1;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmd_status(const struct opts *o)
{
    if (!o->watch) {
        json_t *st;
        int rc = api("GET", "/api/v1/stats", NULL, &st);
        if (rc == EXIT_OK)
            rc = o->json ? (print_json(st), EXIT_OK) : print_status(st);
        json_decref(st);
        return rc;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: sleeps and polls end early */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    bool tty = isatty(STDOUT_FILENO);
    int64_t next = mono_ms();
    for (long n = 0; !ctl_stop && (o->count == 0 || n < o->count); n++) {
        if (n > 0) {
            next += 1000;
            int64_t left;
            while (!ctl_stop && (left = next - mono_ms()) > 0) {
                struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000};
                nanosleep(&ts, NULL);
            }
            if (ctl_stop)
                break;
        }
        json_t *st;
        int rc = api("GET", "/api/v1/stats", NULL, &st);
        if (ctl_stop) {
            json_decref(st);
            break;
        }
        if (rc != EXIT_OK)
            return rc;
        if (tty)
            printf("\033[H\033[2J");
        else if (n > 0)
            printf("\n");
        rc = o->json ? (print_json(st), EXIT_OK) : print_status(st);
        json_decref(st);
        fflush(stdout);
        if (rc != EXIT_OK)
            return rc;
    }
    return EXIT_OK;
}

/* ---- backends ---- */

static const char *const backends_head[] = {"BACKEND", "STATE",  "WEIGHT", "MAXCONN", "INFLIGHT",
                                            "QUEUE",   "QMAX",   "ACTIVE", "IDLE",    "REQS",
                                            "5XX",     "ERRORS", "P50 ms", "P95 ms",  "P99 ms",
                                            "ERR%",    "RPS",    "SINCE",  "REASON"};

static int cmd_backends(const struct opts *o)
{
    char *pool = urlenc(o->pos[1], false);
    char target[1024];
    snprintf(target, sizeof(target), "/api/v1/pools/%s/backends", pool);
    free(pool);
    json_t *bs;
    int rc = api("GET", target, NULL, &bs);
    if (rc != EXIT_OK || o->json) {
        if (rc == EXIT_OK)
            print_json(bs);
        json_decref(bs);
        return rc;
    }
    if (!json_is_array(bs)) {
        json_decref(bs);
        return unexpected("a list of backends");
    }
    static const char align[] = "llrrrrrrrrrrrrrrrll";
    struct table t = {.ncols = 19, .head = backends_head, .align = align};
    size_t i;
    json_t *b;
    json_array_foreach(bs, i, b)
    {
        char c[19][160];
        char *cells[19];
        for (int k = 0; k < 19; k++)
            cells[k] = c[k];
        fmt(c[0], sizeof(c[0]), json_object_get(b, "address"), 1, 0);
        backend_state(c[1], sizeof(c[1]), b);
        fmt(c[2], sizeof(c[2]), json_object_get(b, "weight"), 1, 0);
        fmt(c[3], sizeof(c[3]), json_object_get(b, "maxconn"), 1, 0);
        fmt(c[4], sizeof(c[4]), json_object_get(b, "inflight"), 1, 0);
        fmt(c[5], sizeof(c[5]), json_object_get(b, "queue_depth"), 1, 0);
        fmt(c[6], sizeof(c[6]), json_object_get(b, "queue_depth_max"), 1, 0);
        fmt(c[7], sizeof(c[7]), json_object_get(b, "conns_active"), 1, 0);
        fmt(c[8], sizeof(c[8]), json_object_get(b, "conns_idle"), 1, 0);
        fmt(c[9], sizeof(c[9]), json_object_get(b, "requests"), 1, 0);
        fmt(c[10], sizeof(c[10]), jpath(b, "responses.5xx"), 1, 0);
        json_t *errs = json_object_get(b, "errors");
        if (json_is_object(errs)) {
            long long sum = 0;
            const char *k;
            json_t *v;
            json_object_foreach(errs, k, v)
            {
                sum += json_is_integer(v) ? json_integer_value(v) : 0;
            }
            snprintf(c[11], sizeof(c[11]), "%lld", sum);
        } else {
            snprintf(c[11], sizeof(c[11]), "-");
        }
        fmt_ms(c[12], sizeof(c[12]), b, "p50");
        fmt_ms(c[13], sizeof(c[13]), b, "p95");
        fmt_ms(c[14], sizeof(c[14]), b, "p99");
        fmt(c[15], sizeof(c[15]), json_object_get(b, "error_rate"), 100.0, 1);
        fmt(c[16], sizeof(c[16]), json_object_get(b, "rps"), 1.0, 1);
        fmt(c[17], sizeof(c[17]), json_object_get(b, "since"), 1, 0);
        json_t *reason = json_object_get(b, "reason");
        fmt(c[18], sizeof(c[18]), reason, 1, 0);
        if (json_is_string(reason) && c[18][0] == '\0')
            snprintf(c[18], sizeof(c[18]), "-");
        table_row(&t, (const char *const *)cells);
    }
    table_print(&t);
    json_decref(bs);
    return EXIT_OK;
}

/* ---- mutations ---- */

/* "/api/v1/pools/POOL/backends[/ADDRESS[/suffix]]", segments encoded. */
static char *backend_target(const char *pool, const char *addr, const char *suffix)
{
    char *p = urlenc(pool, false), *a = addr ? urlenc(addr, false) : NULL;
    size_t n = strlen(p) + (a ? strlen(a) : 0) + (suffix ? strlen(suffix) : 0) + 64;
    char *t = ctl_xmalloc(n);
    snprintf(t, n, "/api/v1/pools/%s/backends%s%s%s%s", p, a ? "/" : "", a ? a : "",
             suffix ? "/" : "", suffix ? suffix : "");
    free(p);
    free(a);
    return t;
}

/* Runs a mutation; prints the server's JSON with --json, else `done` (a
 * format with the pool, the address and one more string: the backend's
 * state from the answer, or "-"). */
static int mutate(const struct opts *o, const char *method, char *target, json_t *body,
                  const char *done)
{
    json_t *res;
    int rc = api(method, target, body, &res);
    free(target);
    json_decref(body);
    if (rc == EXIT_OK) {
        if (o->json) {
            print_json(res);
        } else {
            char st[64];
            fmt(st, sizeof(st), json_object_get(res, "state"), 1, 0);
            printf(done, o->pos[1], o->pos[2], st);
            printf("\n");
        }
    }
    json_decref(res);
    return rc;
}

static int cmd_add(const struct opts *o)
{
    json_t *body = json_pack("{s:s}", "address", o->pos[2]);
    if (o->weight >= 0)
        json_object_set_new(body, "weight", json_integer(o->weight));
    if (o->maxconn >= 0)
        json_object_set_new(body, "maxconn", json_integer(o->maxconn));
    return mutate(o, "POST", backend_target(o->pos[1], NULL, NULL), body,
                  "pool %s: backend %s added (state %s)");
}

static int cmd_remove(const struct opts *o)
{
    char *target = backend_target(o->pos[1], o->pos[2], NULL);
    if (o->force) {
        size_t n = strlen(target) + sizeof("?force=1");
        char *t = ctl_xmalloc(n);
        snprintf(t, n, "%s?force=1", target);
        free(target);
        target = t;
    }
    return mutate(o, "DELETE", target, NULL,
                  "pool %s: backend %s is draining and will then be removed (state %s)");
}

static int cmd_state(const struct opts *o)
{
    const char *st = o->pos[0];
    char done[128];
    snprintf(done, sizeof(done), "pool %%s: backend %%s set to %s (state now %%s)", st);
    return mutate(o, "POST", backend_target(o->pos[1], o->pos[2], "state"),
                  json_pack("{s:s}", "state", st), done);
}

static int cmd_weight(const struct opts *o)
{
    long w;
    if (!parse_long(o->pos[3], 0, 1000000, &w))
        return usage_error("weight: '%s' is not a whole number from 0 to 1000000", o->pos[3]);
    char done[128];
    snprintf(done, sizeof(done), "pool %%s: backend %%s weight set to %ld (state %%s)", w);
    return mutate(o, "POST", backend_target(o->pos[1], o->pos[2], "weight"),
                  json_pack("{s:I}", "weight", (json_int_t)w), done);
}

static int cmd_reload(const struct opts *o)
{
    json_t *res;
    json_t *body = json_object();
    int rc = api("POST", "/api/v1/reload", body, &res);
    json_decref(body);
    if (rc == EXIT_OK) {
        if (o->json) {
            print_json(res);
        } else {
            json_t *rt = json_object_get(res, "runtime_backends");
            printf("reloaded %s in %.1f ms: %lld backends carried over, %zu added at runtime "
                   "kept\n",
                   json_string_value(json_object_get(res, "file")),
                   json_number_value(json_object_get(res, "duration_ms")),
                   (long long)json_integer_value(json_object_get(res, "carried")),
                   json_array_size(rt));
        }
    }
    json_decref(res);
    return rc;
}

static int cmd_upgrade(const struct opts *o)
{
    json_t *res;
    json_t *body = json_object();
    int rc = api("POST", "/api/v1/upgrade", body, &res);
    json_decref(body);
    if (rc == EXIT_OK) {
        if (o->json)
            print_json(res);
        else
            printf("upgrade started: process %lld runs %s again and hands over its sockets; it "
                   "stops once the new one serves (see the log and `surgectl events`)\n",
                   (long long)json_integer_value(json_object_get(res, "pid")),
                   json_string_value(json_object_get(res, "exe")));
    }
    json_decref(res);
    return rc;
}

/* ---- events ---- */

/* --since: an ISO-8601 time as given, or a duration (30s, 5m, 1h, 2d, 500ms)
 * turned into now minus it. Returns false on anything else. */
static bool since_value(const char *s, char *out, size_t len)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] >= '0' && s[0] <= '9' && errno == 0 && end != s) {
        long long mul = strcmp(end, "ms") == 0  ? 1
                        : strcmp(end, "s") == 0 ? 1000
                        : strcmp(end, "m") == 0 ? 60000
                        : strcmp(end, "h") == 0 ? 3600000
                        : strcmp(end, "d") == 0 ? 86400000
                                                : 0;
        if (mul != 0) {
            if (v > 100LL * 365 * 86400000 / mul)
                return false;
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            long long ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 - v * mul;
            if (ms < 0)
                ms = 0;
            time_t secs = (time_t)(ms / 1000);
            struct tm tm;
            gmtime_r(&secs, &tm);
            char day[32];
            strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
            snprintf(out, len, "%s.%03lldZ", day, ms % 1000);
            return true;
        }
    }
    /* an ISO-8601 time: YYYY-MM-DD, then the server judges the rest */
    if (strlen(s) >= 10 && strlen(s) < len && s[4] == '-' && s[7] == '-' &&
        strspn(s, "0123456789") == 4) {
        snprintf(out, len, "%s", s);
        return true;
    }
    return false;
}

/* A value for "key=value": strings bare unless they hold spaces, quotes,
 * '=' or control characters (then JSON-quoted); other types as JSON. */
static void print_kv_value(json_t *v)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        bool bare = s[0] != '\0';
        for (const char *p = s; *p && bare; p++)
            if ((unsigned char)*p <= ' ' || *p == '"' || *p == '=' || *p == 0x7f)
                bare = false;
        if (bare) {
            fputs(s, stdout);
            return;
        }
    }
    char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    fputs(txt ? txt : "-", stdout);
    free(txt);
}

static int cmd_events(const struct opts *o)
{
    char target[512] = "/api/v1/events";
    if (o->since != NULL) {
        char when[128];
        if (!since_value(o->since, when, sizeof(when)))
            return usage_error("--since '%s': want an ISO-8601 time (2026-11-30T19:40:00Z) or "
                               "a duration (30s, 5m, 1h, 2d)",
                               o->since);
        char *q = urlenc(when, true);
        snprintf(target, sizeof(target), "/api/v1/events?since=%s", q);
        free(q);
    }
    json_t *res;
    int rc = api("GET", target, NULL, &res);
    if (rc != EXIT_OK || o->json) {
        if (rc == EXIT_OK)
            print_json(res);
        json_decref(res);
        return rc;
    }
    json_t *evs = json_is_object(res) ? json_object_get(res, "events") : res;
    if (!json_is_array(evs)) {
        json_decref(res);
        return unexpected("a list of events");
    }
    size_t i;
    json_t *e;
    json_array_foreach(evs, i, e)
    {
        char tm[64], type[128];
        printf("%s %s", fmt(tm, sizeof(tm), json_object_get(e, "time"), 1, 0),
               fmt(type, sizeof(type), json_object_get(e, "type"), 1, 0));
        const char *k;
        json_t *v;
        json_object_foreach(e, k, v)
        {
            if (strcmp(k, "time") == 0 || strcmp(k, "type") == 0)
                continue;
            char kb[128];
            printf(" %s=", clean(kb, sizeof(kb), k));
            print_kv_value(v);
        }
        printf("\n");
    }
    json_decref(res);
    return EXIT_OK;
}

/* ---- command line ---- */

struct command {
    const char *name;
    int nargs; /* positional arguments after the name */
    const char *args;
    int (*fn)(const struct opts *o);
};

static const struct command commands[] = {
    {"status", 0, "", cmd_status},           {"backends", 1, "POOL", cmd_backends},
    {"add", 2, "POOL ADDRESS", cmd_add},     {"remove", 2, "POOL ADDRESS", cmd_remove},
    {"drain", 2, "POOL ADDRESS", cmd_state}, {"ready", 2, "POOL ADDRESS", cmd_state},
    {"maint", 2, "POOL ADDRESS", cmd_state}, {"weight", 3, "POOL ADDRESS N", cmd_weight},
    {"events", 0, "", cmd_events},           {"reload", 0, "", cmd_reload},
    {"upgrade", 0, "", cmd_upgrade},
};

/* Matches "--name" or "--name=value". Returns 0 no match, 1 match (value
 * taken from the next argument when needs_value and not inline), -1 when
 * the value is missing. */
static int opt_match(int argc, char **argv, int *i, const char *name, bool needs_value,
                     const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
        return 0;
    if (!needs_value)
        return a[n] == '\0' ? 1 : -1;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    o->weight = o->maxconn = -1;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        bool is_opt = !only_pos && a[0] == '-' && a[1] != '\0' && !(a[1] >= '0' && a[1] <= '9');
        if (!is_opt) {
            if (o->npos == (int)(sizeof(o->pos) / sizeof(o->pos[0])))
                return usage_error("too many arguments at '%s'", a);
            o->pos[o->npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            exit(EXIT_OK);
        }
        if (strcmp(a, "--version") == 0) {
            printf("surgectl %s\n", SG_VERSION);
            exit(EXIT_OK);
        }
        int m;
        long num;
        if ((m = opt_match(argc, argv, &i, "--admin", true, &v)) != 0) {
            if (m < 0 || v[0] == '\0')
                return usage_error("%s needs an address (unix:/path or host:port)", "--admin");
            o->admin = v;
        } else if ((m = opt_match(argc, argv, &i, "--token", true, &v)) != 0) {
            if (m < 0)
                return usage_error("%s needs a value", "--token");
            o->token = v;
        } else if ((m = opt_match(argc, argv, &i, "--json", false, &v)) != 0) {
            if (m < 0)
                return usage_error("%s takes no value", "--json");
            o->json = true;
        } else if ((m = opt_match(argc, argv, &i, "--watch", false, &v)) != 0) {
            if (m < 0)
                return usage_error("%s takes no value", "--watch");
            o->watch = true;
        } else if ((m = opt_match(argc, argv, &i, "--count", true, &v)) != 0) {
            if (m < 0 || !parse_long(v, 1, 1000000000, &num))
                return usage_error("%s needs a whole number of refreshes, 1 or more", "--count");
            o->count = num;
            o->watch = true;
        } else if ((m = opt_match(argc, argv, &i, "--since", true, &v)) != 0) {
            if (m < 0)
                return usage_error("%s needs a time or a duration", "--since");
            o->since = v;
        } else if ((m = opt_match(argc, argv, &i, "--weight", true, &v)) != 0) {
            if (m < 0 || !parse_long(v, 0, 1000000, &num))
                return usage_error("%s needs a whole number from 0 to 1000000", "--weight");
            o->weight = num;
        } else if ((m = opt_match(argc, argv, &i, "--force", false, &v)) != 0) {
            if (m < 0)
                return usage_error("%s takes no value", "--force");
            o->force = true;
        } else if ((m = opt_match(argc, argv, &i, "--maxconn", true, &v)) != 0) {
            if (m < 0 || !parse_long(v, 0, 1000000000, &num))
                return usage_error("%s needs a whole number, 0 or more", "--maxconn");
            o->maxconn = num;
        } else {
            return usage_error("unknown option '%s'", a);
        }
    }
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != EXIT_OK)
        return rc;
    if (o.npos == 0) {
        fprintf(stderr, "surgectl: no command given\n\n%s", usage_text);
        return EXIT_USAGE;
    }
    const struct command *cmd = NULL;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, o.pos[0]) == 0)
            cmd = &commands[i];
    if (cmd == NULL)
        return usage_error("unknown command '%s'", o.pos[0]);
    if (o.npos - 1 != cmd->nargs) {
        fprintf(stderr, "surgectl: %s %s: wants %d argument%s%s%s, got %d\n\n%s", cmd->name,
                cmd->args, cmd->nargs, cmd->nargs == 1 ? "" : "s", cmd->nargs ? " " : "", cmd->args,
                o.npos - 1, usage_text);
        return EXIT_USAGE;
    }
    if (o.watch && cmd->fn != cmd_status)
        return usage_error("--watch and --count go with status, not %s", cmd->name);
    if (o.since && cmd->fn != cmd_events)
        return usage_error("--since goes with events, not %s", cmd->name);
    if ((o.weight >= 0 || o.maxconn >= 0) && cmd->fn != cmd_add)
        return usage_error("--weight and --maxconn go with add, not %s", cmd->name);
    if (o.force && cmd->fn != cmd_remove)
        return usage_error("--force goes with remove, not %s", cmd->name);
    for (int i = 1; i < o.npos; i++)
        if (o.pos[i][0] == '\0')
            return usage_error("%s: an empty argument", cmd->name);

    const char *admin = o.admin;
    if (admin == NULL)
        admin = getenv("SURGEGATE_ADMIN");
    if (admin == NULL || admin[0] == '\0')
        admin = DEFAULT_ADMIN;
    g_token = o.token;
    if (g_token == NULL)
        g_token = getenv("SURGEGATE_TOKEN");
    if (g_token != NULL && g_token[0] == '\0')
        g_token = NULL;
    if (g_token != NULL)
        for (const char *p = g_token; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return usage_error("%s", "the token holds a control character");
    char err[512];
    if (ctl_addr_parse(admin, &g_addr, err, sizeof(err)) != 0)
        return usage_error("%s", err);
    rc = cmd->fn(&o);
    fflush(stdout);
    ctl_addr_free(&g_addr);
    return rc;
}
