// System OpenSSL 3 (Debian libssl-dev). Nothing is vendored: this header only
// gathers the public headers Keys uses and wraps the few macros Swift cannot call.
#ifndef SIGNET_COPENSSL_SHIM_H
#define SIGNET_COPENSSL_SHIM_H

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

static inline int signet_EVP_PKEY_CTX_set_rsa_padding(EVP_PKEY_CTX *ctx, int pad) {
    return EVP_PKEY_CTX_set_rsa_padding(ctx, pad);
}

static inline int signet_EVP_PKEY_CTX_set_signature_md(EVP_PKEY_CTX *ctx, const EVP_MD *md) {
    return EVP_PKEY_CTX_set_signature_md(ctx, md);
}

static inline int signet_EVP_PKEY_CTX_set_rsa_keygen_bits(EVP_PKEY_CTX *ctx, int bits) {
    return EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits);
}

static inline const BIO_METHOD *signet_BIO_s_mem(void) { return BIO_s_mem(); }

// The secure heap (mlock'ed, MADV_DONTDUMP, guard pages) once CRYPTO_secure_malloc_init ran; plain malloc before.
static inline void *signet_OPENSSL_secure_malloc(size_t n) { return OPENSSL_secure_malloc(n); }
static inline void signet_OPENSSL_secure_clear_free(void *p, size_t n) { OPENSSL_secure_clear_free(p, n); }

#ifdef __linux__
#include <sys/prctl.h>
// prctl is variadic, which Swift cannot call; key hardening needs these two options only.
static inline int signet_prctl_set_dumpable(int dumpable) { return prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0); }
static inline int signet_prctl_get_dumpable(void) { return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0); }
#endif

#endif
