/* config_docs.h - the CRUD every configuration document shares (config.c):
 * one JSON document per config_item row, under /api/v1/<collection> and
 * /api/v1/<collection>/{id}.
 *
 *   GET    collection        {"<many>": [doc, ...]} by position, then id (agent)
 *   POST   collection        201 {"<one>": doc}; an id in the body or the next one (admin)
 *   GET    collection/{id}   {"<one>": doc} or 404 (agent)
 *   PUT    collection/{id}   200 {"<one>": doc}; 404 if none (admin)
 *   DELETE collection/{id}   {"deleted": {"kind", "id"}}; 409 while in use (admin)
 *
 * Every write is validated by the engine's parser (sb_config_check, 422
 * naming the field), then by the kind's own `check`, logged as a
 * config.created/updated/deleted event and followed by a reload of the
 * engine. Reads run on the store's reader thread. A kind says what is its
 * own: how "position" is treated, what else a document must satisfy (the
 * ids it names exist, ...), and what still refers to it. */
#ifndef SB_API_CONFIG_DOCS_H
#define SB_API_CONFIG_DOCS_H

#include "api/api.h"
#include "engine/config.h"

typedef enum sb_doc_position {
    SB_DOC_POSITION_NONE,    /* "position" is no field of ours: the parser judges it */
    SB_DOC_POSITION_REFUSED, /* "position" in a body is 422 (templates, calendars) */
    SB_DOC_POSITION_ORDERED, /* "position" orders the list (rules, SLA policies) */
} sb_doc_position;

typedef struct sb_doc_kind sb_doc_kind;
struct sb_doc_kind {
    const char *kind;       /* stored kind: "rule" */
    const char *collection; /* "/api/v1/rules" */
    const char *prefix;     /* "/api/v1/rules/" */
    const char *one, *many; /* response keys: "rule", "rules" */
    sb_doc_position position;
    /* After the parser accepted `doc` (with `refs`, the ids it names) as
     * document `id` of this kind: 0, or the op failed (sb_api_fail). */
    int (*check)(sb_tx *tx, sb_api_op *op, const sb_doc_kind *k, const json_t *doc, const sb_config_refs *refs,
                 int64_t id);
    /* Before document `id` is deleted: 0, or 409 naming what uses it. */
    int (*check_unused)(sb_tx *tx, sb_api_op *op, const sb_doc_kind *k, int64_t id);
};

/* Every stored document of `kind` but `except` (0: all), by position then
 * id, as a new JSON array in *out. */
int sb_api_docs_load(sb_tx *tx, const char *kind, int64_t except, json_t **out);
/* Routes `path` if it is one of the kinds' collections or documents. */
bool sb_api_docs_route(sb_app *app, sb_http_req *req, const char *path, const sb_doc_kind *kinds, size_t nkinds);

#endif
