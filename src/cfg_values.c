/* cfg_values.c: parsers for the scalar value syntaxes of the configuration
 * (durations, sizes, addresses, HTTP status ranges) and the freeing of
 * string arrays (argv) they are kept in. Pure functions: no
 * libconfig, no diagnostics; they return SG_OK/SG_ERR and, where a user needs
 * to know why, a reason the loader puts into its message. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "cfg-internal.h"
#include "surgegate/common.h"

/* Reads a run of decimal digits at *p into *v, refusing values above `limit`.
 * Returns the number of digits read (0 when *p is not a digit), -1 on overflow. */
static int values_digits(const char **p, uint64_t limit, uint64_t *v)
{
    int n = 0;
    *v = 0;
    while (isdigit((unsigned char)**p)) {
        unsigned d = (unsigned)(**p - '0');
        if (*v > (limit - d) / 10)
            return -1;
        *v = *v * 10 + d;
        (*p)++;
        n++;
    }
    return n;
}

const char *cfg_duration_reason(const char *s, uint32_t *out_ms)
{
    const char *p = s;
    uint64_t v, mult;
    int n = values_digits(&p, UINT32_MAX, &v);

    if (n < 0)
        return "value too large";
    if (n == 0)
        return "expected an integer followed by a unit ms, s, m or h (e.g. \"250ms\", \"5s\")";
    if (*p == '\0')
        return "duration needs a unit: ms, s, m or h (e.g. \"5s\")";
    if (strcmp(p, "ms") == 0)
        mult = 1;
    else if (strcmp(p, "s") == 0)
        mult = 1000;
    else if (strcmp(p, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(p, "h") == 0)
        mult = 3600 * 1000;
    else if (*p == '.')
        return "fractions are not allowed, use a smaller unit (\"1500ms\", not \"1.5s\")";
    else
        return "unknown unit: use ms, s, m or h (e.g. \"250ms\", \"5s\", \"2m\", \"1h\")";
    /* v < 2^32 and mult <= 3.6e6, so the product cannot overflow 64 bits */
    if (v * mult > UINT32_MAX)
        return "value too large (at most 1193h)";
    *out_ms = (uint32_t)(v * mult);
    return NULL;
}

int sg_cfg_parse_duration(const char *s, uint32_t *out_ms)
{
    return s != NULL && cfg_duration_reason(s, out_ms) == NULL ? SG_OK : SG_ERR;
}

void cfg_format_duration(uint32_t ms, char *buf, size_t len)
{
    if (ms != 0 && ms % (3600 * 1000) == 0)
        snprintf(buf, len, "%uh", ms / (3600 * 1000));
    else if (ms != 0 && ms % (60 * 1000) == 0)
        snprintf(buf, len, "%um", ms / (60 * 1000));
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(buf, len, "%us", ms / 1000);
    else
        snprintf(buf, len, "%ums", ms);
}

int sg_cfg_parse_size(const char *s, uint64_t *out)
{
    const char *p = s;
    uint64_t v, mult = 1;

    if (s == NULL || values_digits(&p, UINT64_MAX, &v) <= 0)
        return SG_ERR;
    switch (*p) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mult = 1024;
        break;
    case 'm':
    case 'M':
        mult = 1024 * 1024;
        break;
    case 'g':
    case 'G':
        mult = 1024 * 1024 * 1024;
        break;
    default:
        return SG_ERR;
    }
    if (*p != '\0' && p[1] != '\0')
        return SG_ERR;
    if (v > UINT64_MAX / mult)
        return SG_ERR;
    *out = v * mult;
    return SG_OK;
}

/* Formats a reason into errbuf (if any) and returns SG_ERR. */
static int values_addr_fail(struct sg_cfg_addr *out, char *errbuf, size_t errlen, const char *fmt,
                            ...) __attribute__((format(printf, 4, 5)));
static int values_addr_fail(struct sg_cfg_addr *out, char *errbuf, size_t errlen, const char *fmt,
                            ...)
{
    va_list ap;
    memset(out, 0, sizeof(*out));
    if (errbuf != NULL && errlen > 0) {
        va_start(ap, fmt);
        cfg_diag_vreason(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return SG_ERR;
}

int sg_cfg_parse_addr(const char *s, struct sg_cfg_addr *out, char *errbuf, size_t errlen)
{
    char host[64];
    const char *port_s, *colon;
    size_t hlen;
    uint64_t port;

    memset(out, 0, sizeof(*out));
    if (s == NULL || *s == '\0')
        return values_addr_fail(out, errbuf, errlen, "empty address");

    if (strncmp(s, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
        const char *path = s + 5;
        size_t plen = strlen(path);
        if (path[0] != '/')
            return values_addr_fail(out, errbuf, errlen,
                                    "unix socket path must be absolute (unix:/path/to.sock)");
        if (plen >= sizeof(un->sun_path))
            return values_addr_fail(out, errbuf, errlen,
                                    "unix socket path is longer than %zu bytes",
                                    sizeof(un->sun_path) - 1);
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, plen + 1);
        out->sslen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
        out->is_unix = true;
        out->text = sg_xstrdup(s);
        return SG_OK;
    }

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL)
            return values_addr_fail(out, errbuf, errlen, "missing ']' after IPv6 address");
        hlen = (size_t)(close - s - 1);
        if (close[1] != ':')
            return values_addr_fail(out, errbuf, errlen, "missing port (expected [v6]:port)");
        if (hlen == 0 || hlen >= sizeof(host))
            return values_addr_fail(out, errbuf, errlen, "bad IPv6 address");
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        port_s = close + 2;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return values_addr_fail(out, errbuf, errlen,
                                    "missing port (expected host:port or unix:/path)");
        if (strchr(s, ':') != colon)
            return values_addr_fail(out, errbuf, errlen,
                                    "IPv6 addresses need brackets, e.g. [::1]:8080");
        hlen = (size_t)(colon - s);
        if (hlen == 0)
            return values_addr_fail(out, errbuf, errlen,
                                    "missing host (use 0.0.0.0 for every IPv4 address)");
        if (hlen >= sizeof(host))
            return values_addr_fail(out, errbuf, errlen,
                                    "host must be a numeric IP address or localhost "
                                    "(no DNS lookups at load time)");
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        port_s = colon + 1;
    }

    {
        const char *p = port_s;
        if (values_digits(&p, 65535, &port) <= 0 || *p != '\0' || port == 0)
            return values_addr_fail(out, errbuf, errlen, "bad port '%s' (expected 1..65535)",
                                    port_s);
    }

    if (s[0] == '[') {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;
        if (strchr(host, '%') != NULL)
            return values_addr_fail(out, errbuf, errlen,
                                    "IPv6 zone indexes ('%%') are not supported");
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
            return values_addr_fail(out, errbuf, errlen, "bad IPv6 address '%s'", host);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        out->sslen = sizeof(*in6);
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&out->ss;
        const char *numeric = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
        if (inet_pton(AF_INET, numeric, &in4->sin_addr) != 1)
            return values_addr_fail(out, errbuf, errlen,
                                    "host must be a numeric IP address or localhost "
                                    "(no DNS lookups at load time)");
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        out->sslen = sizeof(*in4);
    }
    out->text = sg_xstrdup(s);
    return SG_OK;
}

void sg_cfg_addr_free(struct sg_cfg_addr *a)
{
    if (a == NULL)
        return;
    free(a->text);
    memset(a, 0, sizeof(*a));
}

/* Formats a reason into errbuf (if any) and returns SG_ERR. */
static int values_cidr_fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int values_cidr_fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (errbuf != NULL && errlen > 0) {
        va_start(ap, fmt);
        cfg_diag_vreason(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return SG_ERR;
}

int sg_cfg_parse_cidr(const char *s, struct sg_cfg_cidr *out, char *errbuf, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *slash = strchr(s, '/');
    size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    char host[INET6_ADDRSTRLEN];
    if (alen == 0 || alen >= sizeof(host))
        return values_cidr_fail(errbuf, errlen,
                                "expected an address range like \"169.254.0.0/16\" or "
                                "\"fe80::/10\"");
    memcpy(host, s, alen);
    host[alen] = '\0';
    unsigned max;
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return values_cidr_fail(errbuf, errlen,
                                "'%s' is not a numeric IPv4 or IPv6 address (expected a range "
                                "like \"169.254.0.0/16\" or \"fe80::/10\")",
                                host);
    }
    unsigned prefix = max;
    if (slash != NULL) {
        const char *d = slash + 1;
        size_t nd = strspn(d, "0123456789");
        if (nd == 0 || nd > 3 || d[nd] != '\0' || (unsigned)atoi(d) > max)
            return values_cidr_fail(errbuf, errlen, "bad prefix length '%s' (expected 0..%u)", d,
                                    max);
        prefix = (unsigned)atoi(d);
    }
    /* bits past the prefix: a typo (169.254.169.254/16 for 169.254.0.0/16?) */
    for (unsigned bit = prefix; bit < max; bit++) {
        if (out->addr[bit / 8] & (0x80u >> (bit % 8)))
            return values_cidr_fail(errbuf, errlen,
                                    "'%s' has bits set past its /%u prefix (write the network "
                                    "address, or /%u for the one address)",
                                    host, prefix, max);
    }
    out->prefix = (uint8_t)prefix;
    out->text = sg_xstrdup(s);
    return SG_OK;
}

void sg_cfg_cidr_free(struct sg_cfg_cidr *c)
{
    if (c == NULL)
        return;
    free(c->text);
    memset(c, 0, sizeof(*c));
}

/* Whether the first `prefix` bits of a and b are equal. */
static bool values_prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

const struct sg_cfg_cidr *sg_cfg_cidr_find(const struct sg_cfg_cidr *v, size_t n,
                                           const struct sockaddr *sa)
{
    uint8_t a4[4], a6[16];
    bool has4 = false, has6 = false;
    if (sa->sa_family == AF_INET) {
        memcpy(a4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        has4 = true;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *ad = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        memcpy(a6, ad, 16);
        has6 = true;
        if (IN6_IS_ADDR_V4MAPPED(ad)) { /* ::ffff:169.254.169.254 is 169.254.169.254 */
            memcpy(a4, a6 + 12, 4);
            has4 = true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if ((v[i].family == AF_INET && has4 && values_prefix_equal(v[i].addr, a4, v[i].prefix)) ||
            (v[i].family == AF_INET6 && has6 && values_prefix_equal(v[i].addr, a6, v[i].prefix)))
            return &v[i];
    }
    return NULL;
}

bool cfg_addr_equal(const struct sg_cfg_addr *a, const struct sg_cfg_addr *b)
{
    if (a->text == NULL || b->text == NULL || a->ss.ss_family != b->ss.ss_family)
        return false;
    switch (a->ss.ss_family) {
    case AF_INET: {
        const struct sockaddr_in *x = (const struct sockaddr_in *)&a->ss;
        const struct sockaddr_in *y = (const struct sockaddr_in *)&b->ss;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->ss;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->ss;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    case AF_UNIX:
        return strcmp(((const struct sockaddr_un *)&a->ss)->sun_path,
                      ((const struct sockaddr_un *)&b->ss)->sun_path) == 0;
    default:
        return false;
    }
}

/* One item of a status range list: "404" or "200-399", spaces allowed around
 * it. Advances *p past the item and its trailing comma. Returns NULL or why
 * the item is malformed. */
static const char *values_status_item(const char **p, int *lo, int *hi)
{
    const char *q = *p;
    uint64_t a, b;

    while (*q == ' ')
        q++;
    if (values_digits(&q, 999, &a) != 3 || a < 100 || a > 599)
        return "each item must be a status 100..599 or a range like 200-399";
    b = a;
    if (*q == '-') {
        q++;
        if (values_digits(&q, 999, &b) != 3 || b < 100 || b > 599)
            return "each item must be a status 100..599 or a range like 200-399";
        if (b < a)
            return "a range must go from low to high (200-399, not 399-200)";
    }
    while (*q == ' ')
        q++;
    if (*q == ',') {
        q++;
        if (*q == '\0')
            return "trailing ','";
    } else if (*q != '\0') {
        return "items are separated by ',' (e.g. \"200-399,404\")";
    }
    *p = q;
    *lo = (int)a;
    *hi = (int)b;
    return NULL;
}

int sg_cfg_check_status_ranges(const char *s, char *errbuf, size_t errlen)
{
    const char *p = s;
    int lo, hi;

    if (s == NULL || *s == '\0') {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "empty status list");
        return SG_ERR;
    }
    while (*p != '\0') {
        const char *why = values_status_item(&p, &lo, &hi);
        if (why != NULL) {
            if (errbuf != NULL && errlen > 0)
                snprintf(errbuf, errlen, "%s", why);
            return SG_ERR;
        }
    }
    return SG_OK;
}

int sg_cfg_parse_status_ranges(const char *s, struct sg_cfg_status_range **out, size_t *nout,
                               char *errbuf, size_t errlen)
{
    const char *p = s;
    size_t cap = 1, n = 0;
    struct sg_cfg_status_range *r;
    int lo, hi;

    *out = NULL;
    *nout = 0;
    if (sg_cfg_check_status_ranges(s, errbuf, errlen) != SG_OK)
        return SG_ERR;
    /* one item per comma, plus one */
    for (const char *c = s; *c != '\0'; c++)
        cap += *c == ',';
    r = sg_xcalloc(cap, sizeof(*r));
    while (*p != '\0' && n < cap) {
        const char *why = values_status_item(&p, &lo, &hi);
        SG_BUG_ON(why != NULL); /* checked above */
        r[n].lo = (uint16_t)lo;
        r[n].hi = (uint16_t)hi;
        n++;
    }
    *out = r;
    *nout = n;
    return SG_OK;
}

bool sg_cfg_status_in(const struct sg_cfg_status_range *r, size_t n, int status)
{
    for (size_t i = 0; i < n; i++) {
        if (status >= r[i].lo && status <= r[i].hi)
            return true;
    }
    return false;
}

bool sg_cfg_status_match(const char *ranges, int status)
{
    const char *p = ranges;
    int lo, hi;

    if (ranges == NULL)
        return false;
    while (*p != '\0') {
        if (values_status_item(&p, &lo, &hi) != NULL)
            return false;
        if (status >= lo && status <= hi)
            return true;
    }
    return false;
}

void cfg_argv_free(char **argv)
{
    if (argv == NULL)
        return;
    for (char **p = argv; *p != NULL; p++)
        free(*p);
    free(argv);
}
