"""q06: outlier ejection on consecutive errors, growing ejection times, and
max_ejection_percent.

outlier = { consecutive_errors = 5; base_ejection = "1s"; max_ejection =
"10s"; max_ejection_percent = 50; }, backends A and B, roundrobin, one
worker, one client sending a request every ~10 ms.

1. B answers 500 to everything (/__control?status=500): after 5 of its
   requests (at most 7: requests already picked) it gets nothing; the admin
   API shows it "down" (or "ejected": true) with a reason mentioning the
   ejection (within 0.5 s of it); meanwhile A serves every request.
2. It returns after about base_ejection (first silence 0.8 .. 2.5 s), fails
   5 more times, and is ejected for about twice as long (second silence
   1.8 .. 4.5 s, and longer than the first).
3. A fresh proxy where both answer 500: only one of the two is ever ejected
   at once (50% of 2 = 1), so every request still reaches a backend (500s,
   never a 502/503 from the proxy)."""
import time

from harness import *

OUTLIER = cfg_group("outlier", consecutive_errors=5, base_ejection="1s", max_ejection="10s",
                    max_ejection_percent=50)


def stream(fe, seconds, until=None, pace=0.01, proxy=None, poll=None):
    """Sequential GETs on one keep-alive connection for up to `seconds`.
    Returns [(t, status, backend)]; until(records) stops early."""
    out = []
    t_end = time.monotonic() + seconds
    c = KeepAlive(fe)
    try:
        i = 0
        while time.monotonic() < t_end:
            try:
                status, h, _ = c.get("/o/%d" % i)
                out.append((time.monotonic(), status, h.get("X-Backend")))
            except Exception as e:  # any client failure is recorded
                out.append((time.monotonic(), None, "error: %s" % e))
                c.close()
                c = KeepAlive(fe)
            i += 1
            if poll:
                poll(out)
            if until and until(out):
                break
            time.sleep(pace)
    finally:
        c.close()
    return out


def gaps(records, name, min_gap=0.5):
    """(last answer before, first answer after, gap) of each silence of
    backend `name` longer than min_gap, and the count of its answers before
    the first silence."""
    ts = [t for t, _, b in records if b == name]
    out = []
    for x, y in zip(ts, ts[1:]):
        if y - x > min_gap:
            out.append((x, y, y - x))
    first = sum(1 for t in ts if not out or t <= out[0][0])
    return out, first


def one_failing():
    with Backend("A") as a, Backend("B") as b:
        fe = free_port()
        cfg = proxy_config(fe, [a.addr, b.addr], extra_pool=OUTLIER, workers=1)
        with Proxy(cfg, listen_port=fe) as proxy:
            res = load(fe, 20, threads=1, path="/warm")
            check(res.ok() == 20, "warm-up failed: %s" % res.errors)
            b.control(status=500)
            seen = {}

            def poll(recs):
                # Once B has failed 5+ times and then missed 3 turns, it is
                # ejected now (if ever): read the admin API, again on every
                # request for up to 0.5 s (well inside the 1 s ejection)
                # until the reason is filled in (the control thread may
                # record it a tick after the ejection).
                if "info" in seen or len(recs) < 3 or any(n != "A" for _, _, n in recs[-3:]):
                    return
                if sum(1 for _, s, n in recs if n == "B") < 5:
                    return
                now = time.monotonic()
                info = backend_info(proxy, b)
                seen.setdefault("first", (now, info))
                if "eject" in (info.get("reason") or "").lower() or \
                        now - seen["first"][0] >= 0.5:
                    seen["info"] = info
                    seen["lag"] = now - seen["first"][0]

            def done(recs):
                g, _ = gaps(recs, "B")
                return len(g) >= 2

            recs = stream(fe, 10.0, until=done, poll=poll)
            g, first = gaps(recs, "B")
            bad = [(round(t, 3), s, n) for t, s, n in recs if n not in ("A", "B")]
            log("%d requests; B answered %d times before its first silence; silences %s"
                % (len(recs), first, ["%.2fs" % x[2] for x in g]))
            check(not bad, "requests without a backend answer: %s" % bad[:5])
            check(all(s == 200 for _, s, n in recs if n == "A"), "A answered non-200")
            check(all(s == 500 for _, s, n in recs if n == "B"), "B answered non-500")
            check(5 <= first <= 7, "B got %d requests before being ejected (want 5, "
                  "consecutive_errors, up to 7)" % first)
            info = seen.get("info")
            log("admin view of B while ejected: %r" % info)
            if "first" in seen and seen["first"][1] is not info:
                log("(the first look, %.0f ms earlier, had reason %r)"
                    % (1000 * seen["lag"], seen["first"][1].get("reason")))
            check(info is not None, "no admin API sample taken while B was ejected")
            check(info.get("state") == "down" or info.get("ejected") is True,
                  "admin state of the ejected B: %r (want down / ejected)" % info)
            check("eject" in (info.get("reason") or "").lower(),
                  "B's reason %r does not mention the ejection" % info.get("reason"))
            check(len(g) >= 2, "B was not ejected twice within 10 s (silences %s)"
                  % ["%.2f" % x[2] for x in g])
            check(0.8 <= g[0][2] <= 2.5, "first ejection lasted %.2fs (base_ejection 1s, "
                  "want 0.8 .. 2.5 s)" % g[0][2])
            check(1.8 <= g[1][2] <= 4.5, "second ejection lasted %.2fs (2 x base_ejection, "
                  "want 1.8 .. 4.5 s)" % g[1][2])
            check(g[1][2] > g[0][2] + 0.4, "the second ejection (%.2fs) is not longer than "
                  "the first (%.2fs)" % (g[1][2], g[0][2]))
            between = [n for t, s, n in recs if g[0][1] <= t <= g[1][0] and n == "B"]
            check(len(between) <= 7, "B answered %d times between its ejections (want <= 7)"
                  % len(between))


def both_failing():
    with Backend("A") as a, Backend("B") as b:
        fe = free_port()
        cfg = proxy_config(fe, [a.addr, b.addr], extra_pool=OUTLIER, workers=1)
        with Proxy(cfg, listen_port=fe) as proxy:
            a.control(status=500)
            b.control(status=500)
            with AdminPoller(proxy, interval=0.05) as poll:
                recs = stream(fe, 2.0)
            statuses = {}
            for _, s, n in recs:
                statuses[s] = statuses.get(s, 0) + 1
            names = {}
            for _, s, n in recs:
                names[n] = names.get(n, 0) + 1
            log("both failing: %d requests, statuses %s, backends %s"
                % (len(recs), statuses, names))
            check(set(statuses) == {500}, "both failing: statuses %s (want only the backends' "
                  "500s: one backend always stays in)" % statuses)
            check(len(poll.samples) > 0, "admin API not readable: %s" % poll.errors[:1])
            most = 0
            ever = set()
            for _, p in poll.samples:
                out = [bk["address"] for bk in p["backends"]
                       if bk.get("state") == "down" or bk.get("ejected") is True]
                most = max(most, len(out))
                ever.update(out)
            log("both failing: at most %d ejected at once; ever ejected: %s" % (most, ever))
            check(most == 1, "both failing: %d backends out at once (want exactly 1: "
                  "max_ejection_percent 50 of 2)" % most)


def main():
    one_failing()
    both_failing()


if __name__ == "__main__":
    run(main)
