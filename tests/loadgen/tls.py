#!/usr/bin/env python3
"""loadgen over https:// (TLS on OpenSSL, tls.c) against nginx with
self-signed certificates made here with the openssl command.

Beside the real ab (apache2-utils), with the same options against the same
nginx: the same report lines with the same deterministic figures, ab's TLS
lines word for word ("SSL/TLS Protocol", "Server Temp Key", "TLS Server
Name"), the same exit status, for plain runs, -k, HEAD, POST, -f, -Z (TLS 1.2
ciphers and TLS 1.3 suites), -I, -H Host: (the server name sent), an address
as host (no server name), Non-2xx, a client certificate (-E) that nginx
requires, and a bad -Z. loadgen alone: the same report over https as over
http to the same server, --threads, --pipeline, --json's "tls", HTTP/2 over
TLS chosen by ALPN (--h2), a server that does not offer h2, a handshake that
fails (a version the server refuses, plain HTTP on the port), and https over
--unix. Skipped (77) without nginx or openssl; the ab comparisons are
skipped without ab. `--engine E` runs on that event loop."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compat  # noqa: E402  (its normalize(): the report without timings)
import nginx  # noqa: E402
from harness import LOADGEN, check, figures, finish, free_port, lg, start  # noqa: E402

AB = shutil.which("ab")
TLS_LINES = ("SSL/TLS Protocol:", "Server Temp Key:", "TLS Server Name:")


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_certs(d):
    """A self-signed RSA server certificate, an EC one, and a CA with a
    client certificate signed by it (client.pem: chain and key, as -E takes)."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa.key", "-out",
            "rsa.crt", "-days", "2", "-subj", "/CN=localhost", cwd=d)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ec.key", "-out", "ec.crt", "-days", "2", "-subj", "/CN=localhost", cwd=d)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "2", "-subj", "/CN=test CA", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out",
            "client.csr", "-subj", "/CN=client", cwd=d)
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "client.crt", "-days", "2", cwd=d)
    with open(os.path.join(d, "client.pem"), "w") as f:
        f.write(open(os.path.join(d, "client.crt")).read() + open(os.path.join(d, "client.key")).read())


SERVERS = """  access_log off;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:%(plain)d;
    listen 127.0.0.1:%(tls)d ssl;
    listen unix:%(sock)s ssl;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate %(d)s/rsa.crt;
    ssl_certificate_key %(d)s/rsa.key;
    location / { return 200 "hello over tls\\n"; }
    location /missing { return 404; }
  }
  server {
    listen 127.0.0.1:%(h2)d ssl http2;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate %(d)s/ec.crt;
    ssl_certificate_key %(d)s/ec.key;
    location / { return 200 "hello over h2\\n"; }
  }
  server {
    listen 127.0.0.1:%(mtls)d ssl;
    ssl_protocols TLSv1.2;
    ssl_certificate %(d)s/rsa.crt;
    ssl_certificate_key %(d)s/rsa.key;
    ssl_verify_client on;
    ssl_client_certificate %(d)s/ca.crt;
    location / { return 200 "hello, client\\n"; }
  }
"""


def tls_lines(out):
    return [ln for ln in out.splitlines() if ln.startswith(TLS_LINES)]


def versus_ab(name, args, url):
    """ab and loadgen with the same options: the same report and exit."""
    ra = subprocess.run([AB] + args + [url], capture_output=True, text=True, timeout=60)
    rc, out, err = lg(args + [url])
    na, nl = compat.normalize(ra.stdout, AB), compat.normalize(out, LOADGEN)
    ok = ra.returncode == rc and na == nl and tls_lines(ra.stdout) == tls_lines(out)
    detail = ""
    if not ok:
        import difflib
        detail = "exit ab %d loadgen %d\n%s\n%s" % (
            ra.returncode, rc, "\n".join(difflib.unified_diff(na, nl, "ab", "loadgen", lineterm="")),
            (tls_lines(ra.stdout), tls_lines(out), err[-300:]))
    check("as ab: %s" % name, ok, detail)
    return out


def main():
    skip = start("tls")
    if skip is not None:
        return skip
    if not shutil.which("nginx") or not shutil.which("openssl"):
        print("tls: nginx or openssl missing: skipping")
        return 77
    d = tempfile.mkdtemp(prefix="loadgen-tls-")
    make_certs(d)
    ports = {k: free_port() for k in ("plain", "tls", "h2", "mtls")}
    sock = os.path.join(d, "tls.sock")
    ng = nginx.start(d, SERVERS % dict(ports, d=d, sock=sock),
                     [ports["plain"], ports["tls"], ports["h2"], ports["mtls"], sock])
    if ng is None:
        print("tls: nginx did not start (see its error.log): skipping")
        shutil.rmtree(d, ignore_errors=True)
        return 77
    url = "https://localhost:%d/" % ports["tls"]
    try:
        post = os.path.join(d, "post.txt")
        with open(post, "w") as f:
            f.write("a=1&b=" + "z" * 300)
        if AB:
            out = versus_ab("plain", ["-n", "50"], url)
            check("the TLS lines are there", len(tls_lines(out)) == 3
                  and "TLS Server Name:        localhost" in out, tls_lines(out))
            versus_ab("keep-alive", ["-k", "-n", "500", "-c", "5"], url)
            versus_ab("HEAD", ["-n", "20", "-i"], url)
            versus_ab("POST", ["-n", "20", "-p", post, "-T", "application/x-www-form-urlencoded"],
                      url)
            versus_ab("-f TLS1.2", ["-n", "20", "-f", "TLS1.2"], url)
            versus_ab("-f TLS1.2 -Z", ["-n", "20", "-f", "TLS1.2", "-Z",
                                       "ECDHE-RSA-AES128-GCM-SHA256"], url)
            out = versus_ab("-f TLS1.3 -Z", ["-n", "20", "-f", "TLS1.3", "-Z",
                                             "TLS_CHACHA20_POLY1305_SHA256"], url)
            check("-f TLS1.3 -Z: that suite", "TLSv1.3,TLS_CHACHA20_POLY1305_SHA256," in out,
                  tls_lines(out))
            out = versus_ab("-I: no server name", ["-n", "20", "-I"], url)
            check("-I: no TLS Server Name line", "TLS Server Name" not in out, tls_lines(out))
            out = versus_ab("-H Host: is the server name", ["-n", "20", "-H", "Host: example.test"],
                            url)
            check("-H Host: names the server", "TLS Server Name:        example.test" in out,
                  tls_lines(out))
            out = versus_ab("an address: no server name", ["-n", "20"],
                            "https://127.0.0.1:%d/" % ports["tls"])
            check("an address: no TLS Server Name line", "TLS Server Name" not in out,
                  tls_lines(out))
            versus_ab("Non-2xx", ["-k", "-n", "30"], url + "missing")
            mtls = "https://localhost:%d/" % ports["mtls"]
            out = versus_ab("-E: the client certificate nginx requires",
                            ["-n", "10", "-E", os.path.join(d, "client.pem")], mtls)
            check("-E: answered", figures(out)["Non-2xx responses"] is None
                  and figures(out)["Complete requests"] == 10, out[-400:])
            out = versus_ab("no -E: nginx says 400", ["-n", "10"], mtls)
            check("no -E: Non-2xx", figures(out)["Non-2xx responses"] == 10, out[-400:])
            ra = subprocess.run([AB, "-n", "5", "-Z", "bogus", url], capture_output=True, text=True)
            rc, out, err = lg(["-n", "5", "-Z", "bogus", url])
            check("a bad -Z as ab", rc == ra.returncode == 1
                  and err.startswith("error setting ciphersuite list [bogus]")
                  and ra.stderr.startswith("error setting ciphersuite list [bogus]"), (rc, err))
        else:
            print("skip the ab comparisons: ab not installed")

        # the same report over https as over http (but its TLS lines)
        for args in (["-n", "200", "-c", "4"], ["-k", "-n", "2000", "-c", "8"],
                     ["-k", "--http1.1", "-n", "1000", "-c", "4"]):
            rc_p, out_p, _ = lg(args + ["http://localhost:%d/" % ports["plain"]])
            rc_t, out_t, err_t = lg(args + [url])
            strip = lambda o: [ln for ln in compat.normalize(o, LOADGEN)  # noqa: E731
                               if not ln.startswith(TLS_LINES + ("Server Port",))]
            check("https reports as http: %s" % " ".join(args),
                  rc_p == rc_t == 0 and strip(out_p) == strip(out_t)
                  and figures(out_t)["Failed requests"] == 0, (out_t[-600:], err_t[-300:]))

        rc, out, err = lg(["-k", "--threads", "2", "-n", "2000", "-c", "4", url])
        f = figures(out)
        check("--threads 2", rc == 0 and f["Complete requests"] == 2000 and f["Failed requests"] == 0
              and f["Keep-Alive requests"] == 2000, (rc, f, err[-300:]))
        rc, out, err = lg(["-k", "--pipeline", "8", "-n", "2000", "-c", "4", url])
        f = figures(out)
        check("--pipeline 8", rc == 0 and f["Complete requests"] == 2000 and f["Failed requests"] == 0
              and f["HTML transferred"] == 2000 * 15, (rc, f, err[-300:]))
        jf = os.path.join(d, "r.json")
        rc, out, err = lg(["-q", "-n", "20", "--json", jf, url])
        doc = json.load(open(jf))
        want = re.search(r"^SSL/TLS Protocol:\s+(.*)$", out, re.M)
        check("--json's tls", rc == 0 and want and doc.get("tls", {}).get("protocol") == want.group(1)
              and doc["tls"]["server_temp_key"], doc.get("tls"))

        # HTTP/2 over TLS: h2 chosen by ALPN
        h2url = "https://localhost:%d/" % ports["h2"]
        for args in (["-n", "1000", "-c", "2"], ["-n", "2000", "-c", "2", "--streams", "20"]):
            rc, out, err = lg(["--h2"] + args + [h2url])
            f = figures(out)
            check("--h2 over TLS %s" % " ".join(args), rc == 0 and f["Complete requests"] == int(args[1])
                  and f["Failed requests"] == 0 and f["HTML transferred"] == 14 * int(args[1])
                  and re.search(r"^SSL/TLS Protocol:\s+TLSv1\.[23],\S+,256,", out, re.M),
                  (rc, f, tls_lines(out), err[-300:]))
        rc, out, err = lg(["--h2", "-n", "10", url])
        check("--h2 to a server without h2: refused by ALPN", rc == 71
              and "did not choose h2 by ALPN" in err, (rc, err[-300:]))

        # failed handshakes: OpenSSL's reason, exit status 71 (EPROTO)
        rc, out, err = lg(["-n", "5", "-f", "TLS1.3", "https://localhost:%d/" % ports["mtls"]])
        check("a version the server refuses", rc == 71 and "SSL/TLS failed: " in err
              and "protocol version" in err, (rc, err[-300:]))
        rc, out, err = lg(["-n", "5", "https://localhost:%d/" % ports["plain"]])
        check("plain HTTP on the port", rc == 71 and "SSL/TLS failed: " in err, (rc, err[-300:]))
        rc, out, err = lg(["-r", "-n", "6", "https://localhost:%d/" % ports["plain"]])
        f = figures(out)
        check("with -r, counted", rc == 0 and f["Complete requests"] == 6 and f["Failed requests"] > 0,
              (rc, f, err[-300:]))

        # https over a Unix socket
        rc, out, err = lg(["-k", "-n", "500", "-c", "4", "--unix", sock, url])
        f = figures(out)
        check("https over --unix", rc == 0 and f["Complete requests"] == 500
              and f["Failed requests"] == 0 and len(tls_lines(out)) == 3, (rc, f, err[-300:]))
    finally:
        nginx.stop(ng)
        shutil.rmtree(d, ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
