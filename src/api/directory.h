/* directory.h - agents and teams as JSON (shared by auth and directory). */
#ifndef SB_DIRECTORY_H
#define SB_DIRECTORY_H

#include <jansson.h>

#include "store/store.h"

json_t *sb_agent_json(sb_tx *tx, int64_t agent_id);
json_t *sb_team_json(sb_tx *tx, int64_t team_id);

#endif
