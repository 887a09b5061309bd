/* crypto.h - the few primitives Switchboard needs, on libsodium. */
#ifndef SB_CRYPTO_H
#define SB_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

int sb_crypto_init(void);
/* hex(HMAC-SHA256(key, msg)) into out (65 bytes). */
void sb_hmac_sha256_hex(const char *key, size_t keylen, const void *msg, size_t len, char out[65]);
/* Constant-time check of "sha256=<hex>" against HMAC(key, msg). */
bool sb_signature_ok(const char *key, const void *msg, size_t len, const char *header);
/* hex(SHA-256(data)) into out (65 bytes). */
void sb_sha256_hex(const void *data, size_t len, char out[65]);
/* `nbytes` random bytes as lowercase hex into out (2*nbytes+1). */
void sb_random_hex(char *out, size_t nbytes);
bool sb_consttime_streq(const char *a, const char *b);
/* argon2id (interactive limits); slow on purpose: call off the loop. */
int sb_password_hash(const char *password, char *out, size_t cap);
bool sb_password_verify(const char *hash, const char *password);
/* Decodes standard or URL-safe base64 (padding optional). Returns 0 or -1. */
int sb_base64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen);

#endif
