/* web.c - the browser workspace's files, served from memory (see web.h).
 *
 * The build is small (tens of kilobytes) and never changes while the
 * daemon runs, so it is read once at start: no file I/O per request, and a
 * half-written build on disk cannot be served half. index.html is sent with
 * no-cache (so a new build shows at the next load) and the strict
 * Content-Security-Policy; /assets/ names carry a content hash, so they are
 * cached for a year. */
#include "web.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/sb.h"

#define MAX_FILES 256
#define MAX_BYTES (16u << 20)

/* Scripts, styles, images and connections only from us; no framing, no
 * plugins, no inline code (the build has none). */
#define CSP                                                                                                            \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "              \
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

typedef struct web_file {
    char *path; /* "/assets/index-AKMhavMx.js" */
    const char *type;
    sb_buf body;
} web_file;

struct sb_web {
    web_file index;
    web_file *files;
    size_t nfiles;
};

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".woff2", "font/woff2"},
        {".json", "application/json"},
        {".html", "text/html; charset=utf-8"},
        {".ico", "image/x-icon"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot != NULL && i < SB_ARRAY_LEN(types); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static int read_file(const char *path, sb_buf *out, size_t *total)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return SB_ENOTFOUND;
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        *total += n;
        if (*total > MAX_BYTES) {
            rc = SB_ETOOBIG;
            break;
        }
        sb_buf_append(out, chunk, n);
    }
    fclose(f);
    return rc;
}

void sb_web_free(sb_web *w)
{
    if (w == NULL)
        return;
    sb_buf_free(&w->index.body);
    for (size_t i = 0; i < w->nfiles; i++) {
        free(w->files[i].path);
        sb_buf_free(&w->files[i].body);
    }
    free(w->files);
    free(w);
}

sb_web *sb_web_load(const char *root)
{
    if (root == NULL || root[0] == '\0')
        return NULL;
    sb_web *w = sb_xcalloc(1, sizeof *w);
    char path[1024];
    size_t total = 0;
    snprintf(path, sizeof path, "%s/index.html", root);
    if (read_file(path, &w->index.body, &total) != 0) {
        sb_web_free(w);
        return NULL;
    }
    w->index.type = "text/html; charset=utf-8";
    snprintf(path, sizeof path, "%s/assets", root);
    DIR *dir = opendir(path);
    w->files = sb_xcalloc(MAX_FILES, sizeof *w->files);
    struct dirent *e;
    while (dir != NULL && (e = readdir(dir)) != NULL && w->nfiles < MAX_FILES) {
        if (e->d_name[0] == '.' || strchr(e->d_name, '/') != NULL)
            continue;
        web_file *f = &w->files[w->nfiles];
        snprintf(path, sizeof path, "%s/assets/%s", root, e->d_name);
        sb_buf_init(&f->body);
        if (read_file(path, &f->body, &total) != 0) {
            sb_buf_free(&f->body);
            continue;
        }
        size_t n = strlen(e->d_name) + 9;
        f->path = sb_xmalloc(n);
        snprintf(f->path, n, "/assets/%s", e->d_name);
        f->type = content_type(e->d_name);
        w->nfiles++;
    }
    if (dir != NULL)
        closedir(dir);
    sb_log(SB_INFO, "web", "workspace loaded root=%s files=%zu bytes=%zu", root, w->nfiles + 1, total);
    return w;
}

/* The workspace keeps its state in the page, not in the URL, so "/" is its
 * only document; any other unknown path stays a 404. */
static bool app_route(const char *path)
{
    return strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0;
}

bool sb_web_route(sb_web *w, sb_http_req *req, const char *path)
{
    if (w == NULL)
        return false;
    sb_http_method m = sb_http_req_method(req);
    if (m != SB_HTTP_GET && m != SB_HTTP_HEAD)
        return false;
    if (strncmp(path, "/assets/", 8) == 0) {
        for (size_t i = 0; i < w->nfiles; i++)
            if (strcmp(w->files[i].path, path) == 0) {
                sb_http_add_header(req, "Cache-Control", "public, max-age=31536000, immutable");
                sb_http_add_header(req, "X-Content-Type-Options", "nosniff");
                sb_http_respond(req, 200, w->files[i].type, w->files[i].body.p, w->files[i].body.len);
                return true;
            }
        sb_http_respond_error(req, 404, "not_found", "no such file: %s", path);
        return true;
    }
    if (!app_route(path))
        return false;
    sb_http_add_header(req, "Cache-Control", "no-cache");
    sb_http_add_header(req, "Content-Security-Policy", CSP);
    sb_http_add_header(req, "X-Content-Type-Options", "nosniff");
    sb_http_add_header(req, "Referrer-Policy", "same-origin");
    sb_http_respond(req, 200, w->index.type, w->index.body.p, w->index.body.len);
    return true;
}
