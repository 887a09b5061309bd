/* web.h - serves the browser workspace (web/dist, built by `npm run build`)
 * from memory: index.html for "/", the content-hashed files under /assets/
 * with a year of caching. */
#ifndef SB_WEB_H
#define SB_WEB_H

#include <stdbool.h>

#include "http/http.h"

typedef struct sb_web sb_web;

/* Reads index.html and assets/ under `root`; NULL if there is no build. */
sb_web *sb_web_load(const char *root);
void sb_web_free(sb_web *w);
/* Answers GET/HEAD for the workspace; false if the path is not its. */
bool sb_web_route(sb_web *w, sb_http_req *req, const char *path);

#endif
