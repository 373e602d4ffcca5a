/* ctl_util.h: what every surgectl file uses (ctl_util.c): the stop flag set
 * by the signal handler and allocation helpers that never return NULL. It
 * calls nothing else of surgectl, so the transport (ctl_http.c) and the
 * commands (surgectl.c) both stand on it. */
#ifndef SURGECTL_CTL_UTIL_H
#define SURGECTL_CTL_UTIL_H

#include <signal.h>
#include <stddef.h>

/* Set by surgectl's SIGINT/SIGTERM handler: a wait in ctl_http_exchange()
 * gives up (CTL_HTTP_IO, "interrupted") once it is set. */
extern volatile sig_atomic_t ctl_stop;

/* malloc/realloc/strdup that exit(1) with a message when memory runs out
 * (a size of 0 allocates 1 byte). */
void *ctl_xmalloc(size_t n);
void *ctl_xrealloc(void *p, size_t n);
char *ctl_xstrdup(const char *s);

#endif
