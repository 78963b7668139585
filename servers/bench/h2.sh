#!/bin/bash
# h2.sh BUILD [ROUNDS] ["async coro"] — hello over cleartext HTTP/2: each
# server's one worker pinned to CPU 0, `h2load -n 200000 -c 10 -m 100` (10 connections,
# 100 concurrent streams each) pinned to CPU 1 after a 20,000-request
# warm-up. For reference, the same server over HTTP/1.1 with the same client
# and the same 1,000 requests in flight (`h2load --h1 -n 200000 -c 1000`, no
# pipelining). Prints "NAME REQ/S US_CPU_PER_REQUEST" per run; pipe into
# median.py.
set -u
. "$(dirname "$0")/common.sh"
B=$1
R=${2:-5}
WHICH=${3:-async coro}
run() { # KIND NAME H2LOAD-ARGS...
	local kind=$1 name=$2 port pid wpid
	shift 2
	port=$(freeport)
	taskset -c 0 "$B/servers/$kind/$kind-server" --listen 127.0.0.1:$port --workers 1 \
		--app hello --quiet 2>/dev/null &
	pid=$!
	wait_port $port
	wpid=$(worker_of $pid)
	taskset -c 1 h2load "$@" -n 20000 http://127.0.0.1:$port/ >/dev/null
	local c0 c1 out
	c0=$(cpu_ticks $wpid)
	out=$(taskset -c 1 h2load "$@" -n 200000 http://127.0.0.1:$port/)
	c1=$(cpu_ticks $wpid)
	kill $pid
	wait $pid 2>/dev/null
	local rps ok
	rps=$(echo "$out" | awk '/^finished in/{print $4}')
	ok=$(echo "$out" | awk '/^requests:/{print $8}')
	[ "$ok" = 200000 ] || echo "# $name: only $ok of 200000 succeeded: $(echo "$out" | grep -E "^requests:|^status")" >&2
	echo "$name $rps $(echo "scale=2; ($c1-$c0)*10000/200000" | bc)"
}
for _ in $(seq "$R"); do
	for k in $WHICH; do
		run "$k" "$k-h2" -c 10 -m 100
		run "$k" "$k-h1" --h1 -c 1000 -m 1
	done
done
