// go_server.go — the Go reference server: today's implicit style.
//
// net/http runs every request in a goroutine of its own, and the handler
// fetches the upstream with a plain blocking client.Get: the Go runtime parks
// the goroutine on its network poller and runs others meanwhile, as
// gunicorn's gevent worker does for a monkey-patched requests.get() and as
// servers/coro does for app_fetch(). The apps answer exactly what
// servers/app/apps answer, so scripts/bench verifies them the same way:
//
//	hello   "Hello, World!"
//	proxy   one upstream GET, its body back
//	fanout  ?n= (default 4, 1..64) upstream GETs at once, one goroutine each,
//	        their bodies concatenated in order
//
// A failed fetch answers 502 (connection failed or reset, malformed answer,
// upstream 5xx) or 504 (timed out) with the reason as the body, as the C
// apps do. Upstream connections are kept alive in one shared Transport sized
// like the C workers' libcurl pool: no cap on connections, up to 4096 idle
// ones kept. GOMAXPROCS (the environment) sets how many cores it uses; the
// scenarios set it to their worker count.
//
// Standard library only; scenarios/reference/go-build builds it offline.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const (
	maxFanout     = 64
	defaultFanout = 4
	// The C workers keep up to 4096 connections per libcurl multi handle
	// (servers/runtime/fetch.c, FETCH_MAXCONNECTS) and cap none.
	poolIdle = 4096
)

// fetchError is a failed upstream fetch: what to answer and why.
type fetchError struct {
	status int
	why    string
}

type server struct {
	upstream string
	client   *http.Client
}

func newClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		DialContext: (&net.Dialer{
			Timeout:   2 * time.Second, // the C workers' connect timeout
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        poolIdle,
		MaxIdleConnsPerHost: poolIdle,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// classify maps a client error to the C apps' answers (servers/app/app.c).
func classify(err error) *fetchError {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &fetchError{http.StatusGatewayTimeout, "upstream timed out"}
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return &fetchError{http.StatusBadGateway, "upstream connection failed"}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return &fetchError{http.StatusBadGateway, "upstream connection reset"}
	}
	return &fetchError{http.StatusBadGateway, "upstream sent a malformed answer"}
}

// fetch GETs the upstream and blocks this goroutine until the whole body is in.
func (s *server) fetch() ([]byte, *fetchError) {
	resp, err := s.client.Get(s.upstream)
	if err != nil {
		return nil, classify(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, classify(err)
	}
	if resp.StatusCode >= 500 {
		return nil, &fetchError{http.StatusBadGateway, "upstream answered with an error status"}
	}
	return body, nil
}

func answer(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func fail(w http.ResponseWriter, e *fetchError) {
	answer(w, e.status, []byte(e.why))
}

var helloBody = []byte("Hello, World!")

func (s *server) hello(w http.ResponseWriter, r *http.Request) {
	answer(w, http.StatusOK, helloBody)
}

func (s *server) proxy(w http.ResponseWriter, r *http.Request) {
	body, e := s.fetch()
	if e != nil {
		fail(w, e)
		return
	}
	answer(w, http.StatusOK, body)
}

// fanoutN reads ?n= as the C apps do (app_query_ulong): decimal digits only,
// else the default; then clamped to 1..64.
func fanoutN(r *http.Request) int {
	v := r.URL.Query().Get("n")
	n := defaultFanout
	if v != "" && len(v) <= 18 {
		if x, err := strconv.ParseUint(v, 10, 64); err == nil {
			n = int(x)
		}
	}
	if n < 1 {
		n = 1
	}
	if n > maxFanout {
		n = maxFanout
	}
	return n
}

func (s *server) fanout(w http.ResponseWriter, r *http.Request) {
	n := fanoutN(r)
	parts := make([][]byte, n)
	errs := make([]*fetchError, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer wg.Done()
			parts[i], errs[i] = s.fetch()
		}(i)
	}
	wg.Wait()
	total := 0
	for i := range parts {
		if errs[i] != nil {
			fail(w, errs[i])
			return
		}
		total += len(parts[i])
	}
	out := make([]byte, 0, total)
	for _, p := range parts {
		out = append(out, p...)
	}
	answer(w, http.StatusOK, out)
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("go_server: ")
	fs := flag.NewFlagSet("go_server", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "HOST:PORT to listen on")
	app := fs.String("app", "hello", "the app: hello, proxy or fanout")
	upstream := fs.String("upstream", "http://127.0.0.1:9000/", "what proxy and fanout fetch")
	timeoutMs := fs.Uint("upstream-timeout", 10000, "upstream fetch timeout, whole transfer, ms (then 504)")
	version := fs.Bool("version", false, "print the runtime's version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if *version {
		fmt.Printf("%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return
	}
	if fs.NArg() > 0 || *timeoutMs == 0 {
		fmt.Fprintf(os.Stderr, "go_server: unexpected argument or zero timeout\nTry 'go_server --help'.\n")
		os.Exit(2)
	}
	s := &server{upstream: *upstream, client: newClient(time.Duration(*timeoutMs) * time.Millisecond)}
	handlers := map[string]http.HandlerFunc{"hello": s.hello, "proxy": s.proxy, "fanout": s.fanout}
	h, ok := handlers[*app]
	if !ok {
		fmt.Fprintf(os.Stderr, "go_server: unknown app '%s' (known: hello proxy fanout)\nTry 'go_server --help'.\n", *app)
		os.Exit(2)
	}
	srv := &http.Server{
		Addr:              *listen,
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Second, // the C workers' --keepalive-timeout
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("cannot listen on %s: %v", *listen, err)
	}

	// SIGTERM or SIGINT: stop accepting, let requests in flight finish.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		log.Fatalf("serve: %v", err)
	case <-ctx.Done():
	}
	grace, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(grace); err != nil {
		log.Printf("shutdown: %v", err)
	}
}
