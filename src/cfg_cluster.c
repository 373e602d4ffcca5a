/* cfg_cluster.c: the handlers of the cluster group's keys that need more
 * than a scalar check: the etcd endpoints (http://host:port) and the key
 * prefix. cfg_keys.c -> here -> cfg_scalars.c. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_keys-internal.h"
#include "surgegate/common.h"

/* Whether u is "http://HOST:PORT" with an optional trailing '/': HOST a
 * name, IPv4 address or [IPv6] address, PORT 1..65535. why says what is
 * wrong otherwise. */
static bool cfg_etcd_url_ok(const char *u, const char **why)
{
    static const char scheme[] = "http://";
    if (strncmp(u, scheme, sizeof(scheme) - 1) != 0) {
        *why = strncmp(u, "https://", 8) == 0 ? "https is not supported (etcd's JSON gateway on a "
                                                "loopback or private address over http)"
                                              : "it must start with http://";
        return false;
    }
    const char *h = u + sizeof(scheme) - 1, *colon;
    if (*h == '[') {
        const char *end = strchr(h, ']');
        if (end == NULL || end == h + 1) {
            *why = "an IPv6 address needs [ ]";
            return false;
        }
        colon = end + 1;
        if (*colon != ':') {
            *why = "it needs a port: http://host:port";
            return false;
        }
    } else {
        size_t n = strcspn(h, ":/");
        if (n == 0) {
            *why = "it has no host";
            return false;
        }
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)h[i]) && h[i] != '.' && h[i] != '-' && h[i] != '_') {
                *why = "the host has a character a host name cannot have";
                return false;
            }
        colon = h + n;
        if (*colon != ':') {
            *why = "it needs a port: http://host:port";
            return false;
        }
    }
    const char *p = colon + 1;
    char *end;
    if (!isdigit((unsigned char)*p)) {
        *why = "the port is not a number";
        return false;
    }
    long port = strtol(p, &end, 10);
    if (port < 1 || port > 65535) {
        *why = "the port is not in 1..65535";
        return false;
    }
    if (*end != '\0' && strcmp(end, "/") != 0) {
        *why = "it must be http://host:port with no path (the /v3/ API paths are added)";
        return false;
    }
    return true;
}

void cfg_k_etcd(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where)
{
    char **v = cfg_get_strings(ctx, s, where,
                               "an array of etcd endpoints [ \"http://127.0.0.1:2379\", ... ]");
    bool ok = true;
    if (v == NULL)
        return;
    for (size_t i = 0; v[i] != NULL; i++) {
        const char *why = NULL;
        if (i >= 16) {
            cfg_err(ctx, s, "'etcd' in %s: at most 16 endpoints", where);
            ok = false;
            break;
        }
        if (!cfg_etcd_url_ok(v[i], &why)) {
            cfg_err(ctx, config_setting_get_elem(s, (unsigned)i),
                    "bad etcd endpoint '%s' in %s: %s", v[i], where, why);
            ok = false;
        }
    }
    if (!ok) {
        cfg_argv_free(v);
        return;
    }
    cfg_argv_free(*CFG_FIELD(obj, k->off, char **));
    *CFG_FIELD(obj, k->off, char **) = v;
}

/* A key prefix: starts with '/', printable ASCII without spaces, at most
 * 128 bytes; a missing trailing '/' is added so that "members/" and
 * "leader" stay under it. */
void cfg_k_prefix(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where)
{
    const char *v = cfg_get_string(ctx, s, where);
    if (v == NULL)
        return;
    size_t n = strlen(v);
    bool ok = n > 0 && n <= 128 && v[0] == '/';
    for (size_t i = 0; ok && i < n; i++)
        ok = v[i] > ' ' && v[i] < 0x7f;
    if (!ok) {
        cfg_err(ctx, s,
                "bad prefix '%s' in %s: it must start with '/' and have at most 128 printable "
                "characters, no spaces",
                v, where);
        return;
    }
    char *p = sg_xmalloc(n + 2);
    memcpy(p, v, n + 1);
    if (p[n - 1] != '/') {
        p[n] = '/';
        p[n + 1] = '\0';
    }
    char **f = CFG_FIELD(obj, k->off, char *);
    free(*f);
    *f = p;
}
