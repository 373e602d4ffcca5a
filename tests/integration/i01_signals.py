"""i01: signals. No signal ends surgegate without a word.

1. Under a bounded background load, every signal that means nothing to
   surgegate (SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT,
   SIGXCPU, SIGXFSZ, SIGTTIN, SIGTTOU) logs one warning naming it, and the
   proxy keeps serving: 0 failed requests over the whole run. SIGPIPE is
   ignored (no log, still serving); SIGUSR1 logs the reopen.
2. SIGQUIT stops gracefully, like SIGTERM: exit status 0, logged.
3. Each fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS,
   SIGTRAP), sent with kill, writes one line naming the signal and the
   sender's pid to stderr, then the process dies by that very signal (the
   exit status a shell or systemd sees). Under AddressSanitizer, SIGSEGV,
   SIGBUS and SIGFPE are the sanitizer's: it reports and the process fails."""
import os
import resource
import signal
import time

from harness import *

QUIET = ["SIGALRM", "SIGVTALRM", "SIGPROF", "SIGIO", "SIGPWR", "SIGSTKFLT",
         "SIGXCPU", "SIGXFSZ", "SIGTTIN", "SIGTTOU"]
FATAL = ["SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT", "SIGSYS", "SIGTRAP"]
ASAN_OWN = {"SIGSEGV", "SIGBUS", "SIGFPE"}


def count(p, text):
    return p.stderr_text().count(text)


def main():
    # no core files from the fatal signals sent below
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with Backend("b1") as b:
        fe = free_port()
        with Proxy(proxy_config(fe, [b.addr]), listen_port=fe) as p:
            with BackgroundLoad(fe, threads=4, max_seconds=30) as bg:
                wait_for(lambda: any("/load" in l for l in b.log_lines()), timeout=5,
                         what="load to reach the backend")
                for name in QUIET:
                    sig = getattr(signal, name)
                    line = "%s (%d) received: ignored" % (name, int(sig))
                    p.signal(sig)
                    wait_for(lambda: count(p, line) == 1, timeout=3, what="log line %r" % line)
                    check(p.alive(), "surgegate died of %s" % name)
                    check_eq(http_get(fe, "/after-" + name)[0], 200, "request after " + name)
                    time.sleep(0.1)  # the load runs on between two signals
                p.signal(signal.SIGPIPE)
                p.signal(signal.SIGUSR1)
                wait_for(lambda: "SIGUSR1: log files reopened" in p.stderr_text(), timeout=3,
                         what="SIGUSR1's log line")
                check(p.alive(), "surgegate died of SIGPIPE")
                check("SIGPIPE" not in p.stderr_text(), "SIGPIPE was logged (should be ignored)")
                check_eq(http_get(fe, "/after-pipe")[0], 200, "request after SIGPIPE")
                res = bg.stop()
            log("background load during the signals: %r" % res)
            check(res.total > 100, "too little load ran (%d requests)" % res.total)
            check_eq(res.failed(), 0, "failed requests while the signals arrived (%r)" % res)

        fe = free_port()
        with Proxy(proxy_config(fe, [b.addr]), listen_port=fe, check_exit=False) as p:
            check_eq(http_get(fe, "/")[0], 200, "request before SIGQUIT")
            p.signal(signal.SIGQUIT)
            rc = p.wait(10)
            check_eq(rc, 0, "exit status after SIGQUIT (graceful stop)")
            check("SIGQUIT: stopping gracefully" in p.stderr_text(), "SIGQUIT's stop not logged")

        asan = sanitized_build()
        me = os.getpid()
        for name in FATAL:
            sig = getattr(signal, name)
            fe = free_port()
            with Proxy(proxy_config(fe, [b.addr]), listen_port=fe, check_exit=False) as p:
                check_eq(http_get(fe, "/")[0], 200, "request before " + name)
                p.signal(sig)
                rc = p.wait(10)
                err = p.stderr_text()
                if asan and name in ASAN_OWN:
                    check(rc is not None and rc != 0, "%s: exit %s under ASan" % (name, rc))
                    check("AddressSanitizer" in err, "%s: no sanitizer report" % name)
                    log("%s: AddressSanitizer reported, exit %s" % (name, rc))
                    continue
                want = "]: fatal signal %s (%d) sent by pid %d, dying with it" % (name, int(sig), me)
                check(want in err, "%s: no fatal line %r in stderr:\n%s" % (name, want, err[-1500:]))
                check_eq(err.count("fatal signal"), 1, "%s: fatal lines" % name)
                check_eq(rc, -int(sig), "%s: exit status (negative = killed by that signal)" % name)
                line = [l for l in err.splitlines() if "fatal signal" in l][0]
                log("%s: %r, exit %s" % (name, line, rc))


if __name__ == "__main__":
    run(main)
