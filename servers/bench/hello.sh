#!/bin/bash
# hello.sh BUILD [ROUNDS] — hello req/s and server CPU per request for
# async-server, coro-server (when built) and nginx (return 200), one worker
# pinned to CPU 0, `wrk -t1 -c100 -d5s` pinned to CPU 1 after a 1 s warm-up,
# the servers interleaved. Prints "NAME REQ/S US_CPU_PER_REQUEST" per run;
# pipe into median.py.
set -u
. "$(dirname "$0")/common.sh"
B=$1
R=${2:-5}
run() { # NAME CMD...
	local name=$1 port pid wpid
	shift
	port=$(freeport)
	if [ "$name" = nginx ]; then
		cat >"$SCRATCH/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process off;
pid $SCRATCH/nginx.pid;
error_log $SCRATCH/nginx-error.log;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$port; location / { return 200 "Hello, World!"; } }
}
CONF
		taskset -c 0 nginx -c "$SCRATCH/nginx.conf" -e "$SCRATCH/nginx-error.log" &
		pid=$!
	else
		taskset -c 0 "$@" --listen 127.0.0.1:$port --workers 1 --app hello --quiet 2>/dev/null &
		pid=$!
	fi
	wait_port $port
	if [ "$name" = nginx ]; then wpid=$pid; else wpid=$(worker_of $pid); fi
	taskset -c 1 wrk -t1 -c100 -d1s http://127.0.0.1:$port/ >/dev/null
	local c0 c1 out
	c0=$(cpu_ticks $wpid)
	out=$(taskset -c 1 wrk -t1 -c100 -d5s http://127.0.0.1:$port/)
	c1=$(cpu_ticks $wpid)
	kill $pid
	wait $pid 2>/dev/null
	local rps n
	rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
	n=$(echo "$out" | awk '/requests in/{print $1}')
	echo "$name $rps $(echo "scale=2; ($c1-$c0)*10000/$n" | bc)"
}
for _ in $(seq "$R"); do
	run async "$B/servers/async/async-server"
	[ -x "$B/servers/coro/coro-server" ] && run coro "$B/servers/coro/coro-server"
	run nginx
done
