/* sb.c - error strings, assertions, strings, buffers, allocation. */
#include "sb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *sb_strerror(int rc)
{
    switch (rc) {
    case SB_OK: return "ok";
    case SB_EINVAL: return "invalid input";
    case SB_ENOTFOUND: return "not found";
    case SB_ECONFLICT: return "conflict";
    case SB_EAGAIN: return "try again";
    case SB_ENOMEM: return "out of memory";
    case SB_EIO: return "i/o error";
    case SB_EAUTH: return "not authenticated";
    case SB_EPERM: return "not allowed";
    case SB_ETOOBIG: return "too big";
    case SB_EINTERNAL: return "internal error";
    }
    return "unknown error";
}

void sb_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "assertion failed: %s at %s:%d\n", expr, file, line);
    abort();
}

bool sb_str_eq(sb_str a, const char *z)
{
    size_t n = strlen(z);
    return a.len == n && memcmp(a.p, z, n) == 0;
}

bool sb_str_caseeq(sb_str a, const char *z)
{
    size_t n = strlen(z);
    return a.len == n && strncasecmp(a.p, z, n) == 0;
}

void *sb_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        sb_assert_fail("malloc", __FILE__, __LINE__);
    return p;
}

void *sb_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        sb_assert_fail("calloc", __FILE__, __LINE__);
    return p;
}

void *sb_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        sb_assert_fail("realloc", __FILE__, __LINE__);
    return q;
}

char *sb_xstrdup(const char *z)
{
    return sb_xstrndup(z, strlen(z));
}

char *sb_xstrndup(const char *p, size_t len)
{
    char *z = sb_xmalloc(len + 1);
    memcpy(z, p, len);
    z[len] = '\0';
    return z;
}

void sb_buf_init(sb_buf *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void sb_buf_free(sb_buf *b)
{
    free(b->p);
    sb_buf_init(b);
}

void sb_buf_reset(sb_buf *b)
{
    b->len = 0;
    if (b->p != NULL)
        b->p[0] = '\0';
}

int sb_buf_reserve(sb_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->p = sb_xrealloc(b->p, cap);
    b->cap = cap;
    return 0;
}

int sb_buf_append(sb_buf *b, const void *p, size_t len)
{
    sb_buf_reserve(b, len);
    if (len > 0)
        memcpy(b->p + b->len, p, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

int sb_buf_appendz(sb_buf *b, const char *z)
{
    return sb_buf_append(b, z, strlen(z));
}

int sb_buf_printf(sb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return SB_EINVAL;
    sb_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void sb_buf_consume(sb_buf *b, size_t n)
{
    if (n >= b->len) {
        sb_buf_reset(b);
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = '\0';
}

bool sb_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

void sb_verrorf(char *buf, size_t cap, const char *fmt, va_list ap)
{
    if (buf == NULL || cap == 0)
        return;
    int n = vsnprintf(buf, cap, fmt, ap);
    if (n < 0) {
        buf[0] = '\0';
        return;
    }
    if ((size_t)n < cap)
        return;
    size_t len = strlen(buf), k = len;
    while (k > 0 && ((unsigned char)buf[k - 1] & 0xC0) == 0x80)
        k--;
    if (k > 0 && ((unsigned char)buf[k - 1] & 0x80) != 0) {
        unsigned char lead = (unsigned char)buf[k - 1];
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        if (len - (k - 1) < need)
            buf[k - 1] = '\0';
    }
}

void sb_errorf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_verrorf(buf, cap, fmt, ap);
    va_end(ap);
}
