"""What loadgen's integration tests share: the binary (from $COROBENCH_BUILD,
with `--engine E` from the test's command line), running it, reading ab's
report figures, recording checks, free ports, the engine probe (77 when the
engine asked for is unusable here), and nginx started on a temporary
configuration and stopped by PID. Standard library only."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

BUILD = os.environ.get("COROBENCH_BUILD", ".")
LOADGEN = os.path.abspath(os.path.join(BUILD, "loadgen", "loadgen"))
ENGINE = sys.argv[sys.argv.index("--engine") + 1] if "--engine" in sys.argv else None
ENGINE_ARGS = ["--engine", ENGINE] if ENGINE else []
failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)[:900]))
    if not cond:
        failures.append(name)
    return cond


def lg(args, timeout=60, cwd=None, engine=True):
    """(exit status, stdout, stderr) of loadgen; -1 when it overran timeout."""
    try:
        p = subprocess.run([LOADGEN] + (ENGINE_ARGS if engine else []) + args,
                           capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        return -1, "", "(timed out)"
    return p.returncode, p.stdout, p.stderr


def figure(out, label):
    m = re.search(r"^%s:\s+(\d+)" % re.escape(label), out, re.M)
    return int(m.group(1)) if m else None


def figures(out):
    return {k: figure(out, k) for k in ("Complete requests", "Failed requests",
                                         "Keep-Alive requests", "HTML transferred",
                                         "Non-2xx responses", "Concurrency Level",
                                         "Document Length")}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(name):
    """The test's preamble: the binary is there, the engine usable. None to
    go on, else the exit status to return (1, or 77 for skipped)."""
    if not os.access(LOADGEN, os.X_OK):
        print("loadgen not built at", LOADGEN)
        return 1
    if ENGINE:
        rc, out, err = lg(["-n", "1", "http://127.0.0.1:1/"], timeout=30)
        if "unusable here" in err:
            print("%s: --engine %s unusable here: skipping" % (name, ENGINE))
            return 77
    return None


def finish():
    print("%d failed" % len(failures))
    return 1 if failures else 0


NGINX_CONF = """worker_processes 1;
daemon off;
master_process off;
pid %(t)s/nginx.pid;
error_log %(t)s/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path %(t)s;
  proxy_temp_path %(t)s;
  fastcgi_temp_path %(t)s;
  uwsgi_temp_path %(t)s;
  scgi_temp_path %(t)s;
%(servers)s
}
"""


def nginx_start(tmp, servers, wait_for):
    """nginx with the server blocks `servers` (text), its files in tmp; waits
    until every address of wait_for (ports, or Unix socket paths) accepts.
    The process, or None (no nginx, or it did not start: see tmp/error.log)."""
    if not shutil.which("nginx"):
        return None
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF % {"t": tmp, "servers": servers})
    p = subprocess.Popen(["nginx", "-p", tmp, "-c", conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            for a in wait_for:
                if isinstance(a, int):
                    socket.create_connection(("127.0.0.1", a), timeout=1).close()
                else:
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(a)
                    s.close()
            return p
        except OSError:
            if p.poll() is not None:
                break
            time.sleep(0.05)
    nginx_stop(p)
    return None


def stop(p, sig=signal.SIGTERM, grace=10):
    """Stops a process the test started, by its PID (killed after grace s)."""
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
    p.wait()


def nginx_stop(p):
    stop(p, signal.SIGQUIT)
