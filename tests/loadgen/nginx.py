"""nginx for loadgen's tests (h2.py, openmodel.py, unix.py, tls.py): one
worker, no master, a temporary config with its pid, logs and temporary files
in the test's own folder, on free ports (or Unix sockets), started and stopped
by its PID. Standard library only."""
import os
import signal
import socket
import subprocess
import time

CONF = """worker_processes 1;
daemon off;
master_process off;
pid %(t)s/nginx.pid;
error_log %(t)s/error.log;
events { worker_connections 1024; }
http {
  client_body_temp_path %(t)s;
  proxy_temp_path %(t)s;
  fastcgi_temp_path %(t)s;
  uwsgi_temp_path %(t)s;
  scgi_temp_path %(t)s;
%(http)s
}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tmp, http, ports):
    """Starts nginx with http (the http block's directives and servers, %(t)s
    standing for tmp) in tmp and waits until every port (or Unix socket
    path) accepts connections (an h2c-only port speaks no HTTP/1: a
    connection is the test). The process, or None when it did not come up
    (it is stopped then)."""
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(CONF % {"t": tmp, "http": http % {"t": tmp}})
    p = subprocess.Popen(["nginx", "-p", tmp, "-c", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            for port in ports:
                if isinstance(port, int):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                else:
                    with socket.socket(socket.AF_UNIX) as s:
                        s.connect(port)
            return p
        except OSError:
            if p.poll() is not None:
                break
            time.sleep(0.05)
    stop(p)
    return None


def stop(p):
    """Stops what start() started, by its PID: gracefully, then for good."""
    if p.poll() is None:
        p.send_signal(signal.SIGQUIT)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
