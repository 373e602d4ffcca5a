/* cfg_discover.c: the config keys of run-time membership (discover.c):
 * backends named by a host name ("app.internal:8080"), the top-level
 * "resolvers" and "resolve_interval", and a pool's "discover" group
 * (dns_srv | file | command). Only the syntax and what can be checked on
 * this host are checked here: a name that does not resolve yet is not an
 * error (the pool starts empty and fills when it resolves). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg_keys-internal.h"
#include "surgegate/common.h"

#define MS_DAY (24LL * 3600 * 1000)

/* A DNS name: labels of 1..63 letters, digits, '-' and '_' (SRV names
 * start with "_service._proto"), 253 bytes at most, one trailing dot
 * allowed. Returns NULL or why not. */
static const char *discover_name_reason(const char *n)
{
    size_t len = strlen(n), label = 0;
    if (len == 0)
        return "empty name";
    if (len > 253 && !(len == 254 && n[253] == '.'))
        return "longer than 253 bytes";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)n[i];
        if (c == '.') {
            if (label == 0 && !(i == len - 1 && i > 0))
                return "empty label (two dots, or a leading dot)";
            label = 0;
            continue;
        }
        if (!isalnum(c) && c != '-' && c != '_')
            return "only letters, digits, '-', '_' and '.' may appear in a host name";
        if (++label > 63)
            return "a label is longer than 63 bytes";
    }
    return NULL;
}

void cfg_k_backend_addr(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                        void *obj, const char *where)
{
    struct sg_cfg_backend *be = obj;
    const char *v = cfg_get_string(ctx, s, where);
    struct sg_cfg_addr addr;
    char why[160];

    if (v == NULL)
        return;
    if (sg_cfg_parse_addr(v, &addr, why, sizeof(why)) == SG_OK) {
        sg_cfg_addr_free(&be->address);
        be->address = addr;
        return;
    }
    /* Not numeric: "name:port" with a DNS name that is not an address. */
    const char *colon = strrchr(v, ':');
    char host[256];
    if (colon == NULL || v[0] == '[' || strncmp(v, "unix:", 5) == 0 || strchr(v, ':') != colon ||
        (size_t)(colon - v) >= sizeof(host) || colon == v) {
        cfg_err(ctx, s, "bad address '%s': %s", v, why);
        return;
    }
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = '\0';
    if (strspn(host, "0123456789.") == strlen(host)) { /* a bad IPv4 address */
        cfg_err(ctx, s, "bad address '%s': %s", v, why);
        return;
    }
    const char *nreason = discover_name_reason(host);
    char *end = NULL;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (nreason != NULL) {
        cfg_err(ctx, s,
                "bad address '%s': bad host name '%.80s': %s (a backend address is ip:port, "
                "[v6]:port, unix:/path or name:port)",
                v, host, nreason);
        return;
    }
    if (!isdigit((unsigned char)colon[1]) || *end != '\0' || port < 1 || port > 65535) {
        cfg_err(ctx, s, "bad address '%s': bad port '%s' (expected 1..65535)", v, colon + 1);
        return;
    }
    sg_cfg_addr_free(&be->address);
    memset(&be->address, 0, sizeof(be->address));
    be->address.text = sg_xstrdup(v);
    be->address.ss.ss_family = AF_UNSPEC;
    free(be->host);
    be->host = sg_xstrdup(host);
    be->port = (uint16_t)port;
}

void cfg_k_resolvers(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                     void *obj, const char *where)
{
    char **v = cfg_get_strings(ctx, s, where,
                               "an array of name server addresses [ \"127.0.0.1:53\", ... ]");
    bool ok = true;
    if (v == NULL)
        return;
    for (size_t i = 0; v[i] != NULL; i++) {
        char buf[300], why[160];
        struct sg_cfg_addr a;
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        /* a bare address means port 53 */
        struct in_addr a4;
        struct in6_addr a6;
        if (inet_pton(AF_INET, v[i], &a4) == 1)
            snprintf(buf, sizeof(buf), "%s:53", v[i]);
        else if (inet_pton(AF_INET6, v[i], &a6) == 1)
            snprintf(buf, sizeof(buf), "[%s]:53", v[i]);
        else
            snprintf(buf, sizeof(buf), "%s", v[i]);
        bool numeric = strncmp(buf, "unix:", 5) != 0 && strncmp(buf, "localhost", 9) != 0 &&
                       sg_cfg_parse_addr(buf, &a, why, sizeof(why)) == SG_OK;
        if (!numeric) {
            snprintf(why, sizeof(why),
                     "expected a numeric IP address, with or without a port (\"10.0.0.2\", "
                     "\"127.0.0.1:5353\", \"[::1]:53\")");
            cfg_err(ctx, e, "bad name server '%s' in 'resolvers' of %s: %s", v[i], where, why);
            ok = false;
            continue;
        }
        sg_cfg_addr_free(&a);
        free(v[i]);
        v[i] = sg_xstrdup(buf); /* always with its port, as c-ares takes it */
    }
    if (!ok) {
        cfg_argv_free(v);
        return;
    }
    struct sg_cfg *cfg = obj;
    cfg_argv_free(cfg->resolvers);
    cfg->resolvers = v;
}

/* "dns_srv" of discover. */
static void cfg_k_dns_name(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                           void *obj, const char *where)
{
    const char *v = cfg_get_string(ctx, s, where);
    const char *why;
    if (v == NULL)
        return;
    if ((why = discover_name_reason(v)) != NULL) {
        cfg_err(ctx, s, "bad DNS name '%s' in %s: %s", v, where, why);
        return;
    }
    cfg_set_string(obj, k->off, v);
}

/* "file" of discover: an absolute path. It need not exist yet. */
static void cfg_k_member_file(struct cfg_ctx *ctx, const config_setting_t *s,
                              const struct cfg_key *k, void *obj, const char *where)
{
    const char *v = cfg_get_string(ctx, s, where);
    if (v == NULL)
        return;
    if (v[0] != '/') {
        cfg_err(ctx, s, "'file' in %s must be an absolute path, got '%s'", where, v);
        return;
    }
    cfg_set_string(obj, k->off, v);
}

#define T struct sg_cfg_discover
static const struct cfg_key cfg_discover_keys[] = {
    {.name = "dns_srv", .fn = cfg_k_dns_name, .off = CFG_OFF(T, dns_srv)},
    {.name = "file", .fn = cfg_k_member_file, .off = CFG_OFF(T, file)},
    {.name = "command", .fn = cfg_k_argv, .off = CFG_OFF(T, command)},
    {.name = "interval",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, interval_ms),
     .min = 100,
     .max = MS_DAY},
    {.name = "timeout",
     .fn = cfg_k_duration,
     .off = CFG_OFF(T, timeout_ms),
     .min = 100,
     .max = 3600 * 1000},
    {.name = "weight", .fn = cfg_k_uint, .off = CFG_OFF(T, weight), .min = 0, .max = 256},
    {.name = "maxconn",
     .fn = cfg_k_uint,
     .off = CFG_OFF(T, maxconn),
     .min = 0,
     .max = 1000000,
     .set_off = CFG_OFF(T, set_maxconn)},
    {.name = "max_members",
     .fn = cfg_k_uint,
     .off = CFG_OFF(T, max_members),
     .min = 1,
     .max = 10000},
    {0}};
const struct cfg_section cfg_sec_discover = {"discover", "discover", cfg_discover_keys,
                                             CFG_OFF(T, line), CFG_OFF(T, enabled)};
#undef T

bool cfg_backend_same_name(const struct sg_cfg_backend *a, const struct sg_cfg_backend *b)
{
    if (a->host == NULL || b->host == NULL || a->port != b->port)
        return false;
    size_t la = strlen(a->host), lb = strlen(b->host);
    if (la > 0 && a->host[la - 1] == '.')
        la--;
    if (lb > 0 && b->host[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a->host, b->host, la) == 0;
}

void cfg_discover_check(struct cfg_ctx *ctx, const config_setting_t *e, struct sg_cfg_pool *pool,
                        const char *where)
{
    struct sg_cfg_discover *d = &pool->discover;
    const config_setting_t *g = config_setting_get_member(e, "discover");
    if (!d->set_maxconn) /* members are like the pool's own backends */
        for (size_t i = 0; i < pool->nbackends && !d->set_maxconn; i++)
            if (!pool->backends[i].backup) {
                d->maxconn = pool->backends[i].maxconn;
                break;
            }
    if (g == NULL || !d->enabled)
        return;
    int nsrc = (d->dns_srv != NULL) + (d->file != NULL) + (d->command != NULL);
    int written = (config_setting_get_member(g, "dns_srv") != NULL) +
                  (config_setting_get_member(g, "file") != NULL) +
                  (config_setting_get_member(g, "command") != NULL);
    if (written != 1) {
        cfg_err(ctx, g,
                "discover of %s needs exactly one source: dns_srv, file or command (it has %d)",
                where, written);
        return;
    }
    if (nsrc != 1)
        return; /* the bad value is already reported */
    if (d->command != NULL) {
        const config_setting_t *c = config_setting_get_member(g, "command");
        struct stat st;
        if (stat(d->command[0], &st) != 0)
            cfg_err(ctx, c, "'command' of discover of %s: %s: %s", where, d->command[0],
                    strerror(errno));
        else if (!S_ISREG(st.st_mode))
            cfg_err(ctx, c, "'command' of discover of %s: %s is not a regular file", where,
                    d->command[0]);
        else if (access(d->command[0], X_OK) != 0)
            cfg_err(ctx, c, "'command' of discover of %s: %s is not executable", where,
                    d->command[0]);
    }
    if (d->file != NULL) {
        const config_setting_t *f = config_setting_get_member(g, "file");
        struct stat st;
        if (stat(d->file, &st) == 0 && !S_ISREG(st.st_mode))
            cfg_err(ctx, f, "'file' of discover of %s: %s is not a regular file", where, d->file);
        else if (stat(d->file, &st) != 0)
            sg_cfg_diag_add(ctx->diags, SG_CFG_WARNING, (int)config_setting_source_line(f),
                            "'file' of discover of %s: %s: %s (the pool starts without these "
                            "members until it appears)",
                            where, d->file, strerror(errno));
    }
}
