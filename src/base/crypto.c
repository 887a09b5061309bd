/* crypto.c - libsodium wrappers. */
#include "base/crypto.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/sb.h"

int sb_crypto_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

void sb_hmac_sha256_hex(const char *key, size_t keylen, const void *msg, size_t len, char out[65])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, keylen);
    crypto_auth_hmacsha256_update(&st, msg, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(out, 65, mac, sizeof mac);
}

bool sb_signature_ok(const char *key, const void *msg, size_t len, const char *header)
{
    if (key == NULL || header == NULL || strncmp(header, "sha256=", 7) != 0)
        return false;
    const char *given = header + 7;
    if (strlen(given) != 64)
        return false;
    char want[65];
    sb_hmac_sha256_hex(key, strlen(key), msg, len, want);
    char lower[65];
    for (int i = 0; i < 64; i++) {
        char c = given[i];
        lower[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
    }
    lower[64] = '\0';
    return sodium_memcmp(want, lower, 64) == 0;
}

void sb_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, data, len);
    sodium_bin2hex(out, 65, h, sizeof h);
}

void sb_random_hex(char *out, size_t nbytes)
{
    unsigned char buf[64];
    SB_ASSERT(nbytes <= sizeof buf);
    randombytes_buf(buf, nbytes);
    sodium_bin2hex(out, nbytes * 2 + 1, buf, nbytes);
}

bool sb_consttime_streq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    return sodium_memcmp(a, b, la) == 0;
}

int sb_password_hash(const char *password, char *out, size_t cap)
{
    if (cap < crypto_pwhash_STRBYTES)
        return SB_EINVAL;
    if (crypto_pwhash_str_alg(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0)
        return SB_ENOMEM;
    return 0;
}

bool sb_password_verify(const char *hash, const char *password)
{
    if (hash == NULL || password == NULL)
        return false;
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

int sb_base64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen)
{
    size_t cap = inlen / 4 * 3 + 3;
    unsigned char *buf = sb_xmalloc(cap);
    size_t n = 0;
    const char *end = NULL;
    int variant = sodium_base64_VARIANT_ORIGINAL;
    for (size_t i = 0; i < inlen; i++) {
        if (in[i] == '-' || in[i] == '_') {
            variant = sodium_base64_VARIANT_URLSAFE;
            break;
        }
    }
    bool padded = inlen > 0 && in[inlen - 1] == '=';
    if (!padded)
        variant = variant == sodium_base64_VARIANT_ORIGINAL ? sodium_base64_VARIANT_ORIGINAL_NO_PADDING
                                                            : sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    if (sodium_base642bin(buf, cap, in, inlen, "\r\n ", &n, &end, variant) != 0 || end != in + inlen) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = n;
    return 0;
}
