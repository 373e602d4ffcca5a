"""q08: balance = "hash": stable key -> backend mapping, consistent on change.

Four backends. Requests go one at a time (one client connection): with
bounded-load hashing (hash_balance_factor) concurrent requests may
legitimately spill to another backend, sequential ones never.

header:X-User —
  1. 400 distinct users, 3 requests each (interleaved): each user always
     lands on the same backend, and every backend gets at least 10% of users;
  2. one backend drained through the admin API: only the users that were on
     it move (at most 2% of the others may move), the fraction moved is about
     1/4 (0 < f <= 0.35), and none lands on the drained backend;
  3. back to "ready": every user is on its original backend again.
uri — 200 distinct paths, twice each: stable, spread over all 4.
cookie:sid — 200 sids, each sent twice with other cookies changing around
it: stable (only sid counts), spread over all 4."""
import random

from harness import *

NUSERS = 400


def mapping(fe, keys, reps, headers_fn_for, path_fn_for=None, seed=1):
    """Sends reps rounds over keys, each round in its own shuffled order (so
    that no request-counting balancer can look stable by accident); returns
    {key: set(backends)}."""
    rnd = random.Random(seed)
    order = []
    for _ in range(reps):
        ks = list(keys)
        rnd.shuffle(ks)
        order += ks
    n = len(order)
    res = load(fe, n, threads=1, record=True, max_seconds=40,
               headers_fn=lambda i: headers_fn_for(order[i], i),
               path_fn=(lambda i: path_fn_for(order[i], i)) if path_fn_for else None)
    check(res.ok() == n, "%d of %d requests failed: %s" % (res.failed(), n, res.errors))
    m = {}
    for r in res.records:
        m.setdefault(order[r[1]], set()).add(r[3])
    check_eq(len(m), len(keys), "keys answered")
    return m


def check_balance(proxy, want):
    got = pool_info(proxy).get("balance")
    check(got == want, "the admin API reports balance %r (configured %r: not in effect?)"
          % (got, want))


def check_stable(m, what):
    split = {k: v for k, v in m.items() if len(v) != 1}
    check(not split, "%s: %d keys went to more than one backend, e.g. %s"
          % (what, len(split), sorted(split.items())[:3]))
    per = {}
    for k, v in m.items():
        b = next(iter(v))
        per[b] = per.get(b, 0) + 1
    log("%s: keys per backend %s" % (what, per))
    return {k: next(iter(v)) for k, v in m.items()}, per


def header_key(bs):
    fe = free_port()
    cfg = proxy_config(fe, bs, balance="hash", extra_pool='hash_key = "header:X-User";',
                       workers=1)
    users = ["user-%d" % i for i in range(NUSERS)]
    hdr = lambda k, i: {"X-User": k, "X-Other": str(i)}  # noqa: E731
    with Proxy(cfg, listen_port=fe) as proxy:
        check_balance(proxy, "hash")
        orig, per = check_stable(mapping(fe, users, 3, hdr), "header:X-User")
        check(len(per) == 4 and min(per.values()) >= NUSERS // 10,
              "header:X-User: users per backend %s (want all 4, each >= 10%%)" % per)

        victim = max(per, key=lambda k: per[k])  # the busiest, so that many keys move
        vb = next(b for b in bs if b.name == victim)
        set_backend_state(proxy, vb, "drain")
        wait_backend(proxy, vb, "drain", 3, what="drained backend")
        after, _ = check_stable(mapping(fe, users, 1, hdr, seed=2),
                                "header:X-User, %s drained" % victim)
        on_victim = [u for u in users if orig[u] == victim]
        moved_other = [u for u in users if orig[u] != victim and after[u] != orig[u]]
        still = [u for u in users if after[u] == victim]
        moved = [u for u in users if after[u] != orig[u]]
        log("drained %s (%d users on it): %d users moved, %d of them from other backends"
            % (victim, len(on_victim), len(moved), len(moved_other)))
        check(not still, "%d users still sent to the drained backend %s" % (len(still), victim))
        check(len(moved_other) <= 0.02 * (NUSERS - len(on_victim)),
              "%d users not on the drained backend moved anyway (consistent hashing moves only "
              "the drained backend's keys), e.g. %s"
              % (len(moved_other), [(u, orig[u], after[u]) for u in moved_other[:3]]))
        f = len(moved) / float(NUSERS)
        check(0 < f <= 0.35, "fraction of users moved: %.2f (want about 1/4, <= 0.35)" % f)

        set_backend_state(proxy, vb, "ready")
        wait_backend(proxy, vb, "up", 3, what="backend back to ready")
        back, _ = check_stable(mapping(fe, users, 1, hdr, seed=3),
                               "header:X-User, %s ready" % victim)
        diff = [u for u in users if back[u] != orig[u]]
        check(len(diff) <= 0.02 * NUSERS, "%d users not back on their original backend after "
              "%s returned, e.g. %s" % (len(diff), victim,
                                        [(u, orig[u], back[u]) for u in diff[:3]]))


def uri_key(bs):
    fe = free_port()
    cfg = proxy_config(fe, bs, balance="hash", extra_pool='hash_key = "uri";', workers=1)
    paths = ["/u/%d/item" % i for i in range(200)]
    with Proxy(cfg, listen_port=fe) as proxy:
        check_balance(proxy, "hash")
        m = mapping(fe, paths, 2, lambda k, i: {"X-User": str(i)}, path_fn_for=lambda k, i: k)
        _, per = check_stable(m, "uri")
        check(len(per) == 4, "uri: keys spread over %d backends (want 4): %s" % (len(per), per))


def cookie_key(bs):
    fe = free_port()
    cfg = proxy_config(fe, bs, balance="hash", extra_pool='hash_key = "cookie:sid";', workers=1)
    sids = ["s%03d" % i for i in range(200)]
    with Proxy(cfg, listen_port=fe) as proxy:
        check_balance(proxy, "hash")
        m = mapping(fe, sids, 2,
                    lambda k, i: {"Cookie": "a=%d; sid=%s; z=%d" % (i, k, i * 7)},
                    path_fn_for=lambda k, i: "/c/%d" % i)
        _, per = check_stable(m, "cookie:sid")
        check(len(per) == 4, "cookie:sid: keys spread over %d backends (want 4): %s"
              % (len(per), per))


def main():
    with Backend("h1", log=False) as b1, Backend("h2", log=False) as b2, \
            Backend("h3", log=False) as b3, Backend("h4", log=False) as b4:
        bs = [b1, b2, b3, b4]
        header_key(bs)
        uri_key(bs)
        cookie_key(bs)


if __name__ == "__main__":
    run(main)
