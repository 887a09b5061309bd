/* sb.h - the few definitions every Switchboard file needs: error codes,
 * assertions that are never compiled out, string views and a growable buffer. */
#ifndef SB_H
#define SB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Return codes: 0 is success, negative values are errors. */
enum {
    SB_OK = 0,
    SB_EINVAL = -1,    /* invalid input (validation) */
    SB_ENOTFOUND = -2, /* the named thing does not exist */
    SB_ECONFLICT = -3, /* unique constraint or state conflict */
    SB_EAGAIN = -4,    /* try again later (busy, overloaded) */
    SB_ENOMEM = -5,
    SB_EIO = -6,     /* storage or network failure */
    SB_EAUTH = -7,   /* not authenticated */
    SB_EPERM = -8,   /* authenticated but not allowed */
    SB_ETOOBIG = -9, /* input over a limit */
    SB_EINTERNAL = -10,
};

const char *sb_strerror(int rc);

void sb_assert_fail(const char *expr, const char *file, int line);
#define SB_ASSERT(e) ((e) ? (void)0 : sb_assert_fail(#e, __FILE__, __LINE__))

#define SB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SB_UNUSED(x)    ((void)(x))

/* A view into someone else's bytes; not NUL-terminated unless said so. */
typedef struct sb_str {
    const char *p;
    size_t len;
} sb_str;

#define SB_STR(lit) ((sb_str){(lit), sizeof(lit) - 1})
bool sb_str_eq(sb_str a, const char *z);
bool sb_str_caseeq(sb_str a, const char *z);

/* Growable byte buffer, always NUL-terminated for convenience. */
typedef struct sb_buf {
    char *p;
    size_t len;
    size_t cap;
} sb_buf;

void sb_buf_init(sb_buf *b);
void sb_buf_free(sb_buf *b);
void sb_buf_reset(sb_buf *b);
int sb_buf_reserve(sb_buf *b, size_t extra);
int sb_buf_append(sb_buf *b, const void *p, size_t len);
int sb_buf_appendz(sb_buf *b, const char *z);
int sb_buf_printf(sb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Removes the first n bytes. */
void sb_buf_consume(sb_buf *b, size_t n);

void *sb_xmalloc(size_t n);
void *sb_xcalloc(size_t n, size_t size);
void *sb_xrealloc(void *p, size_t n);
char *sb_xstrdup(const char *z);
char *sb_xstrndup(const char *p, size_t len);

/* Formats an error message into buf (nothing if buf is NULL or cap 0). A
 * message cut short by cap never ends inside a UTF-8 character, so it can
 * travel on in JSON. */
void sb_errorf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sb_verrorf(char *buf, size_t cap, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

/* Checks that [p, p+len) is valid UTF-8 (no overlongs, no surrogates). */
bool sb_utf8_valid(const char *p, size_t len);

#endif
