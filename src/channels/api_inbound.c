/* api_inbound.c - see api_inbound.h. */
#include "channels/api_inbound.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/crypto.h"
#include "api/channels.h"
#include "base/sb.h"
#include "engine/model.h"

#define MAX_ATTACHMENTS 20

static int fail(sb_api_inbound *in, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(sb_api_inbound *in, int status, const char *code, const char *fmt, ...)
{
    in->status = status;
    snprintf(in->code, sizeof in->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(in->message, sizeof in->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* Optional string field of at most maxlen bytes without NUL; "" -> NULL. */
static int get_str(sb_api_inbound *in, json_t *obj, const char *obj_name, const char *name, size_t maxlen,
                   const char **out)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return fail(in, 422, "validation_failed", "field '%s%s' must be a string", obj_name, name);
    if (json_string_length(v) > maxlen)
        return fail(in, 422, "validation_failed", "field '%s%s' is longer than %zu bytes", obj_name, name, maxlen);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return fail(in, 422, "validation_failed", "field '%s%s' contains a NUL character", obj_name, name);
    if (json_string_length(v) > 0)
        *out = json_string_value(v);
    return 0;
}

static int only_fields(sb_api_inbound *in, json_t *obj, const char *obj_name, const char *const *allowed)
{
    const char *key;
    json_t *val;
    json_object_foreach (obj, key, val) {
        bool ok = false;
        for (const char *const *a = allowed; *a != NULL; a++)
            ok = ok || strcmp(key, *a) == 0;
        if (!ok)
            return fail(in, 422, "unknown_field", "unknown field '%s%s'", obj_name, key);
    }
    return 0;
}

static int check_attachments(sb_api_inbound *in, json_t *list)
{
    if (list == NULL || json_is_null(list))
        return 0;
    if (!json_is_array(list) || json_array_size(list) > MAX_ATTACHMENTS)
        return fail(in, 422, "validation_failed", "field 'attachments' must be an array of at most %d items",
                    MAX_ATTACHMENTS);
    static const char *const allowed[] = {"url", "data", "name", "mime", NULL};
    size_t i;
    json_t *a;
    json_array_foreach (list, i, a) {
        char where[40];
        snprintf(where, sizeof where, "attachments[%zu].", i);
        if (!json_is_object(a))
            return fail(in, 422, "validation_failed", "field 'attachments[%zu]' must be an object", i);
        const char *url, *data, *name, *mime;
        if (only_fields(in, a, where, allowed) || get_str(in, a, where, "url", 2047, &url) ||
            get_str(in, a, where, "data", 64u << 20, &data) || get_str(in, a, where, "name", 255, &name) ||
            get_str(in, a, where, "mime", 127, &mime))
            return -1;
        if ((url == NULL) == (data == NULL))
            return fail(in, 422, "validation_failed", "field 'attachments[%zu]' needs exactly one of 'url' or 'data'",
                        i);
        if (url != NULL && !sb_callback_url_valid(url))
            return fail(in, 422, "validation_failed", "field '%surl' must be an http(s) URL", where);
        if (data != NULL) {
            unsigned char *bytes = NULL;
            size_t len = 0;
            if (sb_base64_decode(data, strlen(data), &bytes, &len) != 0)
                return fail(in, 422, "validation_failed", "field '%sdata' is not valid base64", where);
            free(bytes);
        }
    }
    in->attachments = list;
    return 0;
}

int sb_api_inbound_parse(const char *body, size_t len, sb_api_inbound *in)
{
    memset(in, 0, sizeof *in);
    in->text = "";
    if (!sb_utf8_valid(body, len))
        return fail(in, 400, "invalid_utf8", "the body is not valid UTF-8");
    json_error_t err;
    in->root = json_loadb(body != NULL ? body : "", len, JSON_REJECT_DUPLICATES, &err);
    if (in->root == NULL)
        return fail(in, 400, "malformed_json", "malformed JSON at offset %d: %s", err.position, err.text);
    if (!json_is_object(in->root))
        return fail(in, 400, "malformed_json", "the body must be a JSON object");
    static const char *const allowed[] = {"external_id", "from",       "text", "attachments",
                                          "timestamp",   "auto_reply", NULL};
    static const char *const from_allowed[] = {"id", "name", "phone", "email", NULL};
    const char *text = NULL;
    if (only_fields(in, in->root, "", allowed) || get_str(in, in->root, "", "external_id", 200, &in->external_id) ||
        get_str(in, in->root, "", "text", 65536, &text))
        return -1;
    if (in->external_id == NULL)
        return fail(in, 422, "validation_failed", "field 'external_id' is required");
    if (text != NULL)
        in->text = text;
    json_t *from = json_object_get(in->root, "from");
    if (!json_is_object(from))
        return fail(in, 422, "validation_failed", "field 'from' must be an object");
    if (only_fields(in, from, "from.", from_allowed) || get_str(in, from, "from.", "id", 200, &in->from_id) ||
        get_str(in, from, "from.", "name", 200, &in->name) || get_str(in, from, "from.", "phone", 40, &in->phone) ||
        get_str(in, from, "from.", "email", 254, &in->email))
        return -1;
    if (in->from_id == NULL && in->phone == NULL && in->email == NULL)
        return fail(in, 422, "validation_failed", "field 'from' needs at least one of id, phone, email");
    char norm[256];
    if (in->phone != NULL && sb_phone_normalize(in->phone, "7", norm, sizeof norm) != 0)
        return fail(in, 422, "validation_failed", "field 'from.phone' is not a phone number");
    if (in->email != NULL && sb_email_normalize(in->email, norm, sizeof norm) != 0)
        return fail(in, 422, "validation_failed", "field 'from.email' is not an email address");
    json_t *ts = json_object_get(in->root, "timestamp");
    if (ts != NULL && !json_is_null(ts)) {
        if (json_is_integer(ts) && json_integer_value(ts) > 0 && json_integer_value(ts) < 100000000000LL)
            in->timestamp = json_integer_value(ts) * 1000;
        else if (!json_is_string(ts) || sb_clock_parse_iso(json_string_value(ts), &in->timestamp) != 0)
            return fail(in, 422, "validation_failed",
                        "field 'timestamp' must be Unix seconds or an ISO 8601 date-time");
    }
    json_t *auto_reply = json_object_get(in->root, "auto_reply");
    if (auto_reply != NULL && !json_is_boolean(auto_reply))
        return fail(in, 422, "validation_failed", "field 'auto_reply' must be true or false");
    in->auto_reply = json_is_true(auto_reply);
    if (check_attachments(in, json_object_get(in->root, "attachments")) != 0)
        return -1;
    if (in->text[0] == '\0' && (in->attachments == NULL || json_array_size(in->attachments) == 0))
        return fail(in, 422, "validation_failed", "field 'text' is required unless there are attachments");
    return 0;
}

void sb_api_inbound_free(sb_api_inbound *in)
{
    json_decref(in->root);
    in->root = NULL;
}
