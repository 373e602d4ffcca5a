/* cfg_diag.c: the list of configuration problems (cfg_diag.h) and its
 * printing. A leaf of the loader: cfg.c, cfg_keys.c and cfg_lint.c append
 * to it, and it calls none of them. */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cfg_diag-internal.h"
#include "surgegate/common.h"

void sg_cfg_diags_init(struct sg_cfg_diags *d, const char *file)
{
    memset(d, 0, sizeof(*d));
    d->file = sg_xstrdup(file != NULL ? file : "<config>");
}

/* A string argument longer than CFG_DIAG_ARG_MAX bytes is printed as its
 * first CFG_DIAG_ARG_KEEP bytes, "..." and its length. Internal strings (a
 * section's description, the list of expected values) stay well under the
 * limit; a user value (a 5 MB string in the file) does not flood the
 * message. */
#define CFG_DIAG_ARG_MAX  256
#define CFG_DIAG_ARG_KEEP 64

/* Prints one conversion `spec` with the '*' width/precision values in star[]. */
#define DIAG_PUT(f, spec, nstar, star, v)              \
    do {                                               \
        if ((nstar) == 0)                              \
            fprintf(f, spec, v);                       \
        else if ((nstar) == 1)                         \
            fprintf(f, spec, (star)[0], v);            \
        else                                           \
            fprintf(f, spec, (star)[0], (star)[1], v); \
    } while (0)

enum diag_len { DL_NONE, DL_HH, DL_H, DL_L, DL_LL, DL_Z, DL_J, DL_T, DL_BIG_L };

static enum diag_len diag_parse_len(const char **pp)
{
    const char *p = *pp;
    enum diag_len l = DL_NONE;
    switch (*p) {
    case 'h':
        l = p[1] == 'h' ? DL_HH : DL_H;
        break;
    case 'l':
        l = p[1] == 'l' ? DL_LL : DL_L;
        break;
    case 'z':
        l = DL_Z;
        break;
    case 'j':
        l = DL_J;
        break;
    case 't':
        l = DL_T;
        break;
    case 'L':
        l = DL_BIG_L;
        break;
    default:
        return DL_NONE;
    }
    *pp = p + (l == DL_HH || l == DL_LL ? 2 : 1);
    return l;
}

/* Where to cut s (at most max bytes) so that no UTF-8 sequence is split. */
static size_t diag_cut(const char *s, size_t max)
{
    size_t k = max;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    return k;
}

/* vfprintf(f, fmt, ap) for the conversions a diag uses (flags, width and
 * precision with '*', the C99 length modifiers; not %n), with every string
 * argument over CFG_DIAG_ARG_MAX cut (above). Each conversion is printed on
 * its own with the argument fetched by its type, so an argument can be
 * replaced without a va_list of our own making. */
static void diag_vprint(FILE *f, const char *fmt, va_list ap)
{
    const char *p = fmt;
    while (*p != '\0') {
        if (*p != '%' || p[1] == '%') {
            const char *q = strchr(p + (*p == '%' ? 2 : 0), '%');
            size_t n = q != NULL ? (size_t)(q - p) : strlen(p);
            if (*p == '%') { /* "%%" */
                fputc('%', f);
                p += 2;
                n -= 2;
            }
            fwrite(p, 1, n, f);
            p += n;
            continue;
        }
        const char *start = p++;
        int star[2], nstar = 0, prec = -1;
        p += strspn(p, "-+ #0'");
        if (*p == '*') {
            star[nstar++] = va_arg(ap, int);
            p++;
        } else {
            p += strspn(p, "0123456789");
        }
        if (*p == '.') {
            p++;
            if (*p == '*') {
                prec = star[nstar++] = va_arg(ap, int);
                p++;
            } else {
                prec = atoi(p);
                p += strspn(p, "0123456789");
            }
        }
        enum diag_len len = diag_parse_len(&p);
        char conv = *p;
        SG_BUG_ON(conv == '\0' || conv == 'n');
        p++;
        char spec[32];
        size_t sl = (size_t)(p - start);
        SG_BUG_ON(sl >= sizeof(spec));
        memcpy(spec, start, sl);
        spec[sl] = '\0';
        switch (conv) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            size_t n = s == NULL ? 0 : prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s);
            if (n > CFG_DIAG_ARG_MAX)
                fprintf(f, "%.*s...(%zu bytes)", (int)diag_cut(s, CFG_DIAG_ARG_KEEP), s, n);
            else
                DIAG_PUT(f, spec, nstar, star, s);
            break;
        }
        case 'd':
        case 'i':
            if (len == DL_L)
                DIAG_PUT(f, spec, nstar, star, va_arg(ap, long));
            else if (len == DL_LL)
                DIAG_PUT(f, spec, nstar, star, va_arg(ap, long long));
            else if (len == DL_Z)
                DIAG_PUT(f, spec, nstar, star, va_arg(ap, ssize_t));
            else if (len == DL_J)
                DIAG_PUT(f, spec, nstar, star, va_arg(ap, intmax_t));
            else if (len == DL_T)
                DIAG_PUT(f, spec, nstar, star, va_arg(ap, ptrdiff_t));
            else
                DIAG_PUT(f, spec, nstar, star, va_arg(ap, int));
            break;
        case 'u':
        case 'o':
        case 'x':
        case 'X':
            if (len == DL_L)
                DIAG_PUT(f, spec, nstar, star, va_arg(ap, unsigned long));
            else if (len == DL_LL)
                DIAG_PUT(f, spec, nstar, star, va_arg(ap, unsigned long long));
            else if (len == DL_Z)
                DIAG_PUT(f, spec, nstar, star, va_arg(ap, size_t));
            else if (len == DL_J)
                DIAG_PUT(f, spec, nstar, star, va_arg(ap, uintmax_t));
            else if (len == DL_T)
                DIAG_PUT(f, spec, nstar, star, va_arg(ap, ptrdiff_t));
            else
                DIAG_PUT(f, spec, nstar, star, va_arg(ap, unsigned));
            break;
        case 'c':
            DIAG_PUT(f, spec, nstar, star, va_arg(ap, int));
            break;
        case 'p':
            DIAG_PUT(f, spec, nstar, star, va_arg(ap, void *));
            break;
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G':
        case 'a':
        case 'A':
            if (len == DL_BIG_L)
                DIAG_PUT(f, spec, nstar, star, va_arg(ap, long double));
            else
                DIAG_PUT(f, spec, nstar, star, va_arg(ap, double));
            break;
        default:
            SG_BUG_ON(1); /* a conversion no diag uses */
        }
    }
}

/* diag_vprint into a new string (aborts when memory runs out). */
static char *diag_vformat(const char *fmt, va_list ap)
{
    char *msg = NULL;
    size_t msglen = 0;
    FILE *f = open_memstream(&msg, &msglen);
    if (f == NULL) {
        fputs("surgegate: out of memory\n", stderr);
        abort();
    }
    diag_vprint(f, fmt, ap);
    if (fclose(f) != 0 || msg == NULL) {
        fputs("surgegate: out of memory\n", stderr);
        abort();
    }
    return msg;
}

void cfg_diag_vreason(char *buf, size_t len, const char *fmt, va_list ap)
{
    if (buf == NULL || len == 0)
        return;
    char *msg = diag_vformat(fmt, ap);
    snprintf(buf, len, "%s", msg);
    free(msg);
}

void cfg_diag_vadd(struct sg_cfg_diags *d, enum sg_cfg_severity sev, int line, const char *fmt,
                   va_list ap)
{
    char *msg = diag_vformat(fmt, ap);

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
