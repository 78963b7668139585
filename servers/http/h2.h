/* h2.h — the HTTP/2 server codec both workers share (cleartext, on
 * nghttp2). Like http1.h it never touches a socket: bytes in, requests out,
 * bytes out.
 *
 * One struct h2_session per connection. The worker feeds what it read to
 * h2_session_recv(); every stream whose request (headers and body) is
 * complete comes out through the on_request callback, with its own stream
 * id. The worker answers each stream with h2_session_respond(), at once from
 * the callback or later, in any order; h2_session_flush() appends the frames
 * to write to an http_obuf. Flow control, HPACK, SETTINGS, PING and the
 * protocol checks are nghttp2's.
 *
 * Callback rules: on_request and on_stream_close may call h2_session_respond,
 * h2_session_reset_stream and h2_session_goaway_graceful, but never
 * h2_session_recv, h2_session_flush, h2_session_upgrade or h2_session_free.
 *
 * Lifetime of a request: the views in the struct app_request given to
 * on_request stay valid until the stream is closed (on_stream_close has been
 * called) AND the worker has answered it (h2_session_respond or
 * h2_session_reset_stream, even a late one after a client reset), or until
 * h2_session_free. A worker that must keep the views while a handler still
 * runs after it answered should call h2_session_respond only when the
 * handler is done. A late respond on a reset stream sends nothing; it only
 * releases the storage.
 *
 * Limits and answers, as for HTTP/1.1 (the connection stays up, only the
 * stream is answered; the request never reaches on_request):
 *   header block over limits.http.max_header_bytes (name + value + 4 per
 *   field, pseudo-headers and trailers included, as HTTP/1.1 counts)   -> 431
 *   more than limits.http.max_headers header fields                    -> 431
 *   body (declared content-length or received) over max_body_bytes    -> 413
 *   :method CONNECT or TRACE / one no app serves (http_method_refusal) -> 405/501
 * A response sent before the request's body ended is followed by
 * RST_STREAM(NO_ERROR), which tells the client to stop sending (RFC 9113
 * 8.1). Malformed requests are reset by nghttp2 (PROTOCOL_ERROR); malformed
 * frames end the connection with GOAWAY.
 */
#ifndef COROBENCH_H2_H
#define COROBENCH_H2_H

#include "app.h"
#include "http1.h" /* struct http1_limits, struct http_obuf */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2_limits {
	struct http1_limits http; /* header block, header count, body: as HTTP/1.1 */
	uint32_t max_streams;     /* SETTINGS_MAX_CONCURRENT_STREAMS, default 100 */
};

/* http1_limits_default() and 100 streams. */
struct h2_limits h2_limits_default(void);

struct h2_callbacks {
	/* A stream's request is complete. Answer it exactly once with
	 * h2_session_respond or h2_session_reset_stream. Required. */
	void (*on_request)(void *user, int32_t stream_id, const struct app_request *req);
	/* A stream that was handed to on_request is closed: error_code 0
	 * (NGHTTP2_NO_ERROR) after its response went out, otherwise the
	 * RST_STREAM code (the client reset it: cancel its work) or the
	 * connection ending. Called once per on_request stream, never from
	 * h2_session_free. May be NULL. */
	void (*on_stream_close)(void *user, int32_t stream_id, uint32_t error_code);
};

struct h2_session;

/* A server session; queues the server's SETTINGS (the connection preface),
 * which the first h2_session_flush writes. limits NULL: the defaults.
 * Callbacks are copied; user is passed back to them. NULL out of memory. */
struct h2_session *h2_session_new(const struct h2_limits *limits, const struct h2_callbacks *cb,
                                  void *user);
/* Frees the session and every stream's storage; calls no callback. */
void h2_session_free(struct h2_session *s);

/* Feed bytes read from the client, starting with the client preface (on
 * the prior-knowledge path, feed the bytes h2_is_preface looked at too).
 * Completed requests are handed to on_request before this returns.
 * Returns 0, or -1 when the connection must be closed: a GOAWAY with the
 * error is queued; h2_session_flush it, write it, then close. */
int h2_session_recv(struct h2_session *s, const char *data, size_t len);

/* Answer stream_id: HEADERS (:status, content-type — NULL means
 * text/plain —, content-length, date, server) and the body as DATA, which
 * is copied. HEAD requests, 204 and 304 get no body; a status outside
 * 200..999 is sent as 500. Returns 0 when queued; -1 when the stream is
 * unknown, already answered or closed (a late answer after a client reset:
 * nothing is sent, the storage is released); -2 when the answer could not
 * be queued (out of memory): the stream is reset with INTERNAL_ERROR. */
int h2_session_respond(struct h2_session *s, int32_t stream_id, int status,
                       const char *content_type, const void *body, size_t len);

/* Reset stream_id with error_code (NGHTTP2_INTERNAL_ERROR = 2 on app
 * failure) instead of answering it. 0, or -1 when the stream is unknown or
 * already answered (closed streams are released as by a late respond). */
int h2_session_reset_stream(struct h2_session *s, int32_t stream_id, uint32_t error_code);

/* Serialize every pending frame and append it to out. 0, or -1 out of
 * memory (close the connection). */
int h2_session_flush(struct h2_session *s, struct http_obuf *out);

/* Graceful shutdown (SIGTERM): GOAWAY(NO_ERROR) naming the last stream
 * seen; streams up to it complete, newer ones are refused. When they are
 * done, h2_session_is_closed() turns true. 0, or -1 out of memory. */
int h2_session_goaway_graceful(struct h2_session *s);

/* Frames wait to be flushed. */
bool h2_session_want_write(const struct h2_session *s);
/* The session still expects bytes from the client. */
bool h2_session_want_read(const struct h2_session *s);
/* Neither: flush what is left (if anything), write it, close. */
bool h2_session_is_closed(const struct h2_session *s);
/* Streams handed to on_request and not yet closed. */
size_t h2_session_open_streams(const struct h2_session *s);
/* Streams handed to on_request and not yet answered (respond or reset):
 * the worker's handlers still running. When it is 0 while streams are open,
 * each of them waits on the client (for flow-control window to take its
 * answer, or for the rest of a body answered early): the connection is
 * idle as far as the server goes, and its read timeout should apply, or a
 * client that never opens its window holds the connection forever. */
size_t h2_session_unanswered_streams(const struct h2_session *s);

/* ---- detecting HTTP/2 on the HTTP/1.1 port ---- */

enum h2_preface {
	H2_PREFACE_NO = 0,  /* not HTTP/2 prior knowledge: parse as HTTP/1.1 */
	H2_PREFACE_PARTIAL, /* a prefix of the preface: read more, then ask again */
	H2_PREFACE_YES,     /* the 24-byte client preface starts data */
};

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

/* Look at the first bytes of a connection. */
enum h2_preface h2_is_preface(const char *data, size_t len);

/* The h2c upgrade (RFC 7540 3.2): true when req is an HTTP/1.1 request
 * asking for it (Upgrade lists "h2c", exactly one HTTP2-Settings header);
 * *settings is then that header's value (still base64url). */
bool h2_upgrade_request(const struct app_request *req, struct app_str *settings);

/* What the worker writes, in HTTP/1.1, before the first flush of an
 * upgraded session. */
#define H2_UPGRADE_RESPONSE                                                                        \
	"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"

/* Turn a fresh session (nothing received or flushed yet) into the upgraded
 * one: apply the client's HTTP2-Settings (base64url, as sent) and make
 * stream 1 out of req, which is copied (req's views may die after this
 * returns) and handed to on_request before this returns. Returns 0; -1 when
 * the settings are malformed or memory ran out: free the session, and
 * answer the request in HTTP/1.1 as if it had asked for no upgrade.
 * On 0, append H2_UPGRADE_RESPONSE to the output buffer, then
 * h2_session_flush into it; the client then sends its preface, which goes
 * to h2_session_recv like any input. */
int h2_session_upgrade(struct h2_session *s, struct app_str settings,
                       const struct app_request *req);

#endif
