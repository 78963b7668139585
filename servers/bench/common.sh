# common.sh — what the server measurement scripts share (sourced).
# A scratch folder under /tmp for configs and logs, free ports, readiness,
# and a process's CPU ticks. Processes are stopped by PID by the callers.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRATCH=$(mktemp -d /tmp/server-bench.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
cpu_ticks() { awk '{print $14+$15}' /proc/$1/stat; } # utime+stime, 1/100 s
worker_of() { cat /proc/$1/task/$1/children; }       # the master's one worker
