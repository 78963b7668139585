'use strict';
// node_server.js — the Node.js reference server: today's explicit style.
//
// One process, one event loop (libuv). A request's handler is an async
// function; every upstream call is an explicit promise it awaits, as a
// uWSGI + grequests app spawns its call and servers/async answers from the
// callback of app_fetch_async(). The apps answer exactly what
// servers/app/apps answer, so scripts/bench verifies them the same way:
//
//   hello   "Hello, World!"
//   proxy   one upstream GET, its body back
//   fanout  ?n= (default 4, 1..64) upstream GETs at once (Promise.all),
//           their bodies concatenated in order
//
// A failed fetch answers 502 (connection failed or reset, malformed answer,
// upstream 5xx) or 504 (timed out) with the reason as the body, as the C
// apps do. Upstream connections are kept alive by one http.Agent sized like
// the C workers' libcurl pool: no cap on sockets, up to 4096 idle ones kept.
//
//   node node_server.js --listen HOST:PORT --app NAME --upstream URL
//                       [--upstream-timeout MS] [--version] [--help]

const http = require('http');

const MAX_FANOUT = 64;
const DEFAULT_FANOUT = 4;
const POOL_IDLE = 4096; // servers/runtime/fetch.c, FETCH_MAXCONNECTS

const FLAGS = [
  ['listen', 'HOST:PORT', '127.0.0.1:8080', 'where to listen'],
  ['app', 'NAME', 'hello', 'the app: hello, proxy or fanout'],
  ['upstream', 'URL', 'http://127.0.0.1:9000/', 'what proxy and fanout fetch'],
  ['upstream-timeout', 'MS', '10000', 'upstream timeout, ms without progress (then 504)'],
];

function usage(msg) {
  process.stderr.write(`node_server: ${msg}\nTry 'node_server.js --help'.\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {};
  for (const [name, , def] of FLAGS) opts[name] = def;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help') {
      const lines = FLAGS.map(([n, m, d, h]) => `  --${n} ${m}`.padEnd(28) + `${h} (default ${d})`);
      process.stdout.write('usage: node node_server.js [flags]\n' + lines.join('\n') +
        '\n  --version'.padEnd(29) + 'print the runtime\'s version and exit\n');
      process.exit(0);
    }
    if (a === '--version') {
      process.stdout.write(`Node.js ${process.version}, libuv ${process.versions.uv}\n`);
      process.exit(0);
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m || !(m[1] in opts)) usage(`unknown flag '${a}'`);
    let v = m[2];
    if (v === undefined) {
      if (i + 1 >= argv.length) usage(`--${m[1]} needs a value`);
      v = argv[++i];
    }
    opts[m[1]] = v;
  }
  const ms = Number(opts['upstream-timeout']);
  if (!Number.isInteger(ms) || ms < 1) usage(`bad --upstream-timeout '${opts['upstream-timeout']}'`);
  opts.timeoutMs = ms;
  const lm = /^(.*):(\d+)$/.exec(opts.listen);
  if (!lm) usage(`bad --listen '${opts.listen}' (HOST:PORT)`);
  opts.host = lm[1].replace(/^\[(.*)\]$/, '$1') || '0.0.0.0';
  opts.port = Number(lm[2]);
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: POOL_IDLE });

class FetchError extends Error {
  constructor(status, why) {
    super(why);
    this.status = status;
  }
}

// The C apps' answers for a failed fetch (servers/app/app.c).
function classify(err) {
  if (err instanceof FetchError) return err;
  switch (err && err.code) {
    case 'ECONNREFUSED': case 'EHOSTUNREACH': case 'ENETUNREACH': case 'ENOTFOUND':
    case 'EADDRNOTAVAIL':
      return new FetchError(502, 'upstream connection failed');
    case 'ECONNRESET': case 'EPIPE': case 'ECONNABORTED':
      return new FetchError(502, 'upstream connection reset');
    default:
      return new FetchError(502, 'upstream sent a malformed answer');
  }
}

// One upstream GET as a promise of its body.
function fetchUpstream(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: opts.timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', (err) => reject(classify(err)));
      res.on('end', () => {
        if (res.statusCode >= 500) {
          reject(new FetchError(502, 'upstream answered with an error status'));
        } else {
          resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
        }
      });
    });
    req.on('timeout', () => req.destroy(new FetchError(504, 'upstream timed out')));
    req.on('error', (err) => reject(classify(err)));
  });
}

function answer(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
}

const HELLO = Buffer.from('Hello, World!');

// ?n= read as the C apps do (app_query_ulong): decimal digits only, else the
// default; then clamped to 1..64.
function fanoutN(url) {
  const q = url.indexOf('?');
  const v = q < 0 ? null : new URLSearchParams(url.slice(q + 1)).get('n');
  let n = v && v.length <= 18 && /^[0-9]+$/.test(v) ? Number(v) : DEFAULT_FANOUT;
  return Math.min(Math.max(n, 1), MAX_FANOUT);
}

const apps = {
  async hello(req, res) {
    answer(res, 200, HELLO);
  },
  async proxy(req, res) {
    answer(res, 200, await fetchUpstream(opts.upstream));
  },
  async fanout(req, res) {
    const n = fanoutN(req.url);
    const calls = [];
    for (let i = 0; i < n; i++) calls.push(fetchUpstream(opts.upstream));
    answer(res, 200, Buffer.concat(await Promise.all(calls)));
  },
};

if (!Object.prototype.hasOwnProperty.call(apps, opts.app)) {
  usage(`unknown app '${opts.app}' (known: hello proxy fanout)`);
}
const app = apps[opts.app];

const server = http.createServer((req, res) => {
  app(req, res).catch((err) => {
    if (!(err instanceof FetchError)) {
      process.stderr.write(`node_server: ${err && err.stack}\n`);
      err = new FetchError(500, 'internal error');
    }
    answer(res, err.status, Buffer.from(err.message));
  });
});
server.keepAliveTimeout = 5000; // the C workers' --keepalive-timeout
server.on('error', (err) => {
  process.stderr.write(`node_server: cannot listen on ${opts.listen}: ${err.message}\n`);
  process.exit(1);
});
server.listen({ host: opts.host, port: opts.port, backlog: 4096 });

// SIGTERM or SIGINT: stop accepting, let requests in flight finish (5 s at most).
function stop() {
  server.close(() => process.exit(0));
  if (server.closeIdleConnections) server.closeIdleConnections();
  setTimeout(() => process.exit(0), 5000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
