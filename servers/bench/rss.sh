#!/bin/bash
# rss.sh BUILD — worker VmRSS with 10,000 idle keep-alive connections,
# async-server then coro-server, one worker on CPU 0, the client
# (idle_conns.py) on CPU 1.
set -u
. "$(dirname "$0")/common.sh"
B=$1
ulimit -n 20000
for name in async coro; do
	port=$(freeport)
	case $name in
	async) cmd=("$B/servers/async/async-server") ;;
	coro)
		[ -x "$B/servers/coro/coro-server" ] || continue
		cmd=("$B/servers/coro/coro-server" --worker-connections 11000)
		;;
	esac
	taskset -c 0 "${cmd[@]}" --listen 127.0.0.1:$port --workers 1 --app hello \
		--keepalive-timeout 120 --quiet 2>/dev/null &
	pid=$!
	wait_port $port
	echo "== $name"
	taskset -c 1 python3 "$HERE/idle_conns.py" --port $port --count 10000 --pid $pid --hold 2
	kill $pid
	wait $pid 2>/dev/null
done
