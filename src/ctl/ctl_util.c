/* ctl_util.c: surgectl's stop flag and allocation helpers (ctl_util.h). A
 * leaf: it calls only libc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_util.h"

volatile sig_atomic_t ctl_stop;

/* A command-line client has nothing sensible to do without memory: print
 * why and exit(1) rather than crash on a NULL. */
static void ctl_oom(void)
{
    fprintf(stderr, "surgectl: out of memory\n");
    exit(1);
}

void *ctl_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        ctl_oom();
    return p;
}

void *ctl_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        ctl_oom();
    return q;
}

char *ctl_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = ctl_xmalloc(n);
    memcpy(d, s, n);
    return d;
}
