/* tls: TLS (OpenSSL) as a transport between a protocol driver and the
 * event loop's back end (ev.h), for https:// URLs, over memory BIOs so that
 * it runs the same on epoll and io_uring.
 *
 * tls_attach() puts a third ev_io table on a socket just opened: the driver
 * keeps calling ev_send() and ev_recv() and being told on_event()/on_sent(),
 * and sees plaintext; underneath, ev_send() becomes SSL_write() into one BIO
 * whose ciphertext goes to the back end's send, and whatever the back end
 * receives is fed to the other BIO and read back with SSL_read(). The
 * driver is told EV_WRITE ("connected") once the handshake is over (its
 * first request then leaves in the same segment as the client's Finished);
 * a failed handshake is an EV_ERR whose ev_sock_error() is EPROTO, with
 * OpenSSL's reason in tls_last_error(). As ab does, the server's certificate
 * is not verified (a benchmark talks to a test server, often self-signed)
 * and sessions are not resumed: each connection makes a full handshake. */
#ifndef LOADGEN_TLS_H
#define LOADGEN_TLS_H

#include <stddef.h>

#include "ev.h"

/* ab's -f: which protocol versions may be negotiated. */
enum tls_proto { TLS_ALL, TLS_1_0, TLS_1_1, TLS_1_2, TLS_1_3 };

struct tls_conf {
	enum tls_proto proto;
	const char *ciphers;  /* ab's -Z: a cipher list (a TLS 1.3 suite list with -f TLS1.3); NULL */
	const char *certfile; /* ab's -E: the client's certificate chain and key, PEM; NULL */
	const char *sni;      /* the server name sent (SNI); NULL: none */
	int alpn_h2;          /* offer h2 by ALPN and require the server to choose it */
};

struct tls_ctx;

/* One per run, shared by its threads. NULL on failure, with why (OpenSSL's
 * words, one line) in err[0..cap). */
struct tls_ctx *tls_ctx_new(const struct tls_conf *c, char *err, size_t cap);
void tls_ctx_free(struct tls_ctx *x);

/* Puts TLS on s, opened by ev_open() a moment ago: connected (the handshake
 * starts now) or connecting with EV_WRITE watched (it starts when the
 * connect is over). The driver's handler stays s's. 0, or -errno (ENOMEM). */
int tls_attach(struct tls_ctx *x, struct ev_sock *s, int connected);

/* ab's report lines, from the first handshake of the run: "TLSv1.2,
 * ECDHE-RSA-AES256-GCM-SHA384,2048,256" (version, cipher, the server key's
 * and the cipher's bits) and the key exchange ("X25519 253 bits"); empty
 * strings before any handshake. */
void tls_ctx_info(struct tls_ctx *x, char *proto, size_t pcap, char *tmpkey, size_t kcap);

/* Frees what this thread's closed TLS sockets left for the event loop's
 * end: call it after ev_free(). */
void tls_thread_done(void);

/* OpenSSL's reason for the last failure in this thread ("" when none). */
const char *tls_last_error(void);

#endif
