/* request.c - the HTTP request object: arena, getters, query and cookie
 * decoding, status texts. Everything here is socket-free. */
#include "http/http_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void sb_http_limits_default(sb_http_limits *l)
{
    l->max_header_bytes = 16 * 1024;
    l->max_headers = 64;
    l->max_body_bytes = 1024 * 1024;
    l->header_timeout_ms = 10000;
    l->idle_timeout_ms = 60000;
    l->max_connections = 10000;
    l->ws_max_message = 64 * 1024;
    l->ws_max_outbuf = 8 * 1024 * 1024;
}

/* ---- arena ---- */

void *sb_http_arena_alloc(sb_http_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n <= sizeof a->first - a->used) {
        void *p = a->first + a->used;
        a->used += n;
        return p;
    }
    sb_http_arena_block *b = a->extra;
    if (b != NULL && n <= b->cap - b->used) {
        void *p = b->data + b->used;
        b->used += n;
        return p;
    }
    size_t cap = n > 4096 ? n : 4096;
    b = sb_xmalloc(sizeof *b + cap);
    b->cap = cap;
    b->used = n;
    b->next = a->extra;
    a->extra = b;
    return b->data;
}

char *sb_http_arena_strndup(sb_http_arena *a, const char *p, size_t len)
{
    char *z = sb_http_arena_alloc(a, len + 1);
    if (len > 0)
        memcpy(z, p, len);
    z[len] = '\0';
    return z;
}

void sb_http_arena_reset(sb_http_arena *a)
{
    sb_http_arena_block *b = a->extra;
    while (b != NULL) {
        sb_http_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->extra = NULL;
    a->used = 0;
}

/* ---- request object ---- */

sb_http_req *sb_http_req_new(void)
{
    sb_http_req *req = sb_xcalloc(1, sizeof *req);
    req->magic = SB_HTTP_REQ_MAGIC;
    sb_buf_init(&req->raw);
    sb_buf_init(&req->body);
    req->query = "";
    req->path = "";
    return req;
}

/* Keeps the buffers' capacity so the next request on the connection does
 * not allocate; gives back memory a single huge request made us take. */
void sb_http_req_reset(sb_http_req *req)
{
    req->state = SB_REQ_PARSING;
    req->id = 0;
    req->method = 0;
    req->http_major = req->http_minor = 0;
    req->keep_alive = false;
    req->upgrade = false;
    req->chunked_stream = false;
    req->in_on_close = false;
    req->stream_head = false;
    req->stream_ended = false;
    if (req->raw.cap > 64 * 1024)
        sb_buf_free(&req->raw);
    sb_buf_reset(&req->raw);
    req->url_len = 0;
    req->raw_state = 0;
    req->nhdrs = 0;
    if (req->hdrs_cap > 128) {
        free(req->hdrs);
        req->hdrs = NULL;
        req->hdrs_cap = 0;
    }
    req->path = "";
    req->query = "";
    if (req->body.cap > 64 * 1024)
        sb_buf_free(&req->body);
    sb_buf_reset(&req->body);
    req->remote_ip[0] = '\0';
    req->out_hdrs = req->out_hdrs_tail = NULL;
    req->data = NULL;
    req->stream_on_close = NULL;
    req->stream_ud = NULL;
    sb_http_arena_reset(&req->arena);
}

void sb_http_req_free(sb_http_req *req)
{
    if (req == NULL)
        return;
    SB_ASSERT(req->magic == SB_HTTP_REQ_MAGIC);
    sb_http_arena_reset(&req->arena);
    sb_buf_free(&req->raw);
    sb_buf_free(&req->body);
    free(req->hdrs);
    req->magic = SB_HTTP_DEAD_MAGIC;
    free(req);
}

void sb_http_req_finish_headers(sb_http_req *req)
{
    /* raw = url NUL name NUL value NUL ...; the url was terminated when the
     * first header name started or in on_headers_complete. */
    char *url = req->raw.p;
    if (url == NULL) {
        req->path = "";
        req->query = "";
        return;
    }
    char *start = url;
    /* absolute-form "http://host/path" -> "/path" */
    if (strncasecmp(start, "http://", 7) == 0 || strncasecmp(start, "https://", 8) == 0) {
        char *slash = strchr(strstr(start, "//") + 2, '/');
        start = slash != NULL ? slash : (char *)"/";
    }
    char *hash = strchr(start, '#');
    if (hash != NULL)
        *hash = '\0';
    char *q = strchr(start, '?');
    if (q != NULL) {
        *q = '\0';
        req->query = q + 1;
    } else {
        req->query = "";
    }
    req->path = start;
}

/* ---- getters ---- */

static sb_http_req *req_check(const sb_http_req *req)
{
    SB_ASSERT(req != NULL && req->magic == SB_HTTP_REQ_MAGIC);
    return (sb_http_req *)req;
}

sb_http_method sb_http_req_method(const sb_http_req *req)
{
    switch (req_check(req)->method) {
    case HTTP_GET: return SB_HTTP_GET;
    case HTTP_HEAD: return SB_HTTP_HEAD;
    case HTTP_POST: return SB_HTTP_POST;
    case HTTP_PUT: return SB_HTTP_PUT;
    case HTTP_PATCH: return SB_HTTP_PATCH;
    case HTTP_DELETE: return SB_HTTP_DELETE;
    case HTTP_OPTIONS: return SB_HTTP_OPTIONS;
    }
    return SB_HTTP_OTHER;
}

const char *sb_http_req_method_name(const sb_http_req *req)
{
    return http_method_str((enum http_method)req_check(req)->method);
}

const char *sb_http_req_path(const sb_http_req *req)
{
    return req_check(req)->path;
}

const char *sb_http_req_query(const sb_http_req *req)
{
    return req_check(req)->query;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX and '+' from p into out (out may equal p); returns length.
 * Malformed escapes are kept literally. */
static size_t form_decode(char *out, const char *p, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < len) {
            int hi = hex_value(p[i + 1]);
            int lo = hex_value(p[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = (char)(hi * 16 + lo);
                i += 2;
            }
        }
        out[n++] = c;
    }
    return n;
}

const char *sb_http_req_query_param(sb_http_req *req, const char *name)
{
    req_check(req);
    size_t name_len = strlen(name);
    const char *p = req->query;
    char small[128];
    while (*p != '\0') {
        const char *amp = strchr(p, '&');
        size_t pair_len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', pair_len);
        size_t key_len = eq != NULL ? (size_t)(eq - p) : pair_len;
        bool match;
        if (key_len <= sizeof small) {
            size_t n = form_decode(small, p, key_len);
            match = n == name_len && memcmp(small, name, n) == 0;
        } else {
            char *tmp = sb_xmalloc(key_len);
            size_t n = form_decode(tmp, p, key_len);
            match = n == name_len && memcmp(tmp, name, n) == 0;
            free(tmp);
        }
        if (match) {
            const char *v = eq != NULL ? eq + 1 : p + pair_len;
            size_t vlen = (size_t)(p + pair_len - v);
            char *out = sb_http_arena_alloc(&req->arena, vlen + 1);
            size_t n = form_decode(out, v, vlen);
            out[n] = '\0';
            return out;
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    return NULL;
}

const char *sb_http_req_header(const sb_http_req *req, const char *name)
{
    req_check(req);
    size_t name_len = strlen(name);
    for (size_t i = 0; i < req->nhdrs; i++) {
        const sb_http_hdr *h = &req->hdrs[i];
        if (h->name_len == name_len && strncasecmp(req->raw.p + h->name_off, name, name_len) == 0)
            return req->raw.p + h->value_off;
    }
    return NULL;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

const char *sb_http_req_cookie(sb_http_req *req, const char *name)
{
    req_check(req);
    size_t name_len = strlen(name);
    for (size_t i = 0; i < req->nhdrs; i++) {
        const sb_http_hdr *h = &req->hdrs[i];
        if (h->name_len != 6 || strncasecmp(req->raw.p + h->name_off, "cookie", 6) != 0)
            continue;
        const char *p = req->raw.p + h->value_off;
        const char *end = p + h->value_len;
        while (p < end) {
            while (p < end && (is_ows(*p) || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *pair_end = semi != NULL ? semi : end;
            const char *eq = memchr(p, '=', (size_t)(pair_end - p));
            if (eq != NULL) {
                const char *k_end = eq;
                while (k_end > p && is_ows(k_end[-1]))
                    k_end--;
                if ((size_t)(k_end - p) == name_len && memcmp(p, name, name_len) == 0) {
                    const char *v = eq + 1;
                    const char *v_end = pair_end;
                    while (v < v_end && is_ows(*v))
                        v++;
                    while (v_end > v && is_ows(v_end[-1]))
                        v_end--;
                    if (v_end - v >= 2 && *v == '"' && v_end[-1] == '"') {
                        v++;
                        v_end--;
                    }
                    return sb_http_arena_strndup(&req->arena, v, (size_t)(v_end - v));
                }
            }
            p = pair_end;
        }
    }
    return NULL;
}

sb_str sb_http_req_body(const sb_http_req *req)
{
    req_check(req);
    sb_str s = {req->body.p != NULL ? req->body.p : "", req->body.len};
    return s;
}

const char *sb_http_req_remote_ip(const sb_http_req *req)
{
    return req_check(req)->remote_ip;
}

uint64_t sb_http_req_id(const sb_http_req *req)
{
    return req_check(req)->id;
}

bool sb_http_req_connected(const sb_http_req *req)
{
    req_check(req);
    return req->conn != NULL && req->conn->state != SB_CONN_CLOSING && req->conn->state != SB_CONN_LINGER;
}

void sb_http_req_set_data(sb_http_req *req, void *data)
{
    req_check(req)->data = data;
}

void *sb_http_req_data(const sb_http_req *req)
{
    return req_check(req)->data;
}

/* Header names and values must not smuggle CR/LF into the response. */
static bool header_text_ok(const char *z)
{
    for (; *z != '\0'; z++) {
        if (*z == '\r' || *z == '\n')
            return false;
    }
    return true;
}

void sb_http_add_header(sb_http_req *req, const char *name, const char *value)
{
    req_check(req);
    if (!header_text_ok(name) || !header_text_ok(value) || name[0] == '\0')
        return;
    sb_http_out_hdr *h = sb_http_arena_alloc(&req->arena, sizeof *h);
    h->next = NULL;
    h->name = sb_http_arena_strndup(&req->arena, name, strlen(name));
    h->value = sb_http_arena_strndup(&req->arena, value, strlen(value));
    if (req->out_hdrs_tail != NULL)
        req->out_hdrs_tail->next = h;
    else
        req->out_hdrs = h;
    req->out_hdrs_tail = h;
}

const char *sb_http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Entity";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    }
    return "Unknown";
}

int sb_http_req_query_names(sb_http_req *req, const char *const *known, size_t n, char *bad, size_t cap, bool *repeated)
{
    uint64_t seen = 0; /* at most 64 known names */
    const char *p = sb_http_req_query(req);
    *repeated = false;
    while (*p != '\0') {
        const char *amp = strchr(p, '&');
        size_t pair_len = amp != NULL ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', pair_len);
        size_t key_len = eq != NULL ? (size_t)(eq - p) : pair_len;
        if (pair_len > 0) {
            char key[128];
            size_t len = key_len < sizeof key ? key_len : sizeof key - 1;
            memcpy(key, p, len);
            len = form_decode(key, key, len);
            key[len] = '\0';
            size_t k = 0;
            while (k < n && (strlen(known[k]) != len || memcmp(key, known[k], len) != 0))
                k++;
            if (k == n || (k < 64 && (seen & (1ull << k)))) {
                *repeated = k < n;
                size_t o = 0;
                for (size_t i = 0; i < len && o + 1 < cap; i++)
                    bad[o++] = key[i] > ' ' && key[i] < 0x7f && key[i] != '\'' ? key[i] : '?';
                if (cap > 0)
                    bad[o] = '\0';
                if ((key_len > len || o < len) && o >= 3)
                    memcpy(bad + o - 3, "...", 4);
                return -1;
            }
            if (k < 64)
                seen |= 1ull << k;
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    return 0;
}
