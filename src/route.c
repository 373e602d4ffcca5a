/* route.c: first-match routing by Host and path prefix (a route also gives
 * the request its priority). */
#include <string.h>
#include <strings.h>

#include "surgegate/route.h"

/* Host without its port ("a.example:8080" -> "a.example"; "[::1]:80" -> "[::1]"). */
static size_t route_host_len(const char *host, size_t len)
{
    if (len > 0 && host[0] == '[') {
        const char *e = memchr(host, ']', len);
        return e ? (size_t)(e - host) + 1 : len;
    }
    const char *c = memchr(host, ':', len);
    return c ? (size_t)(c - host) : len;
}

const struct sg_cfg_route *sg_route_match(const struct sg_cfg_frontend *fe, const char *host,
                                          size_t hostlen, const char *path, size_t pathlen)
{
    size_t hl = host ? route_host_len(host, hostlen) : 0;
    for (size_t i = 0; i < fe->nroutes; i++) {
        const struct sg_cfg_route *r = &fe->routes[i];
        if (r->host != NULL) {
            size_t rl = strlen(r->host);
            if (host == NULL || rl != hl || strncasecmp(r->host, host, hl) != 0)
                continue;
        }
        if (r->path_prefix != NULL) {
            size_t pl = strlen(r->path_prefix);
            if (pathlen < pl || memcmp(path, r->path_prefix, pl) != 0)
                continue;
        }
        return r;
    }
    return NULL;
}

int sg_route_pick(const struct sg_cfg_frontend *fe, const char *host, size_t hostlen,
                  const char *path, size_t pathlen)
{
    const struct sg_cfg_route *r = sg_route_match(fe, host, hostlen, path, pathlen);
    return r != NULL ? r->pool_index : fe->default_pool_index;
}
