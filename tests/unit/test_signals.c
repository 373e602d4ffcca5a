/* test_signals.c: src/signals.c. The fatal handler is tested in child
 * processes that really fault (a NULL write, a trap instruction, abort(),
 * a stack overflow in a thread): each must write its one line to stderr and
 * die by the signal itself. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "../../src/signals.c"

/* Runs fn in a child whose stderr is a pipe; returns the wait status and
 * what the child wrote to stderr (up to cap - 1 bytes). */
static int run_child(void (*fn)(void), char *out, size_t cap)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        sg_signals_fatal_install();
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(fds[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void expect_death(void (*fn)(void), int sig, const char *text)
{
    char out[4096];
    int status = run_child(fn, out, sizeof(out));
    if (!WIFSIGNALED(status) || WTERMSIG(status) != sig || strstr(out, text) == NULL) {
        print_error("want death by %s and '%s'; status 0x%x, stderr:\n%s\n", sg_signals_name(sig),
                    text, (unsigned)status, out);
        fail();
    }
    /* one line, starting with the time as sg_log writes it */
    assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
    assert_true(out[4] == '-' && out[10] == 'T' && out[23] == 'Z');
}

static void do_null_write(void)
{
    volatile int *p = NULL;
    *p = 1;
}

static void do_trap(void)
{
    __builtin_trap();
}

static void do_abort(void)
{
    abort();
}

static volatile int recurse_limit = 1 << 30; /* far beyond any stack */

static int recurse(int depth)
{
    volatile char pad[1024];
    pad[0] = (char)depth;
    if (depth >= recurse_limit)
        return pad[0];
    return recurse(depth + 1) + pad[0];
}

static void *overflow_main(void *arg)
{
    sg_signals_thread_init();
    recurse(0);
    return NULL;
}

static void do_thread_overflow(void)
{
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 256 * 1024);
    pthread_create(&t, &at, overflow_main, NULL);
    pthread_join(t, NULL);
}

static void test_fault_null(void **state)
{
#ifdef SIGNALS_ASAN
    skip(); /* SIGSEGV is AddressSanitizer's in this build */
#endif
    expect_death(do_null_write, SIGSEGV, "fatal signal SIGSEGV (11) at address 0x0, dying with it");
}

static void test_trap(void **state)
{
    /* ud2 on x86: SIGILL; brk on arm64: SIGTRAP */
    char out[4096];
    int status = run_child(do_trap, out, sizeof(out));
    assert_true(WIFSIGNALED(status));
    int sig = WTERMSIG(status);
    assert_true(sig == SIGILL || sig == SIGTRAP);
    char want[64];
    snprintf(want, sizeof(want), "fatal signal %s (%d)", sg_signals_name(sig), sig);
    assert_non_null(strstr(out, want));
}

static void test_abort(void **state)
{
    /* abort() raises it itself: "sent by" the child's own pid */
    expect_death(do_abort, SIGABRT, "fatal signal SIGABRT (6) sent by pid ");
}

static void test_stack_overflow_thread(void **state)
{
#ifdef SIGNALS_ASAN
    skip();
#endif
    expect_death(do_thread_overflow, SIGSEGV, "fatal signal SIGSEGV (11) at address 0x");
}

static void test_utc(void **state)
{
    static const int64_t secs[] = {0,          59,         86399,      951782400,  951868799,
                                   1709164800, 1767225599, 1798761600, 4102444799, 1234567890};
    for (size_t i = 0; i < SG_ARRAY_SIZE(secs); i++) {
        char got[64], want[64];
        size_t n = signals_put_utc(got, 0, sizeof(got) - 1, secs[i], 7);
        got[n] = '\0';
        time_t t = (time_t)secs[i];
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t m = strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(want + m, sizeof(want) - m, ".007Z ");
        assert_string_equal(got, want);
    }
}

/* An alternate stack set up and given back: none is left set. */
static void *altstack_main(void *arg)
{
    stack_t ss;
    sg_signals_thread_init();
    assert_int_equal(sigaltstack(NULL, &ss), 0);
    assert_false(ss.ss_flags & SS_DISABLE);
    sg_signals_thread_done();
#ifndef SIGNALS_ASAN /* the sanitizer's own stack stays */
    assert_int_equal(sigaltstack(NULL, &ss), 0);
    assert_true(ss.ss_flags & SS_DISABLE);
#endif
    return NULL;
}

static void test_altstack_done(void **state)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, altstack_main, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

static void test_names(void **state)
{
    assert_string_equal(sg_signals_name(SIGTERM), "SIGTERM");
    assert_string_equal(sg_signals_name(SIGSTKFLT), "SIGSTKFLT");
    assert_string_equal(sg_signals_name(0), "signal");
    assert_string_equal(sg_signals_name(SIGRTMIN + 3), "signal");
}

/* The quiet signals are caught by the loop: raising each leaves us alive. */
static void test_quiet(void **state)
{
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct sg_signals_quiet *q = sg_signals_quiet_start(base);
    assert_non_null(q);
    for (size_t i = 0; i < SG_ARRAY_SIZE(signals_quiet_list); i++) {
        assert_int_equal(raise(signals_quiet_list[i]), 0);
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
    sg_signals_quiet_free(q);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fault_null),    cmocka_unit_test(test_trap),
        cmocka_unit_test(test_abort),         cmocka_unit_test(test_stack_overflow_thread),
        cmocka_unit_test(test_altstack_done), cmocka_unit_test(test_utc),
        cmocka_unit_test(test_names),         cmocka_unit_test(test_quiet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
