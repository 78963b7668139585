/* tls: TLS over memory BIOs between a driver and the event loop, see tls.h.
 *
 * The socket's ev_io and ev_handler are TLS's while it is attached; the
 * back end's are kept in the tls_sock (lower) and the driver's handler too
 * (up). Every announcement of the back end comes here first: TLS drains
 * what arrived into the read BIO at once (so the back end never holds data
 * on TLS's behalf), drives the handshake, then tells the driver EV_READ
 * while ciphertext, the end of the stream or an error is there for it. */
#include "tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define PLAIN_MAX 65536 /* what one ev_recv() may hand out */

struct tls_ctx {
	SSL_CTX *ctx;
	char *sni;
	int alpn_h2;
	pthread_mutex_t mu;
	int have_info;
	char proto[160], tmpkey[96];
};

enum { T_CONNECTING, T_HANDSHAKE, T_OPEN, T_FAILED };

struct tls_sock {
	struct tls_ctx *x;
	SSL *ssl;
	BIO *rbio, *wbio; /* owned by ssl */
	const struct ev_io *lower;
	const struct ev_handler *up;
	int state;
	int eof;        /* the peer's end of stream came, after what rbio holds */
	int closed;     /* SSL_read said the stream is over */
	int err;        /* errno: the stream failed, or EPROTO */
	int ann;        /* an EV_READ was announced and not read yet */
	int lsending;   /* out[0..outlen) is with the back end's send */
	size_t upending; /* plaintext whose ev_send() the driver waits to hear of */
	char *out;
	size_t outcap;
	struct tls_sock *next; /* in this thread's graveyard */
};

static __thread char plain[PLAIN_MAX];
static __thread char last_error[256];
/* Sockets closed while the back end still had their ciphertext: with
 * io_uring the kernel may read out[] until the ring is gone, so they are
 * freed with the loop (tls_thread_done()), not at close. */
static __thread struct tls_sock *graveyard;

static const struct ev_io tls_io;
static const struct ev_handler tls_handler;

const char *tls_last_error(void)
{
	return last_error;
}

/* OpenSSL's reason for what just failed (or what when it has none). */
static void note_error(const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	if (r)
		snprintf(last_error, sizeof last_error, "%s", r);
	else if (e)
		ERR_error_string_n(e, last_error, sizeof last_error);
	else
		snprintf(last_error, sizeof last_error, "%s", what);
	ERR_clear_error();
}

static int ctx_fail(char *err, size_t cap, SSL_CTX *ctx, const char *fmt, const char *arg)
{
	note_error("");
	char head[256];
	snprintf(head, sizeof head, fmt, arg ? arg : "");
	snprintf(err, cap, "%s%s%s", head, last_error[0] ? ": " : "", last_error);
	SSL_CTX_free(ctx);
	return -1;
}

struct tls_ctx *tls_ctx_new(const struct tls_conf *c, char *err, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		ctx_fail(err, cap, NULL, "Could not initialize SSL Context%s", NULL);
		return NULL;
	}
	/* ab's options; a peer that closes without close_notify ends the
	 * stream as a plain end of stream would (ab lets it through too) */
	SSL_CTX_set_options(ctx, SSL_OP_ALL | SSL_OP_IGNORE_UNEXPECTED_EOF);
	static const int versions[] = {0, TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION,
	                               TLS1_3_VERSION};
	int v = versions[c->proto];
	SSL_CTX_set_min_proto_version(ctx, v ? v : TLS1_VERSION);
	SSL_CTX_set_max_proto_version(ctx, v ? v : TLS1_3_VERSION);
	if (c->ciphers) {
		/* ab: a TLS 1.3 suite list when only TLS 1.3 may be spoken */
		int ok = c->proto == TLS_1_3 ? SSL_CTX_set_ciphersuites(ctx, c->ciphers)
		                             : SSL_CTX_set_cipher_list(ctx, c->ciphers);
		if (!ok && ctx_fail(err, cap, ctx, "error setting ciphersuite list [%s]", c->ciphers))
			return NULL;
	}
	if (c->certfile) {
		if (SSL_CTX_use_certificate_chain_file(ctx, c->certfile) <= 0 &&
		    ctx_fail(err, cap, ctx, "unable to get certificate from '%s'", c->certfile))
			return NULL;
		if (SSL_CTX_use_PrivateKey_file(ctx, c->certfile, SSL_FILETYPE_PEM) <= 0 &&
		    ctx_fail(err, cap, ctx, "unable to get private key from '%s'", c->certfile))
			return NULL;
		if (!SSL_CTX_check_private_key(ctx) &&
		    ctx_fail(err, cap, ctx,
		             "private key does not match the certificate public key in %s",
		             c->certfile))
			return NULL;
	}
	static const unsigned char h2[] = {2, 'h', '2'};
	if (c->alpn_h2 && SSL_CTX_set_alpn_protos(ctx, h2, sizeof h2) != 0 &&
	    ctx_fail(err, cap, ctx, "cannot offer h2 by ALPN%s", NULL))
		return NULL;
	struct tls_ctx *x = calloc(1, sizeof *x);
	if (!x || (c->sni && !(x->sni = strdup(c->sni)))) {
		free(x);
		SSL_CTX_free(ctx);
		snprintf(err, cap, "Could not allocate memory");
		return NULL;
	}
	x->ctx = ctx;
	x->alpn_h2 = c->alpn_h2;
	pthread_mutex_init(&x->mu, NULL);
	return x;
}

void tls_ctx_free(struct tls_ctx *x)
{
	if (!x)
		return;
	SSL_CTX_free(x->ctx);
	pthread_mutex_destroy(&x->mu);
	free(x->sni);
	free(x);
}

void tls_ctx_info(struct tls_ctx *x, char *proto, size_t pcap, char *tmpkey, size_t kcap)
{
	pthread_mutex_lock(&x->mu);
	snprintf(proto, pcap, "%s", x->proto);
	snprintf(tmpkey, kcap, "%s", x->tmpkey);
	pthread_mutex_unlock(&x->mu);
}

/* ab's "SSL/TLS Protocol" and "Server Temp Key" figures, once per run. */
static void note_info(struct tls_ctx *x, SSL *ssl)
{
	pthread_mutex_lock(&x->mu);
	if (x->have_info) {
		pthread_mutex_unlock(&x->mu);
		return;
	}
	x->have_info = 1;
	const SSL_CIPHER *ci = SSL_get_current_cipher(ssl);
	int alg = 0, sk_bits = SSL_CIPHER_get_bits(ci, &alg), pk_bits = 0;
	X509 *cert = SSL_get1_peer_certificate(ssl);
	if (cert) {
		pk_bits = EVP_PKEY_get_bits(X509_get0_pubkey(cert));
		X509_free(cert);
	}
	snprintf(x->proto, sizeof x->proto, "%s,%s,%d,%d", SSL_get_version(ssl),
	         SSL_CIPHER_get_name(ci), pk_bits, sk_bits);
	EVP_PKEY *key = NULL;
	if (SSL_get_peer_tmp_key(ssl, &key)) {
		char group[64];
		int id = EVP_PKEY_get_id(key), bits = EVP_PKEY_get_bits(key);
		if (id == EVP_PKEY_RSA)
			snprintf(x->tmpkey, sizeof x->tmpkey, "RSA %d bits", bits);
		else if (id == EVP_PKEY_DH)
			snprintf(x->tmpkey, sizeof x->tmpkey, "DH %d bits", bits);
		else if (id == EVP_PKEY_EC &&
		         EVP_PKEY_get_group_name(key, group, sizeof group, NULL))
			snprintf(x->tmpkey, sizeof x->tmpkey, "ECDH %s %d bits", group, bits);
		else
			snprintf(x->tmpkey, sizeof x->tmpkey, "%s %d bits", OBJ_nid2sn(id), bits);
		EVP_PKEY_free(key);
	}
	pthread_mutex_unlock(&x->mu);
}

/* Hands the ciphertext waiting in the write BIO to the back end's send:
 * 1 when it all went (or there was none), 0 while a send is in flight,
 * -errno when it failed. */
static int flush(struct ev_sock *s)
{
	struct tls_sock *t = s->xp;
	if (t->lsending)
		return 0;
	size_t n = BIO_ctrl_pending(t->wbio);
	if (!n)
		return 1;
	if (n > t->outcap) {
		char *o = realloc(t->out, n);
		if (!o)
			return -ENOMEM;
		t->out = o;
		t->outcap = n;
	}
	BIO_read(t->wbio, t->out, (int)n);
	ssize_t r = t->lower->send(s, t->out, n);
	if (r < 0) {
		t->err = (int)-r;
		return (int)r;
	}
	if ((size_t)r == n)
		return 1;
	t->lsending = 1;
	return 0;
}

/* Everything the back end has for us into the read BIO. */
static void drain(struct ev_sock *s)
{
	struct tls_sock *t = s->xp;
	const char *p;
	ssize_t n = -EAGAIN;
	while (!s->dry && (n = t->lower->recv(s, &p)) > 0) {
		BIO_write(t->rbio, p, (int)n);
		n = -EAGAIN; /* (when the back end knows it is dry now) */
	}
	if (n == 0) {
		t->eof = 1;
		BIO_set_mem_eof_return(t->rbio, 0); /* SSL_read now meets the end */
	} else if (n != -EAGAIN && !t->err) {
		t->err = (int)-n;
	}
}

/* Tells the driver there is something to read (data, the end, an error). */
static void announce(struct ev_sock *s)
{
	struct tls_sock *t = s->xp;
	uint32_t gen = s->gen;
	t->ann = 1;
	s->dry = 0;
	t->up->on_event(s, EV_READ | (t->eof ? EV_RDHUP : 0) | (t->err ? EV_ERR : 0));
	if (s->gen != gen)
		return;
	if (t->ann)
		s->unread |= EV_READ; /* for ev_recheck() */
	flush(s); /* what reading made TLS answer (a key update, an alert) */
}

/* The handshake failed (e: errno, EPROTO for TLS's own reasons): the
 * driver hears EV_ERR while it waits to be connected. */
static void fail(struct ev_sock *s, int e)
{
	struct tls_sock *t = s->xp;
	t->state = T_FAILED;
	t->err = e;
	t->up->on_event(s, EV_ERR | EV_HUP);
}

static void established(struct ev_sock *s)
{
	struct tls_sock *t = s->xp;
	if (t->x->alpn_h2) {
		const unsigned char *a = NULL;
		unsigned al = 0;
		SSL_get0_alpn_selected(t->ssl, &a, &al);
		if (al != 2 || memcmp(a, "h2", 2) != 0) {
			snprintf(last_error, sizeof last_error,
			         "the server did not choose h2 by ALPN (%s)",
			         al ? "it chose another protocol" : "it chose none");
			fail(s, EPROTO);
			return;
		}
	}
	note_info(t->x, t->ssl);
	t->state = T_OPEN;
	/* the driver's first request joins the client's last handshake
	 * message in the write BIO: they leave in one segment */
	uint32_t gen = s->gen;
	t->up->on_event(s, EV_WRITE);
	if (s->gen != gen)
		return;
	if (flush(s) < 0 || BIO_ctrl_pending(t->rbio) || t->eof || t->err)
		announce(s);
}

static void handshake(struct ev_sock *s)
{
	struct tls_sock *t = s->xp;
	ERR_clear_error();
	int r = SSL_do_handshake(t->ssl);
	if (r == 1) {
		established(s);
		return;
	}
	int e = SSL_get_error(t->ssl, r);
	int f = flush(s); /* the ClientHello, or what answers the server */
	if (e == SSL_ERROR_WANT_READ && f >= 0 && !t->eof && !t->err)
		return;
	if (e == SSL_ERROR_SSL) {
		note_error("handshake failed");
		if (t->x->alpn_h2 && strstr(last_error, "no application protocol")) {
			char why[sizeof last_error];
			snprintf(why, sizeof why, "%s", last_error);
			snprintf(last_error, sizeof last_error,
			         "the server did not choose h2 by ALPN (%.180s)", why);
		}
	}
	else if (t->err && t->err != EPROTO)
		snprintf(last_error, sizeof last_error, "%s", strerror(t->err));
	else
		snprintf(last_error, sizeof last_error, "the connection ended in the handshake");
	fail(s, e == SSL_ERROR_SSL || !t->err ? EPROTO : t->err);
}

int tls_attach(struct tls_ctx *x, struct ev_sock *s, int connected)
{
	struct tls_sock *t = calloc(1, sizeof *t);
	if (!t || !(t->ssl = SSL_new(x->ctx))) {
		free(t);
		return -ENOMEM;
	}
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (!t->rbio || !t->wbio) {
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		SSL_free(t->ssl);
		free(t);
		return -ENOMEM;
	}
	BIO_set_mem_eof_return(t->rbio, -1); /* empty: "try again", not the end */
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	SSL_set_connect_state(t->ssl);
	if (x->sni)
		SSL_set_tlsext_host_name(t->ssl, x->sni);
	t->x = x;
	t->lower = s->io;
	t->up = s->h;
	s->io = &tls_io;
	s->h = &tls_handler;
	s->xp = t;
	t->state = T_CONNECTING;
	if (connected) {
		t->state = T_HANDSHAKE;
		ERR_clear_error();
		SSL_do_handshake(t->ssl); /* the ClientHello, into the write BIO */
		int f = flush(s);
		if (f < 0)
			return f;
	}
	return 0;
}

/* the back end's announcements */

static void tls_on_event(struct ev_sock *s, unsigned m)
{
	struct tls_sock *t = s->xp;
	if (t->state == T_CONNECTING) {
		if (m & (EV_ERR | EV_HUP)) {
			t->up->on_event(s, m); /* the connect failed: the driver asks why */
		} else if (m & EV_WRITE) {
			t->state = T_HANDSHAKE;
			t->lower->watch(s, EV_READ);
			handshake(s);
		}
		return;
	}
	if (m & (EV_READ | EV_RDHUP | EV_HUP | EV_ERR))
		drain(s);
	if (t->state == T_HANDSHAKE)
		handshake(s);
	else if (t->state == T_OPEN)
		announce(s);
}

static void tls_on_sent(struct ev_sock *s, size_t sent, int err, uint64_t now)
{
	(void)sent;
	struct tls_sock *t = s->xp;
	t->lsending = 0;
	int f = err ? -err : flush(s);
	if (f == 0)
		return; /* more went out after it */
	if (f < 0)
		t->err = -f;
	if (t->upending) {
		size_t n = t->upending;
		t->upending = 0;
		t->up->on_sent(s, n, f < 0 ? -f : 0, now);
	} else if (f < 0 && t->state == T_HANDSHAKE) {
		snprintf(last_error, sizeof last_error, "%s", strerror(-f));
		fail(s, -f);
	}
}

/* the driver's calls */

static ssize_t tls_recv(struct ev_sock *s, const char **p)
{
	struct tls_sock *t = s->xp;
	t->ann = 0;
	if (t->state != T_OPEN)
		return t->err ? -t->err : -EAGAIN;
	size_t got = 0;
	ERR_clear_error();
	while (got < PLAIN_MAX) {
		int r = SSL_read(t->ssl, plain + got, (int)(PLAIN_MAX - got));
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		int e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_ZERO_RETURN) {
			t->closed = 1;
		} else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE && !t->err) {
			note_error("a record could not be read");
			t->err = EPROTO;
		}
		break;
	}
	if (got) {
		*p = plain;
		return (ssize_t)got;
	}
	if (t->closed)
		return 0;
	if (t->err)
		return -t->err;
	if (t->eof)
		return 0;
	s->dry = 1;
	return -EAGAIN;
}

static ssize_t tls_send(struct ev_sock *s, const void *p, size_t len)
{
	struct tls_sock *t = s->xp;
	if (t->state != T_OPEN)
		return t->err ? -t->err : -ENOTCONN;
	ERR_clear_error();
	if (SSL_write(t->ssl, p, (int)len) <= 0) {
		note_error("a record could not be written");
		return -EPROTO;
	}
	if (t->lsending) {
		t->upending += len;
		return 0;
	}
	int f = flush(s);
	if (f < 0)
		return f;
	if (f == 1)
		return (ssize_t)len;
	t->upending += len;
	return 0;
}

static void tls_watch(struct ev_sock *s, unsigned events)
{
	/* TLS reads whatever the driver wants: the back end's watch stays */
	(void)s, (void)events;
}

static void tls_recheck(struct ev_sock *s)
{
	struct tls_sock *t = s->xp;
	s->unread = 0;
	if (t->state == T_OPEN && (SSL_has_pending(t->ssl) || BIO_ctrl_pending(t->rbio) ||
	                           t->eof || t->err || t->closed))
		announce(s);
}

static void tls_close(struct ev_sock *s)
{
	struct tls_sock *t = s->xp;
	s->io = t->lower;
	s->h = t->up;
	s->xp = NULL;
	SSL_free(t->ssl);
	t->ssl = NULL;
	const struct ev_io *lower = t->lower;
	if (t->lsending) {
		t->next = graveyard;
		graveyard = t;
	} else {
		free(t->out);
		free(t);
	}
	lower->close(s);
}

void tls_thread_done(void)
{
	while (graveyard) {
		struct tls_sock *t = graveyard;
		graveyard = t->next;
		free(t->out);
		free(t);
	}
}

static int tls_error(struct ev_sock *s)
{
	struct tls_sock *t = s->xp;
	if (t->state == T_FAILED || t->err == EPROTO)
		return t->err;
	return t->lower->error(s);
}

static const struct ev_io tls_io = {tls_recv,    tls_send,  tls_watch,
                                    tls_recheck, tls_close, tls_error};
static const struct ev_handler tls_handler = {tls_on_event, tls_on_sent};
