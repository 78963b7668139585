#!/usr/bin/env bash
# measure.sh — the figures of servers/coro/README.md, reproducibly:
#   switch   coro-switch-bench (asm, ucontext, Boost.Context)
#   hello    hello req/s beside nginx (return 200), one worker each pinned to
#            CPU 0, wrk -t1 -c100 -d5s pinned to CPU 1, ROUNDS alternating runs
#   proxy    proxy app, upstream stub at 20 ms delay, concurrency 1..500,
#            against Little's bound c / 20 ms
#   idle     worker RSS with 10,000 idle keep-alive connections
#   h2       hello over HTTP/2: one worker on CPU 0, h2load -n 200000 -c 10
#            -m 100 on CPU 1, ROUNDS runs, and the worker's CPU per request
#
#   servers/coro/measure.sh BUILD_DIR [switch|hello|proxy|idle|h2|all] [ROUNDS]
#
# Needs wrk, nginx (for hello), h2load (for h2), taskset, python3. Every process it starts is
# stopped by its PID; ports are picked free; temporary files go under a
# mktemp directory.
set -euo pipefail

build=${1:?usage: measure.sh BUILD_DIR [switch|hello|proxy|idle|h2|all] [ROUNDS]}
what=${2:-all}
rounds=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
server=$build/servers/coro/coro-server
upstream=$build/servers/upstream/upstream
tmp=$(mktemp -d /tmp/coro-measure.XXXXXX)
pids=()

cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
	for _ in $(seq 100); do
		if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	echo "nothing listening on port $1" >&2
	return 1
}

rps() { # URL THREADS CONNECTIONS -> requests/s
	taskset -c 1 wrk -t"$2" -c"$3" -d5s "$1" | awk '/^Requests\/sec/ { print $2 }'
}

median() {
	sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

do_switch() {
	echo "== context switch"
	"$build/servers/coro/coro-switch-bench"
}

do_hello() {
	echo "== hello: coro-server vs nginx, 1 worker each on CPU 0, wrk -t1 -c100 -d5s on CPU 1"
	local np cp
	np=$(free_port)
	cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$np;
        location / { return 200 "Hello, World!"; }
    }
}
EOF
	taskset -c 0 nginx -p "$tmp" -c "$tmp/nginx.conf" &
	pids+=($!)
	cp=$(free_port)
	taskset -c 0 "$server" --listen "127.0.0.1:$cp" --workers 1 --app hello --quiet &
	pids+=($!)
	wait_port "$np"
	wait_port "$cp"
	: >"$tmp/nginx.rps"
	: >"$tmp/coro.rps"
	for r in $(seq "$rounds"); do
		n=$(rps "http://127.0.0.1:$np/" 1 100)
		c=$(rps "http://127.0.0.1:$cp/" 1 100)
		echo "$n" >>"$tmp/nginx.rps"
		echo "$c" >>"$tmp/coro.rps"
		echo "round $r: nginx $n req/s, coro-server $c req/s"
	done
	n=$(median <"$tmp/nginx.rps")
	c=$(median <"$tmp/coro.rps")
	echo "median: nginx $n req/s, coro-server $c req/s, ratio $(awk "BEGIN { printf \"%.2f\", $c / $n }")"
}

do_proxy() {
	echo "== proxy: upstream --delay-ms 20, coro-server on CPU 0, wrk and upstream on CPU 1"
	local up cp
	up=$(free_port)
	cp=$(free_port)
	taskset -c 1 "$upstream" --listen "127.0.0.1:$up" --delay-ms 20 --quiet &
	pids+=($!)
	taskset -c 0 "$server" --listen "127.0.0.1:$cp" --workers 1 --app proxy \
		--upstream "http://127.0.0.1:$up/" --worker-connections 1000 --quiet &
	pids+=($!)
	wait_port "$up"
	wait_port "$cp"
	printf '%6s %10s %10s %8s\n' c req/s bound "%bound"
	for c in 1 10 100 200 500; do
		t=$((c < 2 ? c : 2))
		: >"$tmp/p.rps"
		for _ in $(seq "$rounds"); do
			rps "http://127.0.0.1:$cp/" "$t" "$c" >>"$tmp/p.rps"
		done
		v=$(median <"$tmp/p.rps")
		b=$((c * 50))
		printf '%6d %10.1f %10d %7.1f%%\n' "$c" "$v" "$b" "$(awk "BEGIN { print 100 * $v / $b }")"
	done
}

do_idle() {
	echo "== RSS with 10,000 idle keep-alive connections"
	local cp
	ulimit -n 20000
	cp=$(free_port)
	taskset -c 0 "$server" --listen "127.0.0.1:$cp" --workers 1 --app hello \
		--worker-connections 12000 --keepalive-timeout 300 --quiet &
	local sp=$!
	pids+=($sp)
	wait_port "$cp"
	taskset -c 1 python3 "$here/idle_conns.py" --port "$cp" --count 10000 --pid "$sp" --hold 2
}

cpu_ticks() { # PID -> utime + stime of that process, in clock ticks
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

do_h2() {
	echo "== hello over h2: coro-server on CPU 0, h2load -n 200000 -c 10 -m 100 on CPU 1"
	local cp sp wp hz t0 t1 rps
	cp=$(free_port)
	taskset -c 0 "$server" --listen "127.0.0.1:$cp" --workers 1 --app hello --quiet &
	sp=$!
	pids+=($sp)
	wait_port "$cp"
	wp=$(cat "/proc/$sp/task/$sp/children")
	wp=${wp%% *}
	hz=$(getconf CLK_TCK)
	: >"$tmp/h2.rps"
	for r in $(seq "$rounds"); do
		t0=$(cpu_ticks "$wp")
		rps=$(taskset -c 1 h2load -n 200000 -c 10 -m 100 "http://127.0.0.1:$cp/" |
			awk '/^finished in/ { print $4 } /succeeded/ { if ($8 != 200000) print "FAILED" }')
		t1=$(cpu_ticks "$wp")
		echo "$rps" | head -1 >>"$tmp/h2.rps"
		echo "round $r: $(echo "$rps" | tr '\n' ' ')req/s, worker CPU $(awk "BEGIN { printf \"%.2f\", ($t1 - $t0) / $hz * 1e6 / 200000 }") us/request"
	done
	echo "median: $(median <"$tmp/h2.rps") req/s"
}

case $what in
switch) do_switch ;;
hello) do_hello ;;
proxy) do_proxy ;;
idle) do_idle ;;
h2) do_h2 ;;
all)
	do_switch
	do_hello
	do_proxy
	do_idle
	do_h2
	;;
*)
	echo "unknown measurement: $what" >&2
	exit 2
	;;
esac
