/* signals.h: what surgegate does with the signals it has no job for.
 *
 * The signals that mean something (SIGTERM, SIGINT, SIGQUIT, SIGUSR1, and
 * the reload's SIGHUP) are main.c's table of evsignals. This module covers
 * the rest, so that no signal ends the process without a word:
 *  - fatal signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS,
 *    SIGTRAP) write one line to stderr with write(2) only (the handler is
 *    async-signal-safe) and then die by the same signal with its default
 *    action, so the exit status and the core dump stay those of the signal;
 *  - signals that terminate (or stop) by default and mean nothing to us
 *    (SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT,
 *    SIGXCPU, SIGXFSZ, SIGTTIN, SIGTTOU) are logged as a warning and
 *    otherwise ignored. They are caught, not set to SIG_IGN, so the hooks
 *    (which exec) start with the default disposition. */
#ifndef SURGEGATE_SIGNALS_H
#define SURGEGATE_SIGNALS_H

#include <event2/event.h>

struct sg_signals_quiet;

/* Installs the fatal-signal handlers for the whole process and gives the
 * calling thread an alternate signal stack (a stack overflow still logs).
 * Call once, first thing in main, before any thread starts. In a build with
 * AddressSanitizer, SIGSEGV, SIGBUS and SIGFPE are left to the sanitizer,
 * whose report says more. */
void sg_signals_fatal_install(void);

/* Gives the calling thread its own alternate signal stack, unless it has
 * one already: call at the start of every long-lived thread, and
 * sg_signals_thread_done() before it returns (frees the stack). */
void sg_signals_thread_init(void);
void sg_signals_thread_done(void);

/* "SIGTERM" for SIGTERM, ...; "signal" for a number it does not know. */
const char *sg_signals_name(int sig);

/* Adds to base (the main thread's) one evsignal per signal that means
 * nothing to surgegate (list above): each arrival logs a warning naming it,
 * and nothing else happens. Returns NULL when libevent refuses one (logged).
 * Main thread only; sg_signals_quiet_free removes them. */
struct sg_signals_quiet *sg_signals_quiet_start(struct event_base *base);
void sg_signals_quiet_free(struct sg_signals_quiet *q);

#endif
