#!/usr/bin/env bash
# scale.sh: worker scaling, surgegate `workers = N` against HAProxy
# `nbthread N` and nginx `worker_processes N`, for N in $SCALE_WORKERS.
# Meant for a machine with many cores: the proxies are pinned to cores
# 0..7, the backend (nginx `return 200`) to 8..11 and wrk to 12..15 when
# there are at least 16 cores. Prints req/s, p50, p99 per proxy and N, the
# surgegate/HAProxy and surgegate/nginx ratios (median of rounds), as markdown.
#
# Usage: tests/bench/scale.sh [SURGEGATE_BINARY]
# Env: SCALE_WORKERS ("1 2 4 8"), SCALE_ROUNDS (3), SCALE_DURATION (8),
#      SCALE_CONNS (256), HAPROXY, NGINX, WRK (binaries; default from PATH).
set -u
SG=${1:-build/surgegate}
HAPROXY=${HAPROXY:-haproxy}
NGINX=${NGINX:-nginx}
WRK=${WRK:-wrk}
WORKERS=${SCALE_WORKERS:-"1 2 4 8"}
ROUNDS=${SCALE_ROUNDS:-3}
DUR=${SCALE_DURATION:-8}
CONNS=${SCALE_CONNS:-256}
tmp=$(mktemp -d /tmp/sg-scale.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.3
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

ulimit -n "$(ulimit -Hn)" 2>/dev/null
MAXC=$(( ($(ulimit -n) - 200) / 2 )); [ "$MAXC" -gt 20000 ] && MAXC=20000
ncpu=$(nproc)
if [ "$ncpu" -ge 16 ]; then
    PIN_PROXY="taskset -c 0-7"; PIN_BACK="taskset -c 8-11"; PIN_WRK="taskset -c 12-15"; WT=4
else
    PIN_PROXY=""; PIN_BACK=""; PIN_WRK=""; WT=2
fi
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)); }
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

B1=$(free_port); B2=$(free_port)
mkdir -p "$tmp/ngb"
cat >"$tmp/ngb/nginx.conf" <<NG
worker_processes 4;
daemon off;
pid $tmp/ngb/nginx.pid;
error_log $tmp/ngb/error.log;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $tmp/ngb; proxy_temp_path $tmp/ngb; fastcgi_temp_path $tmp/ngb;
  uwsgi_temp_path $tmp/ngb; scgi_temp_path $tmp/ngb;
  server { listen 127.0.0.1:$B1 reuseport; listen 127.0.0.1:$B2 reuseport; location / { return 200 "ok\n"; } } }
NG
$PIN_BACK "$NGINX" -e "$tmp/ngb/error.log" -p "$tmp/ngb" -c "$tmp/ngb/nginx.conf" & pids+=($!)
wait_port "$B1" || exit 1

start_proxy() { # kind workers port -> pid in $ppid
    local kind=$1 n=$2 port=$3 d="$tmp/$1-$2"
    mkdir -p "$d"
    case $kind in
    haproxy)
        cat >"$d/h.cfg" <<H
global
  nbthread $n
  maxconn $MAXC
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend f
  bind 127.0.0.1:$port
  default_backend b
backend b
  balance roundrobin
  server s1 127.0.0.1:$B1
  server s2 127.0.0.1:$B2
H
        $PIN_PROXY "$HAPROXY" -db -f "$d/h.cfg" >"$d/log" 2>&1 & ppid=$! ;;
    nginx)
        cat >"$d/n.conf" <<N
worker_processes $n;
daemon off;
pid $d/n.pid;
error_log $d/error.log;
events { worker_connections 20000; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $d; proxy_temp_path $d; fastcgi_temp_path $d; uwsgi_temp_path $d; scgi_temp_path $d;
  upstream b { server 127.0.0.1:$B1; server 127.0.0.1:$B2; keepalive 256; }
  server { listen 127.0.0.1:$port reuseport; location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
N
        $PIN_PROXY "$NGINX" -e "$d/error.log" -p "$d" -c "$d/n.conf" >"$d/log" 2>&1 & ppid=$! ;;
    surgegate)
        cat >"$d/s.conf" <<S
workers = $n;
timeouts = { connect = "4s"; http_request = "5s"; client = "30s"; server = "30s"; queue = "10s"; keepalive = "60s"; };
frontends = ( { name = "bench"; listen = "127.0.0.1:$port"; maxconn = 20000; default_pool = "b"; } );
pools = ( { name = "b"; max_idle = 256; health = { enabled = false; }; backends = ( { address = "127.0.0.1:$B1"; }, { address = "127.0.0.1:$B2"; } ); } );
S
        $PIN_PROXY "$SG" -c "$d/s.conf" >"$d/log" 2>&1 & ppid=$! ;;
    esac
    pids+=("$ppid")
    wait_port "$port"
}

run_wrk() { # port -> "rps p50 p99"
    $PIN_WRK "$WRK" -t"$WT" -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$1/" 2>/dev/null | awk '
        function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
        /Requests\/sec/ { rps=$2 }
        $1=="50%" { p50=ms($2) } $1=="99%" { p99=ms($2) }
        END { printf "%.0f %.2f %.2f\n", rps, p50, p99 }'
}
median() { sort -n | awk '{a[NR]=$1} END { if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }

echo "# scale.sh on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(date -u +%F)"
echo "# rounds $ROUNDS x ${DUR}s, wrk -t$WT -c$CONNS, proxy pinned: ${PIN_PROXY:-no}"
echo
echo "| workers | HAProxy req/s | nginx req/s | surgegate req/s | sg/HAProxy | sg/nginx | p99 ms HAProxy / nginx / surgegate |"
echo "|---|---|---|---|---|---|---|"
for n in $WORKERS; do
    declare -A R=() P=()
    for kind in haproxy nginx surgegate; do
        port=$(free_port); start_proxy "$kind" "$n" "$port" || exit 1
        DUR=2 run_wrk "$port" >/dev/null   # warm-up
        : >"$tmp/r"; : >"$tmp/p"
        for _ in $(seq 1 "$ROUNDS"); do
            read -r rps p50 p99 < <(run_wrk "$port")
            echo "$rps" >>"$tmp/r"; echo "$p99" >>"$tmp/p"
        done
        R[$kind]=$(median <"$tmp/r"); P[$kind]=$(median <"$tmp/p")
        kill "$ppid"; wait "$ppid" 2>/dev/null
    done
    awk -v n="$n" -v h="${R[haproxy]}" -v g="${R[nginx]}" -v s="${R[surgegate]}" \
        -v ph="${P[haproxy]}" -v pg="${P[nginx]}" -v ps="${P[surgegate]}" 'BEGIN {
        printf "| %s | %d | %d | %d | %.2f | %.2f | %s / %s / %s |\n", n, h, g, s, s/h, s/g, ph, pg, ps }'
done
