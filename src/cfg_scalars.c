/* cfg_scalars.c: the handlers of scalar config keys (numbers, sizes,
 * durations, strings, names, enums, addresses, paths, hash_key, argv lists,
 * alert events, autoscale rule values) and the messages they report, for the
 * section tables of cfg_keys.c (cfg_keys-internal.h). A handler checks one
 * setting's type and value, reports problems on its line and stores the
 * value; a bad value leaves the default so loading can go on. */
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg_keys-internal.h"
#include "surgegate/alert.h"
#include "surgegate/autoscale.h"
#include "surgegate/common.h"
#include "surgegate/lb.h"

/* ---- messages ---- */

void cfg_err(struct cfg_ctx *ctx, const config_setting_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cfg_diag_vadd(ctx->diags, SG_CFG_ERROR, s != NULL ? (int)config_setting_source_line(s) : 0, fmt,
                  ap);
    va_end(ap);
}

static void cfg_warn(struct cfg_ctx *ctx, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cfg_warn(struct cfg_ctx *ctx, const config_setting_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cfg_diag_vadd(ctx->diags, SG_CFG_WARNING, s != NULL ? (int)config_setting_source_line(s) : 0,
                  fmt, ap);
    va_end(ap);
}

const char *cfg_type_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a number with a fraction";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_GROUP:
        return "a group { ... }";
    case CONFIG_TYPE_LIST:
        return "a list ( ... )";
    case CONFIG_TYPE_ARRAY:
        return "an array [ ... ]";
    default:
        return "of an unknown type";
    }
}

void cfg_type_err(struct cfg_ctx *ctx, const config_setting_t *s, const char *where,
                  const char *expected)
{
    cfg_err(ctx, s, "'%s' in %s must be %s, not %s", config_setting_name(s), where, expected,
            cfg_type_name(s));
}

static void cfg_range_err(struct cfg_ctx *ctx, const config_setting_t *s, const char *where,
                          long long v, long long min, long long max)
{
    cfg_err(ctx, s, "'%s' in %s is %lld, out of range %lld..%lld", config_setting_name(s), where, v,
            min, max);
}

/* "a, b or c" */
static void cfg_join(const char *const *words, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; words[i] != NULL && o < len; i++) {
        const char *sep = i == 0 ? "" : words[i + 1] == NULL ? " or " : ", ";
        int n = snprintf(buf + o, len - o, "%s%s", sep, words[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

/* Edit distance, capped: enough to suggest 'maxconn' for 'max_conn'. */
static size_t cfg_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[65];

    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest of `names` to `word` if it is close enough to be a typo. */
const char *cfg_suggest(const char *word, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t bestd = 3, wl = strlen(word);
    for (size_t i = 0; i < n; i++) {
        if (names[i] == NULL)
            continue;
        size_t d = cfg_distance(word, names[i]);
        if (d < bestd && d < wl) {
            bestd = d;
            best = names[i];
        }
    }
    return best;
}

/* Most names a list of choices may hold (balancers, metrics, events...). */
#define CFG_CHOICES_MAX 32

/* Copies the names of a subsystem's list (at(0), at(1), ... until NULL)
 * into out[], NULL-terminated, so the helpers above can take them like a
 * table of this file. */
static const char *const *cfg_names(const char *(*at)(size_t i), const char **out)
{
    size_t n = 0;
    for (const char *name; n < CFG_CHOICES_MAX && (name = at(n)) != NULL; n++)
        out[n] = name;
    SG_BUG_ON(at(n) != NULL); /* raise CFG_CHOICES_MAX */
    out[n] = NULL;
    return out;
}

/* ---- value helpers ---- */

static bool cfg_is_int(const config_setting_t *s)
{
    return config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64;
}

/* A string without control characters (they would end up in logs, headers
 * and hook arguments); reports and returns NULL otherwise. */
const char *cfg_get_string(struct cfg_ctx *ctx, const config_setting_t *s, const char *where)
{
    const char *v;
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        cfg_type_err(ctx, s, where, "a string");
        return NULL;
    }
    v = config_setting_get_string(s);
    if (*v == '\0') {
        cfg_err(ctx, s, "'%s' in %s must not be empty", config_setting_name(s), where);
        return NULL;
    }
    for (const char *p = v; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            cfg_err(ctx, s, "'%s' in %s contains a control character", config_setting_name(s),
                    where);
            return NULL;
        }
    }
    return v;
}

void cfg_set_string(void *obj, size_t off, const char *v)
{
    char **field = CFG_FIELD(obj, off, char *);
    free(*field);
    *field = sg_xstrdup(v);
}

/* ---- handlers for scalar keys ---- */

void cfg_k_uint(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where)
{
    long long v;
    if (!cfg_is_int(s)) {
        cfg_type_err(ctx, s, where, "an integer");
        return;
    }
    v = config_setting_get_int64(s);
    if (v < k->min || v > k->max) {
        cfg_range_err(ctx, s, where, v, k->min, k->max);
        return;
    }
    *CFG_FIELD(obj, k->off, uint32_t) = (uint32_t)v;
}

/* Integer bytes, or a string with a k/m/g suffix. */
static bool cfg_get_size(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                         const char *where, uint64_t *out)
{
    uint64_t v;
    if (cfg_is_int(s)) {
        long long iv = config_setting_get_int64(s);
        if (iv < 0) {
            cfg_range_err(ctx, s, where, iv, k->min, k->max);
            return false;
        }
        v = (uint64_t)iv;
    } else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        if (sg_cfg_parse_size(config_setting_get_string(s), &v) != SG_OK) {
            cfg_err(ctx, s,
                    "bad size '%s' for '%s' in %s: expected bytes, or a number with a suffix "
                    "k, m or g (e.g. \"10m\")",
                    config_setting_get_string(s), config_setting_name(s), where);
            return false;
        }
    } else {
        cfg_type_err(ctx, s, where, "a size (bytes, or a string like \"10m\")");
        return false;
    }
    if (v < (uint64_t)k->min || v > (uint64_t)k->max) {
        cfg_err(ctx, s, "'%s' in %s is %llu bytes, out of range %lld..%lld", config_setting_name(s),
                where, (unsigned long long)v, k->min, k->max);
        return false;
    }
    *out = v;
    return true;
}

void cfg_k_size32(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where)
{
    uint64_t v;
    if (cfg_get_size(ctx, s, k, where, &v))
        *CFG_FIELD(obj, k->off, uint32_t) = (uint32_t)v;
}

void cfg_k_size64(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where)
{
    uint64_t v;
    if (cfg_get_size(ctx, s, k, where, &v))
        *CFG_FIELD(obj, k->off, uint64_t) = v;
}

void cfg_k_duration(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                    void *obj, const char *where)
{
    const char *why;
    uint32_t ms = 0;

    if (cfg_is_int(s)) {
        long long v = config_setting_get_int64(s);
        cfg_err(ctx, s, "'%s' in %s: duration needs a unit, e.g. \"%llds\" or \"%lldms\"",
                config_setting_name(s), where, v, v);
        return;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        cfg_type_err(ctx, s, where, "a duration string like \"5s\"");
        return;
    }
    why = cfg_duration_reason(config_setting_get_string(s), &ms);
    if (why != NULL) {
        cfg_err(ctx, s, "bad duration '%s' for '%s' in %s: %s", config_setting_get_string(s),
                config_setting_name(s), where, why);
        return;
    }
    if (ms < k->min || ms > k->max) {
        char lo[32], hi[32];
        cfg_format_duration((uint32_t)k->min, lo, sizeof(lo));
        cfg_format_duration((uint32_t)k->max, hi, sizeof(hi));
        cfg_err(ctx, s, "'%s' in %s is %s, out of range %s..%s", config_setting_name(s), where,
                config_setting_get_string(s), lo, hi);
        return;
    }
    *CFG_FIELD(obj, k->off, uint32_t) = ms;
}

void cfg_k_bool(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        cfg_type_err(ctx, s, where, "true or false");
        return;
    }
    *CFG_FIELD(obj, k->off, bool) = config_setting_get_bool(s) != 0;
}

void cfg_k_string(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where)
{
    const char *v = cfg_get_string(ctx, s, where);
    if (v != NULL)
        cfg_set_string(obj, k->off, v);
}

/* Frontend, pool and token names: they appear in URLs, metric labels and
 * hook environments, so keep them to a safe alphabet. */
void cfg_k_name(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where)
{
    const char *v = cfg_get_string(ctx, s, where);
    if (v == NULL)
        return;
    if (strlen(v) > 64 || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789_.-") != strlen(v)) {
        cfg_err(ctx, s, "bad name '%s' in %s: use at most 64 letters, digits, '_', '-' or '.'", v,
                where);
        return;
    }
    cfg_set_string(obj, k->off, v);
}

void cfg_k_enum(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where)
{
    const char *v = cfg_get_string(ctx, s, where);
    const char *buf[CFG_CHOICES_MAX + 1];
    const char *const *choices = k->choice_at != NULL ? cfg_names(k->choice_at, buf) : k->choices;
    char list[256];

    if (v == NULL)
        return;
    for (size_t i = 0; choices[i] != NULL; i++) {
        if (strcmp(v, choices[i]) == 0) {
            cfg_set_string(obj, k->off, v);
            return;
        }
    }
    cfg_join(choices, list, sizeof(list));
    cfg_err(ctx, s, "bad value '%s' for '%s' in %s: expected %s", v, config_setting_name(s), where,
            list);
}

void cfg_k_addr(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where)
{
    const char *v = cfg_get_string(ctx, s, where);
    struct sg_cfg_addr addr;
    char why[160];

    if (v == NULL)
        return;
    if (sg_cfg_parse_addr(v, &addr, why, sizeof(why)) != SG_OK) {
        cfg_err(ctx, s, "bad address '%s': %s", v, why);
        return;
    }
    sg_cfg_addr_free(CFG_FIELD(obj, k->off, struct sg_cfg_addr));
    *CFG_FIELD(obj, k->off, struct sg_cfg_addr) = addr;
}

void cfg_k_admin_listen(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                        void *obj, const char *where)
{
    ctx->admin_listen = s;
    cfg_k_addr(ctx, s, k, obj, where);
}

/* "deny_backends" of admin: a list of address ranges; [] (none) is allowed
 * and turns the check off. Every bad element is reported; the default stays
 * when any is bad. */
void cfg_k_cidrs(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                 const char *where)
{
    struct sg_cfg_admin *admin = obj;
    if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
        cfg_type_err(ctx, s, where, "an array of address ranges [ \"169.254.0.0/16\", ... ]");
        return;
    }
    int n = config_setting_length(s);
    struct sg_cfg_cidr *v = sg_xcalloc(n > 0 ? (size_t)n : 1, sizeof(*v));
    bool ok = true;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        char why[200];
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            cfg_err(ctx, e, "element %d of '%s' in %s must be a string, not %s", i + 1,
                    config_setting_name(s), where, cfg_type_name(e));
            ok = false;
        } else if (sg_cfg_parse_cidr(config_setting_get_string(e), &v[i], why, sizeof(why)) !=
                   SG_OK) {
            cfg_err(ctx, e, "bad address range '%s' in '%s' of %s: %s",
                    config_setting_get_string(e), config_setting_name(s), where, why);
            ok = false;
        }
    }
    if (!ok) {
        for (int i = 0; i < n; i++)
            sg_cfg_cidr_free(&v[i]);
        free(v);
        return;
    }
    for (size_t i = 0; i < admin->ndeny; i++)
        sg_cfg_cidr_free(&admin->deny[i]);
    free(admin->deny);
    admin->deny = v;
    admin->ndeny = (size_t)n;
    SG_UNUSED(k);
}

/* "path" of access_log and journal: an absolute file path, or "off" (stored
 * as NULL: no access log, a journal in memory only). The file is opened at
 * startup, not here; a missing directory is only a warning because it may be
 * created before the start (systemd's LogsDirectory=, a package script). */
void cfg_k_logpath(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                   void *obj, const char *where)
{
    const char *v = cfg_get_string(ctx, s, where);
    char **field = CFG_FIELD(obj, k->off, char *);
    const char *slash;
    char *dir;
    struct stat st;

    if (v == NULL)
        return;
    if (strcmp(v, "off") == 0) {
        free(*field);
        *field = NULL;
        return;
    }
    if (v[0] != '/') {
        cfg_err(ctx, s, "'%s' in %s must be an absolute path (or \"off\"), got '%s'",
                config_setting_name(s), where, v);
        return;
    }
    slash = strrchr(v, '/');
    if (slash[1] == '\0') {
        cfg_err(ctx, s, "'%s' in %s must name a file, not a directory: '%s' ends with '/'",
                config_setting_name(s), where, v);
        return;
    }
    dir = sg_xstrdup(v);
    dir[slash == v ? 1 : slash - v] = '\0';
    if (stat(dir, &st) != 0)
        cfg_warn(ctx, s,
                 "directory '%s' of '%s' in %s does not exist: create it before surgegate "
                 "starts",
                 dir, config_setting_name(s), where);
    else if (!S_ISDIR(st.st_mode))
        cfg_warn(ctx, s, "'%s' (the directory of '%s' in %s) is not a directory", dir,
                 config_setting_name(s), where);
    free(dir);
    cfg_set_string(obj, k->off, v);
}

/* A path sent in a request line: "/..." of visible characters. */
void cfg_k_urlpath(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                   void *obj, const char *where)
{
    const char *v = cfg_get_string(ctx, s, where);
    if (v == NULL)
        return;
    if (v[0] != '/') {
        cfg_err(ctx, s, "'%s' in %s must start with '/', got '%s'", config_setting_name(s), where,
                v);
        return;
    }
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == ' ' || (unsigned char)*p > 0x7e) {
            cfg_err(ctx, s,
                    "'%s' in %s must not contain spaces or non-ASCII characters "
                    "(percent-encode them)",
                    config_setting_name(s), where);
            return;
        }
    }
    cfg_set_string(obj, k->off, v);
}

/* A host name as matched against or sent in a Host header. */
void cfg_k_host(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where)
{
    const char *v = cfg_get_string(ctx, s, where);
    if (v == NULL)
        return;
    if (strpbrk(v, " /\\\"") != NULL || strlen(v) > 255) {
        cfg_err(ctx, s,
                "bad host '%s' for '%s' in %s: expected a host name like "
                "\"api.example.com\"",
                v, config_setting_name(s), where);
        return;
    }
    cfg_set_string(obj, k->off, v);
}

void cfg_k_method(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where)
{
    const char *v = cfg_get_string(ctx, s, where);
    if (v == NULL)
        return;
    if (strlen(v) > 32 || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(v)) {
        cfg_err(ctx, s,
                "bad HTTP method '%s' in %s: expected an upper-case method like GET "
                "or HEAD",
                v, where);
        return;
    }
    cfg_set_string(obj, k->off, v);
}

void cfg_k_status(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where)
{
    const char *v = cfg_get_string(ctx, s, where);
    char why[128];
    if (v == NULL)
        return;
    if (sg_cfg_check_status_ranges(v, why, sizeof(why)) != SG_OK) {
        cfg_err(ctx, s, "bad status list '%s' for '%s' in %s: %s", v, config_setting_name(s), where,
                why);
        return;
    }
    cfg_set_string(obj, k->off, v);
}

/* The characters of an HTTP token (RFC 9110 5.6.2): header field names, and
 * cookie names (RFC 6265 4.1.1 cookie-name = token). */
static bool cfg_is_token(const char *v)
{
    return *v != '\0' && strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789!#$%&'*+-.^_`|~") == strlen(v);
}

/* "hash_key" of a pool: what the hash balancer hashes. "source" (the client
 * address), "uri" (path and query), "header:NAME" or "cookie:NAME". The value
 * is stored as written (for messages) and parsed here, once: hash_src and
 * hash_name_len are what the request path uses. */
void cfg_k_hash_key(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                    void *obj, const char *where)
{
    static const char forms[] = "expected \"source\", \"uri\", \"header:NAME\" or \"cookie:NAME\"";
    const char *v = cfg_get_string(ctx, s, where);
    const char *name = NULL, *what = NULL;
    struct sg_cfg_pool *pool = obj;
    enum sg_hash_src src = SG_HASH_SOURCE;

    if (v == NULL)
        return;
    if (strcmp(v, "source") == 0 || strcmp(v, "uri") == 0) {
        cfg_set_string(obj, k->off, v);
        pool->hash_src = v[0] == 's' ? SG_HASH_SOURCE : SG_HASH_URI;
        pool->hash_name_len = 0;
        return;
    }
    if (strncmp(v, "header:", SG_HASH_NAME_OFF) == 0) {
        name = v + SG_HASH_NAME_OFF;
        what = "header";
        src = SG_HASH_HEADER;
    } else if (strncmp(v, "cookie:", SG_HASH_NAME_OFF) == 0) {
        name = v + SG_HASH_NAME_OFF;
        what = "cookie";
        src = SG_HASH_COOKIE;
    }
    if (name == NULL) {
        cfg_err(ctx, s, "bad value '%s' for '%s' in %s: %s", v, config_setting_name(s), where,
                forms);
        return;
    }
    if (*name == '\0') {
        cfg_err(ctx, s, "bad value '%s' for '%s' in %s: the %s name is empty; %s", v,
                config_setting_name(s), where, what, forms);
        return;
    }
    if (strlen(name) > 256 || !cfg_is_token(name)) {
        cfg_err(ctx, s,
                "bad value '%s' for '%s' in %s: '%s' is not a valid %s name (letters, digits "
                "and !#$%%&'*+-.^_`|~, at most 256); %s",
                v, config_setting_name(s), where, name, what, forms);
        return;
    }
    cfg_set_string(obj, k->off, v);
    pool->hash_src = src;
    pool->hash_name_len = (uint32_t)strlen(name);
}

/* A number, integer or with a fraction; false after reporting. */
static bool cfg_get_number(struct cfg_ctx *ctx, const config_setting_t *s, const char *where,
                           double *out)
{
    double v;
    if (cfg_is_int(s)) {
        v = (double)config_setting_get_int64(s);
    } else if (config_setting_type(s) == CONFIG_TYPE_FLOAT) {
        v = config_setting_get_float(s);
    } else {
        cfg_type_err(ctx, s, where, "a number");
        return false;
    }
    if (!isfinite(v)) {
        cfg_err(ctx, s, "'%s' in %s must be a finite number", config_setting_name(s), where);
        return false;
    }
    *out = v;
    return true;
}

/* A double field in k->min..k->max (integer bounds). */
void cfg_k_double(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where)
{
    double v;
    if (!cfg_get_number(ctx, s, where, &v))
        return;
    if (v < (double)k->min || v > (double)k->max) {
        cfg_err(ctx, s, "'%s' in %s is %g, out of range %lld..%lld", config_setting_name(s), where,
                v, k->min, k->max);
        return;
    }
    *CFG_FIELD(obj, k->off, double) = v;
}

/* "hash_balance_factor": consistent hashing with bounded loads, no backend
 * gets more than c times the mean load. Below 1 no assignment could satisfy
 * the bound, so the choices are 0 (no bound) or 1..100. */
void cfg_k_balance_factor(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                          void *obj, const char *where)
{
    double v;
    if (!cfg_get_number(ctx, s, where, &v))
        return;
    if (v != 0.0 && (v < 1.0 || v > 100.0)) {
        cfg_err(ctx, s, "'%s' in %s is %g: expected 0 (unbounded) or a factor from 1.0 to 100.0",
                config_setting_name(s), where, v);
        return;
    }
    *CFG_FIELD(obj, k->off, double) = v;
}

/* Strings of an array or list; NULL after reporting a problem. The result is
 * NULL-terminated and owned by the caller. */
char **cfg_get_strings(struct cfg_ctx *ctx, const config_setting_t *s, const char *where,
                       const char *what)
{
    int n;
    bool ok = true;
    char **v;

    if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
        cfg_type_err(ctx, s, where, what);
        return NULL;
    }
    n = config_setting_length(s);
    if (n == 0) {
        cfg_err(ctx, s, "'%s' in %s is empty", config_setting_name(s), where);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            cfg_err(ctx, e, "element %d of '%s' in %s must be a string, not %s", i + 1,
                    config_setting_name(s), where, cfg_type_name(e));
            ok = false;
        } else if (strchr(config_setting_get_string(e), '\n') != NULL) {
            cfg_err(ctx, e, "element %d of '%s' in %s contains a newline", i + 1,
                    config_setting_name(s), where);
            ok = false;
        }
    }
    if (!ok)
        return NULL;
    v = sg_xcalloc((size_t)n + 1, sizeof(*v));
    for (int i = 0; i < n; i++)
        v[i] = sg_xstrdup(config_setting_get_string_elem(s, i));
    return v;
}

/* A hook: argv of a program run without a shell, so the program is an absolute path. */
void cfg_k_argv(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k, void *obj,
                const char *where)
{
    char **v = cfg_get_strings(ctx, s, where,
                               "an array of strings [ \"/absolute/program\", \"arg\", ... ]");
    if (v == NULL)
        return;
    if (v[0][0] != '/') {
        cfg_err(ctx, s,
                "'%s' in %s must start with the program's absolute path (hooks run without a "
                "shell or $PATH), got '%s'",
                config_setting_name(s), where, v[0]);
        cfg_argv_free(v);
        return;
    }
    cfg_argv_free(*CFG_FIELD(obj, k->off, char **));
    *CFG_FIELD(obj, k->off, char **) = v;
}

void cfg_k_events(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                  void *obj, const char *where)
{
    char **v = cfg_get_strings(ctx, s, where, "an array of event names [ \"backend_down\", ... ]");
    const char *buf[CFG_CHOICES_MAX + 1];
    const char *const *names = cfg_names(sg_alert_event_name, buf);
    bool ok = true;
    char list[256];

    if (v == NULL)
        return;
    for (size_t i = 0; v[i] != NULL; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (sg_alert_event_parse(v[i]) < 0) {
            const char *hint = cfg_suggest(v[i], names, SG_ALERT_NEVENTS);
            cfg_join(names, list, sizeof(list));
            if (hint != NULL)
                cfg_err(ctx, e, "unknown event '%s' in %s (did you mean '%s'?)", v[i], where, hint);
            else
                cfg_err(ctx, e, "unknown event '%s' in %s: expected %s", v[i], where, list);
            ok = false;
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(v[i], v[j]) == 0) {
                cfg_err(ctx, e, "event '%s' is listed twice in %s", v[i], where);
                ok = false;
                break;
            }
        }
    }
    if (!ok) {
        cfg_argv_free(v);
        return;
    }
    cfg_argv_free(*CFG_FIELD(obj, k->off, char **));
    *CFG_FIELD(obj, k->off, char **) = v;
}

/* above / below / target of an autoscale rule: int or float, >= 0. */
void cfg_k_rule_value(struct cfg_ctx *ctx, const config_setting_t *s, const struct cfg_key *k,
                      void *obj, const char *where)
{
    struct sg_cfg_rule *rule = obj;
    double v;

    if (cfg_is_int(s))
        v = (double)config_setting_get_int64(s);
    else if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
        v = config_setting_get_float(s);
    else {
        cfg_type_err(ctx, s, where, "a number");
        return;
    }
    if (!isfinite(v) || v < 0) {
        cfg_err(ctx, s, "'%s' in %s is %g, it must be a number >= 0", k->name, where, v);
        return;
    }
    rule->value = v;
    rule->kind = (enum sg_cfg_rule_kind)k->min;
}
