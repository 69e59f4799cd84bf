/*
 * http_tls.c - the HTTP API's TLS credentials (GnuTLS, through
 * libmicrohttpd): the certificate and key it presents, the CA a client's
 * certificate must come from (http.tls.client-auth), and their rotation.
 *
 * libmicrohttpd asks for the certificate at each handshake through
 * GnuTLS's retrieve callback (MHD_OPTION_HTTPS_CERT_CALLBACK), which
 * takes the current credentials under a mutex; http_tls_reload() (SIGHUP)
 * loads new ones first and swaps them in only when all of them loaded, so
 * a bad certificate keeps the old one.  A replaced set is kept until the
 * server stops (a handshake under way may still use it): a few kilobytes
 * per rotation.
 *
 * GnuTLS's callback carries no pointer of ours, so the server's state is
 * named here: `current_tls`, the one HTTPS server of the process (the
 * node's); a second one is refused.  Guarded by its own mutex.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "base/log.h"
#include "replica/http_internal.h"

#define TLS_CHAIN_MAX 16

/* One loaded set: what a handshake presents, what a client is checked by. */
typedef struct tls_creds {
	gnutls_pcert_st chain[TLS_CHAIN_MAX];
	unsigned n;
	gnutls_privkey_t key;
	gnutls_x509_trust_list_t trust;      /* NULL without http.tls.ca */
	struct tls_creds *replaced;          /* older sets, freed at the end */
} tls_creds;

struct http_tls {
	pthread_mutex_t mu;                  /* guards cur */
	tls_creds *cur;
	char *cert_path, *key_path, *ca_path;
	int client_auth;
	char *ca_pem;                        /* for libmicrohttpd: ask for a client certificate */
};

static pthread_mutex_t current_mu = PTHREAD_MUTEX_INITIALIZER;
static http_tls *current_tls;           /* the process's HTTPS server, or NULL */

static void creds_free(tls_creds *k)
{
	while (k != NULL) {
		tls_creds *next = k->replaced;
		for (unsigned i = 0; i < k->n; i++)
			gnutls_pcert_deinit(&k->chain[i]);
		if (k->key != NULL)
			gnutls_privkey_deinit(k->key);
		if (k->trust != NULL)
			gnutls_x509_trust_list_deinit(k->trust, 1);
		free(k);
		k = next;
	}
}

static int load_file(const char *key, const char *path, gnutls_datum_t *d, lx_err *err)
{
	int rc = gnutls_load_file(path, d);
	if (rc < 0)
		return lx_err_set(err, EINVAL, "%s %s: cannot read it: %s", key, path,
				  gnutls_strerror(rc));
	return 0;
}

/* The first certificate must be valid now. */
static int check_dates(const char *path, const gnutls_pcert_st *pc, lx_err *err)
{
	gnutls_x509_crt_t crt;
	time_t now = time(NULL), from, until;
	int rc = 0;
	if (gnutls_x509_crt_init(&crt) < 0)
		return lx_err_set(err, ENOMEM, "out of memory");
	if (gnutls_x509_crt_import(crt, &pc->cert, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(crt);
		return lx_err_set(err, EINVAL, "http.tls.cert %s: not an X.509 certificate", path);
	}
	from = gnutls_x509_crt_get_activation_time(crt);
	until = gnutls_x509_crt_get_expiration_time(crt);
	if (until != (time_t)-1 && until < now)
		rc = lx_err_set(err, EINVAL, "http.tls.cert %s: expired %" PRId64 " s ago", path,
				(int64_t)(now - until));
	else if (from != (time_t)-1 && from > now)
		rc = lx_err_set(err, EINVAL, "http.tls.cert %s: not valid for another %" PRId64
				" s", path, (int64_t)(from - now));
	gnutls_x509_crt_deinit(crt);
	return rc;
}

/* The key must be the certificate's: same public key ID. */
static int check_pair(const http_tls *t, tls_creds *k, lx_err *err)
{
	unsigned char a[64], b[64];
	size_t na = sizeof(a), nb = sizeof(b);
	gnutls_pubkey_t pub;
	int rc;
	if (gnutls_pubkey_init(&pub) < 0)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = gnutls_pubkey_import_privkey(pub, k->key, 0, 0);
	if (rc >= 0)
		rc = gnutls_pubkey_get_key_id(pub, 0, a, &na);
	if (rc >= 0)
		rc = gnutls_pubkey_get_key_id(k->chain[0].pubkey, 0, b, &nb);
	gnutls_pubkey_deinit(pub);
	if (rc < 0)
		return lx_err_set(err, EINVAL, "http.tls.key %s: %s", t->key_path,
				  gnutls_strerror(rc));
	if (na != nb || memcmp(a, b, na) != 0)
		return lx_err_set(err, EINVAL, "http.tls.key %s is not the key of http.tls.cert "
				  "%s (their public keys differ)", t->key_path, t->cert_path);
	return 0;
}

static int load_chain(const http_tls *t, tls_creds *k, lx_err *err)
{
	gnutls_datum_t d = { NULL, 0 };
	unsigned n = TLS_CHAIN_MAX;
	int rc;
	if (load_file("http.tls.cert", t->cert_path, &d, err) < 0)
		return -EINVAL;
	rc = gnutls_pcert_list_import_x509_raw(k->chain, &n, &d, GNUTLS_X509_FMT_PEM, 0);
	gnutls_free(d.data);
	if (rc < 0 || n == 0)
		return lx_err_set(err, EINVAL, "http.tls.cert %s: no PEM certificate in it: %s",
				  t->cert_path, rc < 0 ? gnutls_strerror(rc) : "empty");
	k->n = n;
	return check_dates(t->cert_path, &k->chain[0], err);
}

static int load_key(const http_tls *t, tls_creds *k, lx_err *err)
{
	gnutls_datum_t d = { NULL, 0 };
	int rc;
	if (load_file("http.tls.key", t->key_path, &d, err) < 0)
		return -EINVAL;
	rc = gnutls_privkey_init(&k->key);
	if (rc >= 0)
		rc = gnutls_privkey_import_x509_raw(k->key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_memset(d.data, 0, d.size);
	gnutls_free(d.data);
	if (rc < 0)
		return lx_err_set(err, EINVAL, "http.tls.key %s: not a PEM private key (without "
				  "a passphrase): %s", t->key_path, gnutls_strerror(rc));
	return check_pair(t, k, err);
}

static int load_trust(const http_tls *t, tls_creds *k, lx_err *err)
{
	int rc;
	if (t->ca_path == NULL)
		return 0;
	if (gnutls_x509_trust_list_init(&k->trust, 0) < 0)
		return lx_err_set(err, ENOMEM, "out of memory");
	rc = gnutls_x509_trust_list_add_trust_file(k->trust, t->ca_path, NULL,
						   GNUTLS_X509_FMT_PEM, 0, 0);
	if (rc <= 0)
		return lx_err_set(err, EINVAL, "http.tls.ca %s: no PEM CA certificate in it%s%s",
				  t->ca_path, rc < 0 ? ": " : "", rc < 0 ? gnutls_strerror(rc) : "");
	return 0;
}

/* A complete new set from the files, or NULL (why in err). */
static tls_creds *creds_load(const http_tls *t, lx_err *err)
{
	tls_creds *k = calloc(1, sizeof(*k));
	if (k == NULL) {
		lx_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	if (load_chain(t, k, err) < 0 || load_key(t, k, err) < 0 || load_trust(t, k, err) < 0) {
		creds_free(k);
		return NULL;
	}
	return k;
}

/* GnuTLS asks what to present, at each handshake (libmicrohttpd's thread
 * for the connection). */
static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
		    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
		    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
	http_tls *t;
	(void)session; (void)req_ca_rdn; (void)nreqs; (void)pk_algos; (void)pk_algos_length;
	pthread_mutex_lock(&current_mu);
	t = current_tls;
	if (t != NULL) {
		pthread_mutex_lock(&t->mu);
		*pcert = t->cur->chain;
		*pcert_length = t->cur->n;
		*privkey = t->cur->key;
		pthread_mutex_unlock(&t->mu);
	}
	pthread_mutex_unlock(&current_mu);
	return t != NULL ? 0 : -1;
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

void http_tls_free(http_tls *t)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&current_mu);
	if (current_tls == t)
		current_tls = NULL;
	pthread_mutex_unlock(&current_mu);
	creds_free(t->cur);
	pthread_mutex_destroy(&t->mu);
	free(t->cert_path);
	free(t->key_path);
	free(t->ca_path);
	free(t->ca_pem);
	free(t);
}

int http_tls_new(http_tls **out, const http_security *sec, lx_err *err)
{
	http_tls *t = calloc(1, sizeof(*t));
	gnutls_datum_t d = { NULL, 0 };
	*out = NULL;
	if (t == NULL)
		return lx_err_set(err, ENOMEM, "out of memory");
	pthread_mutex_init(&t->mu, NULL);
	t->cert_path = dup_or_null(sec->tls_cert);
	t->key_path = dup_or_null(sec->tls_key);
	t->ca_path = dup_or_null(sec->tls_ca);
	t->client_auth = sec->tls_client_auth;
	if (t->cert_path == NULL || t->key_path == NULL ||
	    (sec->tls_ca != NULL && t->ca_path == NULL)) {
		http_tls_free(t);
		return lx_err_set(err, ENOMEM, "out of memory");
	}
	t->cur = creds_load(t, err);
	if (t->cur == NULL) {
		http_tls_free(t);
		return -err->code;
	}
	if (t->client_auth) {     /* libmicrohttpd asks for a client certificate when it has a CA */
		if (load_file("http.tls.ca", t->ca_path, &d, err) < 0 ||
		    (t->ca_pem = strndup((const char *)d.data, d.size)) == NULL) {
			gnutls_free(d.data);
			http_tls_free(t);
			return err->code ? -err->code : lx_err_set(err, ENOMEM, "out of memory");
		}
		gnutls_free(d.data);
	}
	pthread_mutex_lock(&current_mu);
	if (current_tls != NULL) {
		pthread_mutex_unlock(&current_mu);
		http_tls_free(t);
		return lx_err_set(err, EBUSY, "an HTTPS server runs already in this process");
	}
	current_tls = t;
	pthread_mutex_unlock(&current_mu);
	*out = t;
	return 0;
}

void *http_tls_cert_callback(void)
{
	return (void *)retrieve;
}

const char *http_tls_client_ca_pem(const http_tls *t)
{
	return t->ca_pem;
}

int http_tls_reload(http_tls *t, lx_err *err)
{
	tls_creds *k = creds_load(t, err);
	if (k == NULL)
		return -err->code;
	pthread_mutex_lock(&t->mu);
	k->replaced = t->cur;        /* a handshake under way may still use it */
	t->cur = k;
	pthread_mutex_unlock(&t->mu);
	return 0;
}

/* Why a client's certificate chain was refused, in words. */
static void verify_reason(unsigned status, char *why, size_t cap)
{
	gnutls_datum_t text = { NULL, 0 };
	const char *first = (status & GNUTLS_CERT_SIGNER_NOT_FOUND) ? "unknown CA" :
			    (status & GNUTLS_CERT_EXPIRED) ? "expired" :
			    (status & GNUTLS_CERT_NOT_ACTIVATED) ? "not yet valid" :
			    (status & GNUTLS_CERT_REVOKED) ? "revoked" :
			    (status & GNUTLS_CERT_SIGNATURE_FAILURE) ? "bad signature" : "invalid";
	if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) >= 0) {
		snprintf(why, cap, "client certificate %s (%s)", first, (const char *)text.data);
		gnutls_free(text.data);
	} else {
		snprintf(why, cap, "client certificate %s", first);
	}
}

int http_tls_verify_client(http_tls *t, struct MHD_Connection *c, char *why, size_t cap)
{
	const union MHD_ConnectionInfo *ci;
	const gnutls_datum_t *peers;
	gnutls_x509_crt_t crts[TLS_CHAIN_MAX];
	unsigned n = 0, status = 0, imported = 0;
	int rc;
	if (!t->client_auth)
		return 0;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || ci->tls_session == NULL) {
		snprintf(why, cap, "not a TLS connection");
		return -1;
	}
	peers = gnutls_certificate_get_peers(ci->tls_session, &n);
	if (peers == NULL || n == 0) {
		snprintf(why, cap, "no client certificate");
		return -1;
	}
	if (n > TLS_CHAIN_MAX)
		n = TLS_CHAIN_MAX;
	for (; imported < n; imported++) {
		if (gnutls_x509_crt_init(&crts[imported]) < 0)
			break;
		if (gnutls_x509_crt_import(crts[imported], &peers[imported],
					   GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(crts[imported]);
			break;
		}
	}
	if (imported < n) {
		for (unsigned i = 0; i < imported; i++)
			gnutls_x509_crt_deinit(crts[i]);
		snprintf(why, cap, "client certificate is not X.509");
		return -1;
	}
	pthread_mutex_lock(&t->mu);      /* the trust list of now; a reload waits */
	rc = gnutls_x509_trust_list_verify_crt2(t->cur->trust, crts, n, NULL, 0, 0, &status,
						NULL);
	pthread_mutex_unlock(&t->mu);
	for (unsigned i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	if (rc < 0) {
		snprintf(why, cap, "client certificate not verifiable: %s", gnutls_strerror(rc));
		return -1;
	}
	if (status != 0) {
		verify_reason(status, why, cap);
		return -1;
	}
	return 0;
}
