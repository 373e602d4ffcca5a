"""q04: a backend SIGKILLed under load costs the clients nothing.

Three backends, roundrobin, retries = 2, two workers. 3,000 GETs (each
answered after 2 ms, so requests are in flight on every backend at any
moment) over 4 keep-alive client connections; when request 1,000 is about
to be sent, backend b2 is SIGKILLed. Requests in flight on b2 (idempotent
GETs), its pooled idle connections, and new connections to it (refused)
must all be retried elsewhere: every one of the 3,000 requests gets 200,
b2 served some before it died and none after."""
from harness import *

N = 3000
KILL_AT = 1000


def main():
    with Backend("b1", delay_ms=2, log=False) as b1, Backend("b2", delay_ms=2, log=False) as b2, \
            Backend("b3", delay_ms=2, log=False) as b3:
        fe = free_port()
        cfg = proxy_config(fe, [b1.addr, b2.addr, b3.addr], retries=2, workers=2)
        with Proxy(cfg, listen_port=fe):
            killed = {}

            def path_fn(i):
                if i == KILL_AT:
                    killed["b2_served"] = b2.requests()
                    b2.kill()
                    log("b2 SIGKILLed before request %d (it had served %d)"
                        % (i, killed["b2_served"]))
                return "/k/%d" % i

            res = load(fe, N, threads=4, path_fn=path_fn, record=True, max_seconds=60)
            log("%r" % res)
            check("b2_served" in killed, "the kill never happened (%d requests sent)" % res.total)
            check_eq(res.total, N, "requests completed")
            bad = [r for r in res.records if r[2] != 200]
            check(not bad, "%d of %d requests failed (want none); first: %s; errors: %s"
                  % (len(bad), N, bad[:5], res.errors))
            check(killed["b2_served"] >= 100,
                  "b2 served only %d requests before the kill (setup)" % killed["b2_served"])
            # After the kill (plus the requests already in flight then),
            # nothing can come from b2.
            late = [r for r in res.records[KILL_AT + 8:] if r[3] == "b2"]
            check(not late, "%d answers from b2 after it was killed: %s" % (len(late), late[:3]))
            after = res.records[KILL_AT + 8:]
            names = set(r[3] for r in after)
            check(names == {"b1", "b3"}, "after the kill, answers came from %s (want b1 and b3)"
                  % sorted(n or "?" for n in names))


if __name__ == "__main__":
    run(main)
