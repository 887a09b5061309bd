/* channels.h - channel rows shared by the API and the CLI. */
#ifndef SB_CHANNELS_H
#define SB_CHANNELS_H

#include <jansson.h>
#include <stdbool.h>

#include "engine/model.h"
#include "store/store.h"

json_t *sb_channel_json(sb_tx *tx, int64_t id, const char *public_url);
/* Creates a channel; api channels get a random secret (copied to secret_out). */
/* Gives API channel `id` a new random signing secret (copied to secret_out)
 * and logs channel.secret_rotated (without the secret). The old one stops
 * working with this commit. SB_ENOTFOUND unless an API channel. */
int sb_channel_rotate_secret(sb_tx *tx, int64_t id, sb_actor actor, char secret_out[65]);
int sb_channel_create(sb_tx *tx, const char *kind, const char *name, const char *callback_url, const char *config,
                      int64_t *id, char secret_out[65]);
/* An absolute http(s) URL without spaces or controls, under 2048 bytes (NULL
 * counts as valid: "no URL"). */
bool sb_callback_url_valid(const char *url);

#endif
