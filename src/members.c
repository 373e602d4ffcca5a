/* members.c: member sets of discovered backends: parsing what the sources
 * answer and comparing endpoints canonically. Pure (no I/O, no globals). */
#include <ares.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include <jansson.h>

#include "surgegate/cfg.h"
#include "surgegate/common.h"
#include "surgegate/members.h"

/* The IPv4 address of an AF_INET or IPv4-mapped AF_INET6 address, in
 * network order, with its port; false for anything else. */
static bool members_v4(const struct sockaddr *sa, uint32_t *addr, uint16_t *port)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        *addr = in->sin_addr.s_addr;
        *port = in->sin_port;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            return false;
        memcpy(addr, &in6->sin6_addr.s6_addr[12], 4);
        *port = in6->sin6_port;
        return true;
    }
    return false;
}

bool sg_sockaddr_same(const struct sockaddr *a, const struct sockaddr *b)
{
    uint32_t a4 = 0, b4 = 0;
    uint16_t ap = 0, bp = 0;
    bool av4 = members_v4(a, &a4, &ap), bv4 = members_v4(b, &b4, &bp);
    if (av4 || bv4)
        return av4 && bv4 && a4 == b4 && ap == bp;
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    if (a->sa_family == AF_UNIX)
        return strcmp(((const struct sockaddr_un *)a)->sun_path,
                      ((const struct sockaddr_un *)b)->sun_path) == 0;
    return false;
}

void sg_sockaddr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    uint32_t a4;
    uint16_t port;
    if (members_v4(sa, &a4, &port)) {
        inet_ntop(AF_INET, &a4, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
}

long sg_members_find(const struct sg_members *m, const struct sockaddr *sa)
{
    for (size_t i = 0; i < m->n; i++)
        if (sg_sockaddr_same((const struct sockaddr *)&m->v[i].ss, sa))
            return (long)i;
    return -1;
}

int sg_members_add(struct sg_members *m, const struct sockaddr *sa, uint32_t weight, size_t max)
{
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
        return SG_ERR;
    if (sg_members_find(m, sa) >= 0)
        return SG_OK;
    if (m->n >= max)
        return SG_ERR;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        struct sg_member *v = realloc(m->v, cap * sizeof(*v));
        if (v == NULL)
            return SG_ERR;
        m->v = v;
        m->cap = cap;
    }
    struct sg_member *e = &m->v[m->n++];
    memset(e, 0, sizeof(*e));
    e->sslen = sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    memcpy(&e->ss, sa, e->sslen);
    sg_sockaddr_text(sa, e->addr, sizeof(e->addr));
    e->weight = weight;
    return SG_OK;
}

void sg_members_free(struct sg_members *m)
{
    free(m->v);
    m->v = NULL;
    m->n = m->cap = 0;
}

/* Adds "addr" with its options to out; SG_ERR with why in err. */
static int members_add_text(struct sg_members *out, const char *addr, bool has_w, uint32_t w,
                            bool has_mc, uint32_t mc, size_t max, char *err, size_t errlen)
{
    struct sg_cfg_addr a;
    char why[160];
    if (sg_cfg_parse_addr(addr, &a, why, sizeof(why)) != SG_OK) {
        snprintf(err, errlen, "bad address '%.80s': %.100s", addr, why);
        return SG_ERR;
    }
    if (a.is_unix) {
        sg_cfg_addr_free(&a);
        snprintf(err, errlen, "bad address '%.80s': unix sockets are not members", addr);
        return SG_ERR;
    }
    size_t before = out->n;
    if (sg_members_add(out, (const struct sockaddr *)&a.ss, has_w ? w : 1, max) != SG_OK) {
        sg_cfg_addr_free(&a);
        snprintf(err, errlen, "more than %zu members", max);
        return SG_ERR;
    }
    sg_cfg_addr_free(&a);
    if (out->n > before) {
        out->v[before].has_weight = has_w;
        out->v[before].has_maxconn = has_mc;
        out->v[before].maxconn = has_mc ? mc : 0;
    }
    return SG_OK;
}

/* An integer member of o in 0..hi: SG_OK (*has false when absent), or
 * SG_ERR with why. */
static int members_json_uint(json_t *o, const char *key, json_int_t hi, size_t idx, bool *has,
                             uint32_t *v, char *err, size_t errlen)
{
    json_t *j = json_object_get(o, key);
    *has = false;
    if (j == NULL)
        return SG_OK;
    if (!json_is_integer(j) || json_integer_value(j) < 0 || json_integer_value(j) > hi) {
        snprintf(err, errlen, "member %zu: \"%s\" must be an integer 0..%lld", idx + 1, key,
                 (long long)hi);
        return SG_ERR;
    }
    *has = true;
    *v = (uint32_t)json_integer_value(j);
    return SG_OK;
}

int sg_members_parse_json(const char *text, size_t len, size_t max, struct sg_members *out,
                          char *err, size_t errlen)
{
    json_error_t je;
    memset(out, 0, sizeof(*out));
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (root == NULL) {
        snprintf(err, errlen, "not JSON: %s (line %d)", je.text, je.line);
        return SG_ERR;
    }
    json_t *arr = root;
    if (json_is_object(root)) {
        const char *k;
        json_t *v;
        json_object_foreach(root, k, v)
        {
            if (strcmp(k, "members") != 0) {
                snprintf(err, errlen, "unknown key \"%.40s\" (expected {\"members\":[...]})", k);
                json_decref(root);
                return SG_ERR;
            }
        }
        arr = json_object_get(root, "members");
    }
    if (!json_is_array(arr)) {
        snprintf(err, errlen, "expected an array of members or {\"members\":[...]}");
        json_decref(root);
        return SG_ERR;
    }
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *addr = NULL;
        bool hw = false, hm = false;
        uint32_t w = 1, mc = 0;
        if (json_is_string(e)) {
            addr = json_string_value(e);
        } else if (json_is_object(e)) {
            const char *k;
            json_t *v;
            json_object_foreach(e, k, v)
            {
                if (strcmp(k, "address") != 0 && strcmp(k, "weight") != 0 &&
                    strcmp(k, "maxconn") != 0) {
                    snprintf(err, errlen, "member %zu: unknown key \"%.40s\"", i + 1, k);
                    goto fail;
                }
            }
            addr = json_string_value(json_object_get(e, "address"));
            if (addr == NULL) {
                snprintf(err, errlen, "member %zu: \"address\" (a string) is missing", i + 1);
                goto fail;
            }
            if (members_json_uint(e, "weight", 256, i, &hw, &w, err, errlen) != SG_OK ||
                members_json_uint(e, "maxconn", 1000000, i, &hm, &mc, err, errlen) != SG_OK)
                goto fail;
        } else {
            snprintf(err, errlen, "member %zu: expected an object or an address string", i + 1);
            goto fail;
        }
        char why[200];
        if (members_add_text(out, addr, hw, w, hm, mc, max, why, sizeof(why)) != SG_OK) {
            snprintf(err, errlen, "member %zu: %s", i + 1, why);
            goto fail;
        }
    }
    json_decref(root);
    return SG_OK;
fail:
    json_decref(root);
    sg_members_free(out);
    return SG_ERR;
}

/* "name=N" option of a member line, N in 0..hi. */
static bool members_opt(const char *tok, size_t tlen, const char *name, uint32_t hi, uint32_t *v)
{
    size_t nl = strlen(name);
    if (tlen <= nl + 1 || strncmp(tok, name, nl) != 0 || tok[nl] != '=')
        return false;
    uint64_t x = 0;
    for (size_t i = nl + 1; i < tlen; i++) {
        if (!isdigit((unsigned char)tok[i]) || x > hi)
            return false;
        x = x * 10 + (uint64_t)(tok[i] - '0');
    }
    if (x > hi)
        return false;
    *v = (uint32_t)x;
    return true;
}

int sg_members_parse_file(const char *text, size_t len, size_t max, struct sg_members *out,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    size_t s = 0;
    while (s < len && isspace((unsigned char)text[s]))
        s++;
    if (s < len && (text[s] == '[' || text[s] == '{'))
        return sg_members_parse_json(text, len, max, out, err, errlen);
    if (memchr(text, '\0', len) != NULL) {
        snprintf(err, errlen, "the file holds a NUL byte");
        return SG_ERR;
    }
    int line = 0;
    for (size_t p = 0; p < len;) {
        const char *nl = memchr(text + p, '\n', len - p);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        line++;
        char buf[512];
        size_t n = end - p;
        if (n >= sizeof(buf)) {
            snprintf(err, errlen, "line %d: longer than %zu bytes", line, sizeof(buf) - 1);
            goto fail;
        }
        memcpy(buf, text + p, n);
        buf[n] = '\0';
        p = end + 1;
        char *hash = strchr(buf, '#');
        if (hash != NULL)
            *hash = '\0';
        const char *tok[4];
        size_t tlen[4], nt = 0;
        for (char *c = buf; *c != '\0';) {
            while (*c != '\0' && isspace((unsigned char)*c))
                c++;
            if (*c == '\0')
                break;
            char *b = c;
            while (*c != '\0' && !isspace((unsigned char)*c))
                c++;
            if (nt == 4) {
                snprintf(err, errlen, "line %d: too many fields (ADDRESS [weight=N] [maxconn=N])",
                         line);
                goto fail;
            }
            tok[nt] = b;
            tlen[nt++] = (size_t)(c - b);
        }
        if (nt == 0)
            continue;
        bool hw = false, hm = false;
        uint32_t w = 1, mc = 0;
        for (size_t i = 1; i < nt; i++) {
            if (members_opt(tok[i], tlen[i], "weight", 256, &w) && !hw) {
                hw = true;
            } else if (members_opt(tok[i], tlen[i], "maxconn", 1000000, &mc) && !hm) {
                hm = true;
            } else {
                snprintf(err, errlen,
                         "line %d: bad option '%.*s' (weight=0..256, maxconn=0..1000000)", line,
                         (int)(tlen[i] > 60 ? 60 : tlen[i]), tok[i]);
                goto fail;
            }
        }
        char addr[300];
        snprintf(addr, sizeof(addr), "%.*s", (int)tlen[0], tok[0]);
        char why[200];
        if (members_add_text(out, addr, hw, w, hm, mc, max, why, sizeof(why)) != SG_OK) {
            snprintf(err, errlen, "line %d: %s", line, why);
            goto fail;
        }
    }
    return SG_OK;
fail:
    sg_members_free(out);
    return SG_ERR;
}

int sg_srv_parse(const unsigned char *abuf, int alen, struct sg_srv **out, size_t *n, char *err,
                 size_t errlen)
{
    struct ares_srv_reply *r = NULL;
    *out = NULL;
    *n = 0;
    int st = ares_parse_srv_reply(abuf, alen, &r);
    if (st == ARES_ENODATA) /* an answer without SRV records: none */
        return SG_OK;
    if (st != ARES_SUCCESS) {
        snprintf(err, errlen, "bad SRV answer: %s", ares_strerror(st));
        return SG_ERR;
    }
    size_t k = 0;
    for (struct ares_srv_reply *p = r; p != NULL; p = p->next)
        k++;
    struct sg_srv *v = sg_xcalloc(k ? k : 1, sizeof(*v));
    size_t i = 0;
    for (struct ares_srv_reply *p = r; p != NULL; p = p->next) {
        if (p->port == 0 || p->host == NULL || p->host[0] == '\0' || strcmp(p->host, ".") == 0)
            continue; /* "." means "no service here" (RFC 2782) */
        v[i].target = sg_xstrdup(p->host);
        v[i].port = p->port;
        v[i].weight = p->weight;
        v[i].priority = p->priority;
        i++;
    }
    ares_free_data(r);
    *out = v;
    *n = i;
    return SG_OK;
}

void sg_srv_free(struct sg_srv *v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i].target);
    free(v);
}

uint32_t sg_srv_weight(uint16_t w)
{
    return w == 0 ? 1 : w > 256 ? 256 : w;
}
