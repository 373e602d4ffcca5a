"""b14: graceful stop under keep-alive load: no reset, no request lost.

32 keep-alive clients (raw sockets, one selectors loop) send requests back
to back (some answered after 2 or 5 ms by the backend, so that some are in
flight there); SIGTERM the proxy (workers = 2) in the middle, 5 times over:
- no client sees a reset (ECONNRESET on a read or a send);
- a client whose connection ends between requests either had its last
  response carry "Connection: close" (and sent nothing after it), or saw
  the end (EOF) before sending its next request: no request fully sent is
  left without its response, no response is cut short;
- every response is a 200; the proxy exits 0, well within the grace.
Closing a connection whose kernel buffer holds a request not yet read sends
a reset; closing an idle one at the moment its client sends loses that
request.

Then one stop with a connection in each state (workers = 1):
- keep-alive, idle after a response, and a new one that has sent nothing:
  a request sent 0.1 s after SIGTERM is answered (200, Connection: close),
  then the connection ends (EOF, no reset);
- one that stays idle: closed (EOF, no reset) within 3 s;
- two pipelined requests, the first in flight at the backend: the first is
  answered with Connection: close, then EOF; the second is not answered;
- a 4 MB download whose head went out before the stop: the body completes,
  and the next request on that connection is answered with Connection:
  close (its client was not told of the close before)."""
import random
import signal
import socket
import time

from harness import *
from manyconn import Many

RUNS = 5
CLIENTS = 32
DELAYS = (0, 0, 0, 2, 5)


def one_run(run_no, b):
    fe = free_port()
    cfg = proxy_config(fe, [b.addr], workers=2,
                       timeouts={"grace": "10s", "keepalive": "30s", "client": "30s"})
    with Proxy(cfg, listen_port=fe, check_exit=False) as p:
        stopping = [False]
        seq = [0]

        def request(m, c):
            seq[0] += 1
            return m.get(c, "/ka/%d/%d?delay=%d" % (c.cid, seq[0], DELAYS[seq[0] % len(DELAYS)]))

        def on_response(c, r):
            c.last_close = "close" in r[1].get("connection", "").lower()
            if c.last_close:
                return  # the server said so: nothing more on this connection
            if m.peer_closed(c):
                c.eof_before_send = True
                return
            request(m, c)

        m = Many(fe, on_response=on_response)
        try:
            cs = m.open(CLIENTS)
            for c in cs:
                c.last_close = False
                c.eof_before_send = False
                check(request(m, c), "first request of client %d not sent" % c.cid)
            m.run(lambda: any(c.done for c in cs), timeout=0.4 + random.random() * 0.6)
            check(not any(c.done for c in cs), "run %d: a connection ended before the stop: %r"
                  % (run_no, [(c.cid, c.eof, c.reset, c.error) for c in cs if c.done]))
            before = sum(len(c.responses) for c in cs)
            t_term = time.monotonic()
            p.signal(signal.SIGTERM)
            stopping[0] = True
            m.run(lambda: all(c.done for c in cs), timeout=15.0)
            rc = p.wait(5)
            t_exit = time.monotonic() - t_term
            m.run(lambda: all(c.done for c in cs), timeout=1.0)

            resets = [c.cid for c in cs if c.reset]
            errors = [(c.cid, c.error) for c in cs if c.error]
            open_ = [c.cid for c in cs if not c.done]
            lost = [(c.cid, c.outstanding()) for c in cs if c.eof and c.outstanding() > 0]
            cut = [(c.cid, len(c.buf)) for c in cs if c.done and c.buf]
            with_close = len([c for c in cs if c.eof and c.last_close])
            eof_first = len([c for c in cs if c.eof and c.eof_before_send])
            statuses = sorted({r[0] for c in cs for r in c.responses})
            total = sum(len(c.responses) for c in cs)
            log("run %d: %d responses (%d after SIGTERM); ends: %d after Connection: close, %d EOF "
                "before the next request, %d resets, %d EOF with a request unanswered; proxy exit "
                "%s after %.2fs" % (run_no, total, total - before, with_close, eof_first,
                                    len(resets), len(lost), rc, t_exit))
            return {"resets": resets, "errors": errors, "open": open_, "lost": lost, "cut": cut,
                    "statuses": statuses, "rc": rc, "t_exit": t_exit,
                    "stderr": p.stderr_text()[-1500:]}
        finally:
            m.close_all()


def raw_conn(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until(s, want, timeout=5.0):
    """Reads until `want` final responses are complete (None: until EOF).
    Returns (responses, how, rest) with how in "open", "eof", "reset",
    "timeout"."""
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        res, rest = parse_responses(buf)
        res = [r for r in res if r[0] >= 200]
        if want is not None and len(res) >= want:
            return res, "open", rest
        left = deadline - time.monotonic()
        if left <= 0:
            return res, "timeout", rest
        s.settimeout(left)
        try:
            d = s.recv(262144)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return res, "reset", rest
        if not d:
            return res, "eof", rest
        buf += d


def get(path):
    return ("GET %s HTTP/1.1\r\nHost: test\r\n\r\n" % path).encode()


def closes(r):
    return "close" in r[1].get("connection", "").lower()


def states(b):
    fe = free_port()
    cfg = proxy_config(fe, [b.addr], workers=1,
                       timeouts={"grace": "10s", "keepalive": "30s", "client": "30s"})
    with Proxy(cfg, listen_port=fe, check_exit=False) as p:
        ka = raw_conn(fe)
        ka.sendall(get("/st/ka1"))
        res, how, _ = read_until(ka, 1)
        check(len(res) == 1 and res[0][0] == 200 and not closes(res[0]),
              "keep-alive warm-up: %r %s" % (res, how))
        fresh = raw_conn(fe)
        idle = raw_conn(fe)
        idle.sendall(get("/st/idle1"))
        check(len(read_until(idle, 1)[0]) == 1, "idle connection's warm-up request")
        pipe = raw_conn(fe)
        pipe.sendall(get("/st/pipe1?delay=800") + get("/st/pipe2"))
        dl = raw_conn(fe)
        dl.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        dl.sendall(get("/download?bytes=4000000"))
        dl.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            d = dl.recv(4096)
            check(d, "download: connection closed before the head")
            head += d
        wait_for(lambda: any("/st/pipe1" in l for l in b.log_lines()), timeout=5,
                 what="the pipelined request to reach the backend")
        t_term = time.monotonic()
        p.signal(signal.SIGTERM)
        time.sleep(0.1)
        ka.sendall(get("/st/ka2"))
        fresh.sendall(get("/st/fresh1"))

        # the download's client reads on and sends its next request at once
        dl.settimeout(10)
        buf = head
        while True:
            r2, rest = parse_responses(buf)
            if r2:
                break
            d = dl.recv(262144)
            check(d, "download cut short at %d bytes" % len(buf))
            buf += d
        check(r2[0][0] == 200 and len(r2[0][2]) == 4000000 and not closes(r2[0]),
              "download under way at the stop: status %s, %d body bytes, Connection: %s"
              % (r2[0][0], len(r2[0][2]), r2[0][1].get("connection")))
        dl.sendall(get("/st/dl2"))

        for name, c in (("keep-alive connection idle at the stop", ka),
                        ("connection accepted, nothing sent at the stop", fresh)):
            res, how, rest = read_until(c, None)
            check(len(res) == 1 and res[0][0] == 200 and closes(res[0]) and how == "eof"
                  and not rest, "%s, request sent 0.1s after SIGTERM: want one 200 with "
                  "Connection: close, then EOF; got %r, then %s (rest %r)"
                  % (name, [(r[0], r[1].get("connection")) for r in res], how, rest[:100]))

        res, how, rest = read_until(pipe, None)
        check(how == "eof" and len(res) == 1 and res[0][0] == 200 and closes(res[0]),
              "two pipelined requests, the first in flight at the stop: want its 200 with "
              "Connection: close, then EOF; got %r, then %s"
              % ([(r[0], r[1].get("connection")) for r in res], how))

        res, how, rest = read_until(dl, None)
        check(len(res) == 1 and res[0][0] == 200 and closes(res[0]) and how == "eof",
              "request after a response under way at the stop: want a 200 with Connection: "
              "close, then EOF; got %r, then %s" % ([(r[0], r[1].get("connection")) for r in res],
                                                   how))

        res, how, rest = read_until(idle, None, timeout=3.0)
        check(how == "eof" and not res and not rest,
              "connection idle through the stop: want EOF within 3s, got %s (%r)" % (how, res))
        log("idle connection closed %.2fs after SIGTERM" % (time.monotonic() - t_term))
        rc = p.wait(10)
        check(rc == 0, "proxy exit status %r (want 0 within 10s of the last request)" % rc)
        for c in (ka, fresh, idle, pipe, dl):
            c.close()


def main():
    random.seed(15)
    with Backend("b1", log=False) as b:
        results = [one_run(i, b) for i in range(RUNS)]
    for i, r in enumerate(results):
        check(r["rc"] == 0, "run %d: proxy exit status %r %.1fs after SIGTERM (want 0 within 5s); "
              "stderr tail:\n%s" % (i, r["rc"], r["t_exit"], r["stderr"]))
        check(not r["errors"], "run %d: client errors: %r" % (i, r["errors"][:5]))
        check(not r["open"], "run %d: connections still open after the proxy exited: %r"
              % (i, r["open"]))
        check(r["statuses"] == [200], "run %d: statuses %r (want only 200)" % (i, r["statuses"]))
    resets = sum(len(r["resets"]) for r in results)
    lost = sum(len(r["lost"]) for r in results)
    cut = sum(len(r["cut"]) for r in results)
    check(resets == 0 and lost == 0 and cut == 0,
          "over %d stops under %d keep-alive clients: %d resets, %d connections closed with a "
          "request sent and unanswered (no Connection: close before it), %d responses cut short "
          "(want 0 of each; per run: resets %r, unanswered %r)"
          % (RUNS, CLIENTS, resets, lost, cut, [len(r["resets"]) for r in results],
             [len(r["lost"]) for r in results]))
    with Backend("b2") as b:
        states(b)


if __name__ == "__main__":
    run(main)
