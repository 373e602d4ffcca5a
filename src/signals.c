/* signals.c: fatal signals logged before dying, and the signals that mean
 * nothing to surgegate logged and ignored (contract in signals.h). */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "surgegate/common.h"
#include "surgegate/log.h"
#include "surgegate/signals.h"

#if defined(__SANITIZE_ADDRESS__)
#define SIGNALS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIGNALS_ASAN 1
#endif
#endif

static const struct {
    int sig;
    const char *name;
} signals_names[] = {
    {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},       {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
    {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},     {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},
    {SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"},     {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
    {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"},     {SIGTERM, "SIGTERM"}, {SIGSTKFLT, "SIGSTKFLT"},
    {SIGCHLD, "SIGCHLD"}, {SIGCONT, "SIGCONT"},     {SIGSTOP, "SIGSTOP"}, {SIGTSTP, "SIGTSTP"},
    {SIGTTIN, "SIGTTIN"}, {SIGTTOU, "SIGTTOU"},     {SIGURG, "SIGURG"},   {SIGXCPU, "SIGXCPU"},
    {SIGXFSZ, "SIGXFSZ"}, {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"},
    {SIGIO, "SIGIO"},     {SIGPWR, "SIGPWR"},       {SIGSYS, "SIGSYS"},
};

/* Fatal: log one line, then die by the signal. */
static const int signals_fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP};

/* Terminate or stop by default, mean nothing to us: log, carry on. */
static const int signals_quiet_list[] = {   SIGALRM, SIGVTALRM, SIGPROF, SIGIO,  SIGPWR,
                                         SIGSTKFLT, SIGXCPU, SIGXFSZ,   SIGTTIN, SIGTTOU};

struct sg_signals_quiet {
    struct event *ev[SG_ARRAY_SIZE(signals_quiet_list)];
};

const char *sg_signals_name(int sig)
{
    for (size_t i = 0; i < SG_ARRAY_SIZE(signals_names); i++)
        if (signals_names[i].sig == sig)
            return signals_names[i].name;
    return "signal";
}

/* Appends s to buf (async-signal-safe). */
static size_t signals_put(char *buf, size_t n, size_t cap, const char *s)
{
    while (*s != '\0' && n < cap)
        buf[n++] = *s++;
    return n;
}

/* Appends v in base 10 or 16 (async-signal-safe). */
static size_t signals_put_num(char *buf, size_t n, size_t cap, uintmax_t v, unsigned base)
{
    char tmp[32];
    size_t k = 0;
    do {
        tmp[k++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0 && k < sizeof(tmp));
    while (k > 0 && n < cap)
        buf[n++] = tmp[--k];
    return n;
}

/* Appends v in base 10 on at least width digits (async-signal-safe). */
static size_t signals_put_pad(char *buf, size_t n, size_t cap, uintmax_t v, int width)
{
    uintmax_t lim = 1;
    for (int i = 1; i < width; i++)
        lim *= 10;
    for (; lim > 1 && v < lim && n < cap; lim /= 10)
        buf[n++] = '0';
    return signals_put_num(buf, n, cap, v, 10);
}

/* Appends secs (since the epoch, >= 0) and ms as sg_log writes the time,
 * "2026-01-31T23:59:59.123Z " (async-signal-safe: arithmetic only; days to
 * a civil date by the usual era computation). */
static size_t signals_put_utc(char *buf, size_t n, size_t cap, int64_t secs, long ms)
{
    int64_t days = secs / 86400, rem = secs % 86400;
    int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    n = signals_put_pad(buf, n, cap, (uintmax_t)y, 4);
    n = signals_put(buf, n, cap, "-");
    n = signals_put_pad(buf, n, cap, (uintmax_t)m, 2);
    n = signals_put(buf, n, cap, "-");
    n = signals_put_pad(buf, n, cap, (uintmax_t)d, 2);
    n = signals_put(buf, n, cap, "T");
    n = signals_put_pad(buf, n, cap, (uintmax_t)(rem / 3600), 2);
    n = signals_put(buf, n, cap, ":");
    n = signals_put_pad(buf, n, cap, (uintmax_t)(rem / 60 % 60), 2);
    n = signals_put(buf, n, cap, ":");
    n = signals_put_pad(buf, n, cap, (uintmax_t)(rem % 60), 2);
    n = signals_put(buf, n, cap, ".");
    n = signals_put_pad(buf, n, cap, (uintmax_t)ms, 3);
    return signals_put(buf, n, cap, "Z ");
}

static size_t signals_put_time(char *buf, size_t n, size_t cap)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return n;
    return signals_put_utc(buf, n, cap, (int64_t)ts.tv_sec, ts.tv_nsec / 1000000);
}

/* Runs on the alternate stack when the thread has one. Only
 * async-signal-safe calls: clock_gettime, write, getpid, raise. SA_RESETHAND has already
 * restored the default action, so the raise (pending until we return, as
 * the signal is blocked in its handler) kills the process by this signal;
 * a fault raised by an instruction faults again on return, with the same
 * outcome. */
static void signals_on_fatal(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    char line[256];
    size_t cap = sizeof(line) - 1, n = 0;
    n = signals_put_time(line, n, cap);
    n = signals_put(line, n, cap, "error: surgegate[");
    n = signals_put_num(line, n, cap, (uintmax_t)getpid(), 10);
    n = signals_put(line, n, cap, "]: fatal signal ");
    n = signals_put(line, n, cap, sg_signals_name(sig));
    n = signals_put(line, n, cap, " (");
    n = signals_put_num(line, n, cap, (uintmax_t)sig, 10);
    n = signals_put(line, n, cap, ")");
    if (si != NULL && si->si_code <= 0) {
        /* SI_USER, SI_QUEUE, SI_TKILL...: sent by a process */
        n = signals_put(line, n, cap, " sent by pid ");
        n = signals_put_num(line, n, cap, (uintmax_t)si->si_pid, 10);
    } else if (si != NULL && (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL)) {
        n = signals_put(line, n, cap, " at address 0x");
        n = signals_put_num(line, n, cap, (uintmax_t)(uintptr_t)si->si_addr, 16);
    }
    n = signals_put(line, n, cap, ", dying with it\n");
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    raise(sig);
    errno = saved;
}

/* The alternate stack this thread allocated, if any (sg_signals_thread_done
 * frees it). */
static _Thread_local void *signals_altstack;

void sg_signals_thread_init(void)
{
    /* A thread that has one already (AddressSanitizer gives every thread
     * its own, and unmaps it when the thread ends) keeps it. */
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE) && old.ss_sp != NULL)
        return;
    /* Enough for the handler (a few hundred bytes of frame). */
    size_t size = 64 * 1024;
    stack_t ss = {.ss_sp = malloc(size), .ss_size = size, .ss_flags = 0};
    if (ss.ss_sp == NULL || sigaltstack(&ss, NULL) != 0) {
        free(ss.ss_sp);
        sg_log_warn("no alternate signal stack for this thread: a stack overflow dies unlogged");
        return;
    }
    signals_altstack = ss.ss_sp;
}

void sg_signals_thread_done(void)
{
    if (signals_altstack == NULL)
        return;
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    if (sigaltstack(&ss, NULL) == 0) {
        free(signals_altstack);
        signals_altstack = NULL;
    }
}

void sg_signals_fatal_install(void)
{
    sg_signals_thread_init();
    for (size_t i = 0; i < SG_ARRAY_SIZE(signals_fatal); i++) {
        int sig = signals_fatal[i];
#ifdef SIGNALS_ASAN
        if (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE)
            continue;
#endif
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = signals_on_fatal;
        sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sig, &sa, NULL) != 0)
            sg_log_warn("cannot catch %s: it will die unlogged", sg_signals_name(sig));
    }
}

static void signals_on_quiet(evutil_socket_t sig, short what, void *arg)
{
    sg_log_warn("%s (%d) received: ignored (it means nothing to surgegate)",
                sg_signals_name((int)sig), (int)sig);
}

struct sg_signals_quiet *sg_signals_quiet_start(struct event_base *base)
{
    struct sg_signals_quiet *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    for (size_t i = 0; i < SG_ARRAY_SIZE(signals_quiet_list); i++) {
        int sig = signals_quiet_list[i];
        q->ev[i] = evsignal_new(base, sig, signals_on_quiet, NULL);
        if (q->ev[i] == NULL || evsignal_add(q->ev[i], NULL) != 0) {
            sg_log_error("cannot handle %s", sg_signals_name(sig));
            sg_signals_quiet_free(q);
            return NULL;
        }
    }
    return q;
}

void sg_signals_quiet_free(struct sg_signals_quiet *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < SG_ARRAY_SIZE(q->ev); i++)
        if (q->ev[i] != NULL)
            event_free(q->ev[i]);
    free(q);
}
