/* cfg_diag.c: the list of configuration problems (cfg_diag.h) and its
 * printing. A leaf of the loader: cfg.c, cfg_keys.c and cfg_lint.c append
 * to it, and it calls none of them. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_diag-internal.h"
#include "surgegate/common.h"

void sg_cfg_diags_init(struct sg_cfg_diags *d, const char *file)
{
    memset(d, 0, sizeof(*d));
    d->file = sg_xstrdup(file != NULL ? file : "<config>");
}

void cfg_diag_vadd(struct sg_cfg_diags *d, enum sg_cfg_severity sev, int line, const char *fmt,
                   va_list ap)
{
    va_list ap2;
    int len;
    char *msg;

    va_copy(ap2, ap);
    len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    SG_BUG_ON(len < 0);
    msg = sg_xmalloc((size_t)len + 1);
    vsnprintf(msg, (size_t)len + 1, fmt, ap);

    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        struct sg_cfg_diag *items = realloc(d->items, cap * sizeof(*items));
        if (items == NULL) {
            fputs("surgegate: out of memory\n", stderr);
            abort();
        }
        d->items = items;
        d->cap = cap;
    }
    d->items[d->n].severity = sev;
    d->items[d->n].line = line > 0 ? line : 0;
    d->items[d->n].msg = msg;
    d->n++;
    if (sev == SG_CFG_ERROR)
        d->nerrors++;
    else
        d->nwarnings++;
}

void sg_cfg_diag_add(struct sg_cfg_diags *d, enum sg_cfg_severity sev, int line, const char *fmt,
                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    cfg_diag_vadd(d, sev, line, fmt, ap);
    va_end(ap);
}

void sg_cfg_diags_print(const struct sg_cfg_diags *d, FILE *out)
{
    const char *file = d->file != NULL ? d->file : "<config>";
    for (size_t i = 0; i < d->n; i++) {
        const struct sg_cfg_diag *it = &d->items[i];
        const char *sev = it->severity == SG_CFG_ERROR ? "error" : "warning";
        if (it->line > 0)
            fprintf(out, "%s:%d: %s: %s\n", file, it->line, sev, it->msg);
        else
            fprintf(out, "%s: %s: %s\n", file, sev, it->msg);
    }
}

void sg_cfg_diags_free(struct sg_cfg_diags *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->items[i].msg);
    free(d->items);
    free(d->file);
    memset(d, 0, sizeof(*d));
}

void cfg_diags_sort(struct sg_cfg_diags *d, size_t from)
{
    for (size_t i = from + 1; i < d->n; i++) {
        struct sg_cfg_diag it = d->items[i];
        int key = it.line > 0 ? it.line : INT_MAX;
        size_t j = i;
        while (j > from) {
            int prev = d->items[j - 1].line > 0 ? d->items[j - 1].line : INT_MAX;
            if (prev <= key)
                break;
            d->items[j] = d->items[j - 1];
            j--;
        }
        d->items[j] = it;
    }
}
