#!/bin/bash
# proxy.sh BUILD ["async coro coro-async"] [SECS] — the proxy apps against the
# upstream stub at 20 ms, at concurrency 1 10 100 200 500, against Little's
# bound C / 20 ms. Server (one worker) on CPU 0; wrk and the upstream on
# CPU 1. Also prints the worker's CPU use during each run.
#   async       async-server --app proxy-async
#   coro        coro-server  --app proxy        (its natural, blocking style)
#   coro-async  coro-server  --app proxy-async
set -u
. "$(dirname "$0")/common.sh"
B=$1
WHICH=${2:-async coro coro-async}
D=${3:-5}
uport=$(freeport)
taskset -c 1 "$B/servers/upstream/upstream" --listen 127.0.0.1:$uport --delay-ms 20 --size 64 >/dev/null &
up=$!
wait_port $uport
common=(--workers 1 --upstream http://127.0.0.1:$uport/ --quiet)
for name in $WHICH; do
	port=$(freeport)
	case $name in
	async) cmd=("$B/servers/async/async-server" --app proxy-async) ;;
	coro) cmd=("$B/servers/coro/coro-server" --app proxy --worker-connections 2000) ;;
	coro-async) cmd=("$B/servers/coro/coro-server" --app proxy-async --worker-connections 2000) ;;
	esac
	taskset -c 0 "${cmd[@]}" "${common[@]}" --listen 127.0.0.1:$port 2>/dev/null &
	pid=$!
	wait_port $port
	w=$(worker_of $pid)
	for c in 1 10 100 200 500; do
		taskset -c 1 wrk -t1 -c$c -d1s http://127.0.0.1:$port/ >/dev/null
		c0=$(cpu_ticks $w)
		out=$(taskset -c 1 wrk -t1 -c$c -d${D}s http://127.0.0.1:$port/)
		c1=$(cpu_ticks $w)
		rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
		err=$(echo "$out" | grep -E "Non-2xx|Socket errors" | tr '\n' ' ')
		echo "$name c=$c rps=$rps bound=$((c * 50)) pct=$(echo "scale=1; 100*$rps/($c*50)" | bc)" \
			"worker_cpu=$(echo "scale=0; ($c1-$c0)/$D" | bc)% $err"
	done
	kill $pid
	wait $pid 2>/dev/null
done
kill $up
wait $up 2>/dev/null
