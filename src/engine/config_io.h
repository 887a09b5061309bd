/* config_io.h - the engine configuration as one JSON file (`switchboard
 * config export|import`); see config_io.c for the format. */
#ifndef SB_CONFIG_IO_H
#define SB_CONFIG_IO_H

#include <jansson.h>

#include "engine/model.h"
#include "store/store.h"

typedef struct sb_config_import_stats {
    int documents, teams, agents;
} sb_config_import_stats;

/* The stored configuration as a new JSON object. */
int sb_config_export(sb_tx *tx, json_t **out);
/* Validates `in` completely, then replaces the stored configuration with
 * it. On a validation error returns SB_EINVAL and writes a message that
 * names the place ("rules[2].when.all[0].op: unknown operator") to err,
 * having changed nothing. */
int sb_config_import(sb_tx *tx, const json_t *in, sb_config_import_stats *stats, char *err, size_t err_cap);

#endif
