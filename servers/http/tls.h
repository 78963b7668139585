/* tls.h — TLS as a transport under the codecs (OpenSSL), shared by both
 * workers. Like http1.h and h2.h it never touches a socket: ciphertext
 * read from the peer goes in (tls_conn_feed), plaintext comes out
 * (tls_conn_read) and goes to the codecs as if it had been read; the
 * codecs' answers go in (tls_conn_write) and ciphertext to send comes out
 * (tls_conn_out). The handshake runs inside tls_conn_read: its records
 * appear in the output, which the worker must send whenever it is not
 * empty. ALPN offers h2 and http/1.1; the worker needs no ALPN result, since
 * an h2 client's first bytes are the HTTP/2 preface, which the worker core
 * recognises as it does in cleartext.
 *
 * A worker that serves no TLS never calls any of this: the cleartext path
 * is what it was (a connection's tls is NULL).
 */
#ifndef COROBENCH_TLS_H
#define COROBENCH_TLS_H

#include "obuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* One per server: certificate chain and key (PEM files), their match
 * checked, TLS 1.2 and later, ALPN h2 and http/1.1. NULL with a one-line
 * reason in why ("--tls-cert FILE: no such file", "... does not match")
 * for main() to print. Load it before forking; the workers share it. */
struct tls_server;
struct tls_server *tls_server_new(const char *cert_file, const char *key_file, char *why,
                                  size_t whylen);
void tls_server_free(struct tls_server *s);

/* One per connection. NULL out of memory. */
struct tls_conn;
struct tls_conn *tls_conn_new(struct tls_server *s);
void tls_conn_free(struct tls_conn *t);

enum {
	TLS_CLOSED = -2, /* the peer's close_notify: the end of its input */
	TLS_FAILED = -1, /* a protocol error or out of memory: close the connection */
};

/* Ciphertext read from the peer (copied). 0, or -1 out of memory. */
int tls_conn_feed(struct tls_conn *t, const void *data, size_t len);
/* Plaintext into buf, as much as cap holds: the bytes (> 0), 0 when more
 * ciphertext is needed (the handshake may have moved on: send the
 * output), TLS_CLOSED or TLS_FAILED. */
ssize_t tls_conn_read(struct tls_conn *t, void *buf, size_t cap);
/* The last tls_conn_read filled its buffer: more plaintext may wait inside,
 * to be read before waiting for the socket. */
bool tls_conn_more(const struct tls_conn *t);
/* Encrypt plaintext into the output. 0, or -1 (out of memory, or the
 * connection failed). */
int tls_conn_write(struct tls_conn *t, const void *data, size_t len);
/* Queue close_notify (after the last answer, before closing). */
void tls_conn_close_notify(struct tls_conn *t);
/* The ciphertext to send, in order; consume what was sent
 * (http_obuf_consume). */
struct http_obuf *tls_conn_out(struct tls_conn *t);

#endif
