/* cfg.c: loading a configuration (file or string) and freeing it.
 *
 * Loading never stops at the first problem (HAProxy's habit): every error is
 * appended to the caller's diags (cfg_diag.c), and the config is returned
 * only when there was none. The keyword tables and section loaders are in
 * cfg_keys.c, the defaults of every element in cfg_defaults.c, the capacity
 * warnings in cfg_lint.c. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg-internal.h"
#include "surgegate/common.h"

/* ---- freeing ---- */

static void cfg_pool_free(struct sg_cfg_pool *pool)
{
    free(pool->name);
    free(pool->balance);
    free(pool->hash_key);
    free(pool->health.type);
    free(pool->health.method);
    free(pool->health.path);
    free(pool->health.host);
    free(pool->health.expect_status);
    free(pool->health.expect);
    for (size_t i = 0; i < pool->nbackends; i++) {
        sg_cfg_addr_free(&pool->backends[i].address);
        free(pool->backends[i].host);
    }
    free(pool->discover.dns_srv);
    free(pool->discover.file);
    cfg_argv_free(pool->discover.command);
    free(pool->backends);
    for (size_t i = 0; i < pool->autoscale.nrules; i++)
        free(pool->autoscale.rules[i].metric);
    free(pool->autoscale.rules);
    cfg_argv_free(pool->autoscale.scale_up_hook);
    cfg_argv_free(pool->autoscale.scale_down_hook);
}

void sg_cfg_free(struct sg_cfg *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->file);
    free(cfg->log_level);
    for (size_t i = 0; i < cfg->nfrontends; i++) {
        struct sg_cfg_frontend *fe = &cfg->frontends[i];
        free(fe->name);
        sg_cfg_addr_free(&fe->listen);
        for (size_t j = 0; j < fe->nroutes; j++) {
            free(fe->routes[j].host);
            free(fe->routes[j].path_prefix);
            free(fe->routes[j].pool);
            free(fe->routes[j].priority);
        }
        free(fe->routes);
        free(fe->default_pool);
    }
    free(cfg->frontends);
    for (size_t i = 0; i < cfg->npools; i++)
        cfg_pool_free(&cfg->pools[i]);
    free(cfg->pools);
    cfg_argv_free(cfg->alerts.events);
    cfg_argv_free(cfg->alerts.hook);
    sg_cfg_addr_free(&cfg->admin.listen);
    for (size_t i = 0; i < cfg->admin.ntokens; i++) {
        free(cfg->admin.tokens[i].name);
        free(cfg->admin.tokens[i].token);
        free(cfg->admin.tokens[i].role);
    }
    free(cfg->admin.tokens);
    for (size_t i = 0; i < cfg->admin.ndeny; i++)
        sg_cfg_cidr_free(&cfg->admin.deny[i]);
    free(cfg->admin.deny);
    free(cfg->access_log.path);
    free(cfg->access_log.format);
    free(cfg->journal.path);
    cfg_argv_free(cfg->cluster.etcd);
    free(cfg->cluster.name);
    free(cfg->cluster.prefix);
    cfg_argv_free(cfg->resolvers);
    free(cfg);
}

/* ---- pre-scan ----
 *
 * libconfig 1.5 silently truncates an integer literal that does not fit in 32
 * bits unless it carries an 'L' suffix ("maxconn = 4294967297;" would load as
 * 1). The pre-scan walks the text with libconfig's lexical rules (comments,
 * strings, names, numbers) and appends the 'L' itself, so every integer keeps
 * its value and range checks see what the user wrote. It also refuses
 * @include (messages could not name the included file's lines) and reports a
 * string or comment left open at the end of the text, which libconfig 1.5
 * may accept while dropping what follows. Line numbers
 * are unchanged: nothing is inserted but 'L' and nothing removed but @include
 * lines, which are blanked. */

static bool cfg_is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '*';
}

static bool cfg_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool cfg_is_xdigit(char c)
{
    return cfg_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Copies the number token at *p into out (+ 'L' when it needs 64 bits). */
static void cfg_prescan_number(const char **pp, char *out, size_t *o, int line,
                               struct sg_cfg_diags *d)
{
    const char *p = *pp, *start = *pp;
    bool hex = false, isfloat = false;

    if (*p == '-' || *p == '+')
        p++;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && cfg_is_xdigit(p[2])) {
        hex = true;
        p += 2;
        while (cfg_is_xdigit(*p))
            p++;
    } else {
        while (cfg_is_digit(*p))
            p++;
        if (*p == '.') {
            isfloat = true;
            p++;
            while (cfg_is_digit(*p))
                p++;
        }
        if ((*p == 'e' || *p == 'E') &&
            (cfg_is_digit(p[1]) || ((p[1] == '-' || p[1] == '+') && cfg_is_digit(p[2])))) {
            isfloat = true;
            p += 2;
            while (cfg_is_digit(*p))
                p++;
        }
    }
    memcpy(out + *o, start, (size_t)(p - start));
    *o += (size_t)(p - start);
    *pp = p;
    if (isfloat || *p == 'L')
        return;

    char tok[64];
    size_t tlen = (size_t)(p - start);
    if (tlen >= sizeof(tok)) {
        sg_cfg_diag_add(d, SG_CFG_ERROR, line, "integer '%.*s' is too large", (int)tlen, start);
        return;
    }
    memcpy(tok, start, tlen);
    tok[tlen] = '\0';
    errno = 0;
    if (hex) {
        unsigned long long v = strtoull(tok, NULL, 16);
        if (errno == ERANGE || v > (unsigned long long)INT64_MAX)
            sg_cfg_diag_add(d, SG_CFG_ERROR, line, "integer '%s' is too large", tok);
        else if (v > (unsigned long long)INT32_MAX)
            out[(*o)++] = 'L';
    } else {
        long long v = strtoll(tok, NULL, 10);
        if (errno == ERANGE)
            sg_cfg_diag_add(d, SG_CFG_ERROR, line, "integer '%s' is too large", tok);
        else if (v > INT32_MAX || v < INT32_MIN)
            out[(*o)++] = 'L';
    }
}

static char *cfg_prescan(const char *text, struct sg_cfg_diags *d)
{
    size_t len = strlen(text);
    /* an 'L' is only added after a token of at least one character */
    char *out = sg_xmalloc(2 * len + 1);
    size_t o = 0;
    const char *p = text;
    int line = 1;
    bool line_start = true;

    while (*p != '\0') {
        char c = *p;
        if (c == '\n') {
            line++;
            line_start = true;
            out[o++] = *p++;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            out[o++] = *p++;
        } else if (c == '#' || (c == '/' && p[1] == '/')) {
            while (*p != '\0' && *p != '\n')
                out[o++] = *p++;
        } else if (c == '/' && p[1] == '*') {
            int start = line;
            out[o++] = *p++;
            out[o++] = *p++;
            while (*p != '\0' && !(p[0] == '*' && p[1] == '/')) {
                if (*p == '\n')
                    line++;
                out[o++] = *p++;
            }
            if (*p != '\0') {
                out[o++] = *p++;
                out[o++] = *p++;
            } else {
                /* libconfig 1.5 silently drops the rest of the file */
                sg_cfg_diag_add(d, SG_CFG_ERROR, start, "comment is not closed: missing '*/'");
            }
            line_start = false;
        } else if (c == '"') {
            int start = line;
            out[o++] = *p++;
            while (*p != '\0' && *p != '"') {
                if (*p == '\\' && p[1] != '\0')
                    out[o++] = *p++;
                if (*p == '\n')
                    line++;
                out[o++] = *p++;
            }
            if (*p == '"')
                out[o++] = *p++;
            else /* libconfig 1.5 may accept it and drop the string */
                sg_cfg_diag_add(d, SG_CFG_ERROR, start, "string is not closed: missing '\"'");
            line_start = false;
        } else if (c == '@' && line_start && strncmp(p, "@include", 8) == 0) {
            sg_cfg_diag_add(d, SG_CFG_ERROR, line,
                            "@include is not supported: keep the configuration in one file");
            while (*p != '\0' && *p != '\n') {
                out[o++] = ' ';
                p++;
            }
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '*') {
            while (cfg_is_name_char(*p))
                out[o++] = *p++;
            line_start = false;
        } else if (cfg_is_digit(c) || ((c == '-' || c == '+') && cfg_is_digit(p[1]))) {
            cfg_prescan_number(&p, out, &o, line, d);
            line_start = false;
        } else {
            out[o++] = *p++;
            line_start = false;
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- loading ---- */

static struct sg_cfg *cfg_load_text(const char *text, const char *display_name,
                                    struct sg_cfg_diags *diags)
{
    size_t first = diags->n, errors = diags->nerrors;
    struct sg_cfg *cfg = NULL;
    config_t lc;
    char *pre;

    if (diags->file == NULL)
        diags->file = sg_xstrdup(display_name);
    pre = cfg_prescan(text, diags);
    config_init(&lc);
    if (config_read_string(&lc, pre) != CONFIG_TRUE) {
        /* nothing else can be checked in a file libconfig cannot read */
        sg_cfg_diag_add(diags, SG_CFG_ERROR, config_error_line(&lc), "%s",
                        config_error_text(&lc) != NULL ? config_error_text(&lc) : "syntax error");
    } else {
        struct cfg_ctx ctx = {0};
        cfg = sg_xcalloc(1, sizeof(*cfg));
        cfg->file = sg_xstrdup(display_name);
        cfg_defaults(cfg);
        ctx.cfg = cfg;
        ctx.diags = diags;
        cfg_load_root(&ctx, config_root_setting(&lc));
    }
    config_destroy(&lc);
    free(pre);
    if (cfg != NULL && diags->nerrors > errors) {
        sg_cfg_free(cfg);
        cfg = NULL;
    }
    if (cfg != NULL)
        sg_cfg_lint(cfg, diags);
    cfg_diags_sort(diags, first);
    return cfg;
}

struct sg_cfg *sg_cfg_load_string(const char *text, const char *display_name,
                                  struct sg_cfg_diags *diags)
{
    if (display_name == NULL)
        display_name = "<string>";
    if (text == NULL) {
        if (diags->file == NULL)
            diags->file = sg_xstrdup(display_name);
        sg_cfg_diag_add(diags, SG_CFG_ERROR, 0, "no configuration text");
        return NULL;
    }
    return cfg_load_text(text, display_name, diags);
}

struct sg_cfg *sg_cfg_load_file(const char *path, struct sg_cfg_diags *diags)
{
    struct sg_cfg *cfg;
    FILE *f;
    char *buf = NULL;
    size_t len = 0, cap = 0;

    if (diags->file == NULL)
        diags->file = sg_xstrdup(path);
    f = fopen(path, "re");
    if (f == NULL) {
        sg_cfg_diag_add(diags, SG_CFG_ERROR, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 16384;
            buf = realloc(buf, cap + 1);
            if (buf == NULL) {
                fputs("surgegate: out of memory\n", stderr);
                abort();
            }
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        sg_cfg_diag_add(diags, SG_CFG_ERROR, 0, "cannot read: %s", strerror(errno));
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        sg_cfg_diag_add(diags, SG_CFG_ERROR, 0, "not a text file (it contains a NUL byte)");
        free(buf);
        return NULL;
    }
    cfg = cfg_load_text(buf, path, diags);
    free(buf);
    return cfg;
}
