/* tls.c — TLS on OpenSSL with no socket under it (tls.h): the connection's
 * SSL object reads ciphertext from a memory BIO the worker fills
 * (tls_conn_feed) and writes its records through a BIO of our own straight
 * into an http_obuf, from which the worker sends. So the workers keep
 * their own reads and writes (hub_read on coro, recv on async) and TLS is
 * one more step between those and the codecs.
 */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tls_server {
	SSL_CTX *ctx;
};

struct tls_conn {
	SSL *ssl;
	BIO *in; /* memory BIO: the peer's ciphertext not yet used */
	struct http_obuf out;
	bool more;
};

/* ---- the output BIO: records appended to the connection's obuf ---- */

static BIO_METHOD *out_method;

static int out_write(BIO *b, const char *data, size_t len, size_t *written)
{
	struct tls_conn *t = BIO_get_data(b);
	if (http_obuf_append(&t->out, data, len) != 0)
		return 0;
	*written = len;
	return 1;
}

static long out_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH; /* nothing is buffered here */
}

static int out_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

/* ---- the server ---- */

/* ALPN: h2 if the client offers it, else http/1.1, else no ALPN at all
 * (an old client; HTTP/1.1 then). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	static const unsigned char ours[] = "\x02h2\x08http/1.1";
	unsigned char *sel;
	if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* The reason OpenSSL gives for its last error, one line. */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r ? r : "unknown error";
}

/* The file must exist and be readable: say so plainly rather than with
 * OpenSSL's "system lib". 0, or -1 with why set. */
static int readable(const char *flag, const char *file, char *why, size_t whylen)
{
	FILE *f = fopen(file, "r");
	if (!f) {
		snprintf(why, whylen, "%s %s: %s", flag, file, strerror(errno));
		return -1;
	}
	fclose(f);
	return 0;
}

/* An encrypted key would make OpenSSL ask for its passphrase on the
 * terminal: a server has none to give; the key is refused instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

struct tls_server *tls_server_new(const char *cert_file, const char *key_file, char *why,
                                  size_t whylen)
{
	if (readable("--tls-cert", cert_file, why, whylen) != 0 ||
	    readable("--tls-key", key_file, why, whylen) != 0)
		return NULL;
	if (!out_method) {
		out_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "obuf");
		if (!out_method || !BIO_meth_set_write_ex(out_method, out_write) ||
		    !BIO_meth_set_ctrl(out_method, out_ctrl) ||
		    !BIO_meth_set_create(out_method, out_create)) {
			snprintf(why, whylen, "TLS: %s", ssl_reason());
			return NULL;
		}
	}
	struct tls_server *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(why, whylen, "TLS: out of memory");
		return NULL;
	}
	ERR_clear_error();
	s->ctx = SSL_CTX_new(TLS_server_method());
	if (!s->ctx) {
		snprintf(why, whylen, "TLS: %s", ssl_reason());
		free(s);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(s->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	                                SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* Idle keep-alive connections give their record buffers back. */
	SSL_CTX_set_mode(s->ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_select_cb(s->ctx, alpn_select, NULL);
	/* The key is read on its own first, so that "not a key" and "not
	 * this certificate's key" are told apart. */
	EVP_PKEY *pkey = NULL;
	const char *key_why = "cannot open it";
	FILE *kf = fopen(key_file, "r");
	if (kf) {
		pkey = PEM_read_PrivateKey(kf, NULL, no_passphrase, NULL);
		key_why = ssl_reason();
		fclose(kf);
	}
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(s->ctx, cert_file) != 1) {
		snprintf(why, whylen, "--tls-cert %s: not a PEM certificate (%s)", cert_file,
		         ssl_reason());
	} else if (!pkey) {
		snprintf(why, whylen, "--tls-key %s: not a PEM private key (%s)", key_file,
		         key_why);
	} else if (SSL_CTX_use_PrivateKey(s->ctx, pkey) != 1 ||
	           SSL_CTX_check_private_key(s->ctx) != 1) {
		snprintf(why, whylen, "--tls-key %s does not match --tls-cert %s", key_file,
		         cert_file);
	} else {
		EVP_PKEY_free(pkey);
		ERR_clear_error();
		return s;
	}
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	tls_server_free(s);
	return NULL;
}

void tls_server_free(struct tls_server *s)
{
	if (!s)
		return;
	SSL_CTX_free(s->ctx);
	free(s);
}

/* ---- a connection ---- */

struct tls_conn *tls_conn_new(struct tls_server *s)
{
	struct tls_conn *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	http_obuf_init(&t->out);
	t->ssl = SSL_new(s->ctx);
	t->in = BIO_new(BIO_s_mem());
	BIO *out = BIO_new(out_method);
	if (!t->ssl || !t->in || !out) {
		BIO_free(out);
		tls_conn_free(t);
		ERR_clear_error();
		return NULL;
	}
	BIO_set_data(out, t);
	/* An empty memory BIO says "retry" rather than EOF: more may come. */
	BIO_set_mem_eof_return(t->in, -1);
	SSL_set_bio(t->ssl, t->in, out); /* the SSL owns both now */
	SSL_set_accept_state(t->ssl);
	return t;
}

void tls_conn_free(struct tls_conn *t)
{
	if (!t)
		return;
	if (t->ssl)
		SSL_free(t->ssl); /* and its BIOs */
	else
		BIO_free(t->in);
	http_obuf_free(&t->out);
	free(t);
}

int tls_conn_feed(struct tls_conn *t, const void *data, size_t len)
{
	while (len > 0) {
		int n = len > INT_MAX ? INT_MAX : (int)len;
		int w = BIO_write(t->in, data, n);
		if (w <= 0)
			return -1;
		data = (const char *)data + w;
		len -= (size_t)w;
	}
	return 0;
}

ssize_t tls_conn_read(struct tls_conn *t, void *buf, size_t cap)
{
	size_t got = 0;
	t->more = false;
	while (got < cap) {
		size_t n = 0;
		if (SSL_read_ex(t->ssl, (char *)buf + got, cap - got, &n) == 1) {
			got += n;
			continue;
		}
		int e = SSL_get_error(t->ssl, 0);
		ERR_clear_error();
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return (ssize_t)got;
		if (got) /* the error shows again at the next read */
			return (ssize_t)got;
		return e == SSL_ERROR_ZERO_RETURN ? TLS_CLOSED : TLS_FAILED;
	}
	t->more = true;
	return (ssize_t)got;
}

bool tls_conn_more(const struct tls_conn *t)
{
	return t->more;
}

int tls_conn_write(struct tls_conn *t, const void *data, size_t len)
{
	size_t n = 0;
	if (len == 0)
		return 0;
	if (SSL_write_ex(t->ssl, data, len, &n) != 1 || n != len) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

void tls_conn_close_notify(struct tls_conn *t)
{
	if (SSL_is_init_finished(t->ssl))
		(void)SSL_shutdown(t->ssl);
	ERR_clear_error();
}

struct http_obuf *tls_conn_out(struct tls_conn *t)
{
	return &t->out;
}
