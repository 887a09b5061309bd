/* template.c - message templates with {{placeholders}}.
 *
 * A template is parsed once into a list of parts, each either literal text
 * or a known placeholder; rendering joins the parts. Values are inserted as
 * they are and never parsed again, so a contact named "{{agent.name}}"
 * renders as exactly that text. */
#include "engine/template.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sb.h"

#define TEMPLATE_MAX_BYTES 10000
/* Longest name quoted in an error message; the rest becomes "...". */
#define TEMPLATE_ERR_NAME 64

const char *const sb_template_placeholders[] = {
    "contact.name",
    "contact.first_name",
    "contact.phone",
    "contact.email",
    "ticket.number",
    "ticket.subject",
    "ticket.status",
    "ticket.priority",
    "ticket.channel",
    "agent.name",
    "agent.first_name",
    "team.name",
    "business_hours.next_open",
    "csat.scale",
    "company.name",
    NULL,
};

typedef struct template_part {
    /* Literal text: offset into the template's text buffer. */
    size_t off, len;
    /* Placeholder: one of sb_template_placeholders, else NULL. */
    const char *name;
} template_part;

struct sb_template {
    char *text; /* all literal text, escapes resolved */
    template_part *parts;
    size_t nparts;
};

/* Byte offset of the first invalid UTF-8 sequence, or len if none. */
static size_t utf8_invalid_at(const char *p, size_t len)
{
    if (sb_utf8_valid(p, len))
        return len;
    /* Slow path, only for the error message: grow each character until it
     * is valid; four bytes without success is the bad spot. */
    size_t i = 0;
    while (i < len) {
        size_t n = 1;
        while (n <= 4 && i + n <= len && !sb_utf8_valid(p + i, n))
            n++;
        if (n > 4 || i + n > len)
            return i;
        i += n;
    }
    return len;
}

static const char *find_placeholder(const char *name, size_t len)
{
    for (size_t i = 0; sb_template_placeholders[i] != NULL; i++) {
        const char *known = sb_template_placeholders[i];
        if (strlen(known) == len && memcmp(known, name, len) == 0)
            return known;
    }
    return NULL;
}

static void add_part(sb_template *t, size_t *cap, template_part part)
{
    if (t->nparts == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        t->parts = sb_xrealloc(t->parts, *cap * sizeof t->parts[0]);
    }
    t->parts[t->nparts++] = part;
}

/* Appends literal bytes, extending the previous literal part if there is
 * one so that "a\{{b" is a single part. */
static void add_literal(sb_template *t, size_t *cap, sb_buf *lit, const char *p, size_t len)
{
    if (len == 0)
        return;
    if (t->nparts > 0 && t->parts[t->nparts - 1].name == NULL)
        t->parts[t->nparts - 1].len += len;
    else
        add_part(t, cap, (template_part){lit->len, len, NULL});
    sb_buf_append(lit, p, len);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Grammar: "\{{" is a literal "{{"; "{{", optional blanks, a name,
 * optional blanks, "}}" is a placeholder. The name runs to the first "}}";
 * a "{{" or a line break before it means the first "{{" was never closed.
 * Any other "\", "{" or "}" is literal text. */
int sb_template_parse(const char *text, sb_template **out, char *err, size_t err_cap)
{
    int rc = SB_EINVAL;
    sb_template *t = NULL;
    sb_buf lit;
    size_t cap = 0;

    sb_buf_init(&lit);
    sb_errorf(err, err_cap, "%s", "");
    if (out == NULL)
        return SB_EINVAL;
    *out = NULL;
    if (text == NULL) {
        sb_errorf(err, err_cap, "no template text");
        return SB_EINVAL;
    }
    size_t len = strnlen(text, TEMPLATE_MAX_BYTES + 1);
    if (len > TEMPLATE_MAX_BYTES) {
        sb_errorf(err, err_cap, "template longer than %d bytes", TEMPLATE_MAX_BYTES);
        return SB_EINVAL;
    }
    size_t bad = utf8_invalid_at(text, len);
    if (bad < len) {
        sb_errorf(err, err_cap, "invalid UTF-8 at offset %zu", bad);
        return SB_EINVAL;
    }

    t = sb_xcalloc(1, sizeof *t);
    size_t i = 0, lit_start = 0;
    while (i < len) {
        if (text[i] == '\\' && i + 2 < len && text[i + 1] == '{' && text[i + 2] == '{') {
            add_literal(t, &cap, &lit, text + lit_start, i - lit_start);
            add_literal(t, &cap, &lit, "{{", 2);
            i += 3;
            lit_start = i;
            continue;
        }
        if (text[i] != '{' || i + 1 >= len || text[i + 1] != '{') {
            i++;
            continue;
        }

        size_t open = i;
        const char *close = strstr(text + open + 2, "}}");
        size_t end = close != NULL ? (size_t)(close - text) : len;
        for (size_t k = open + 2; k < end; k++) {
            if (text[k] == '\n' || text[k] == '\r' || (text[k] == '{' && text[k + 1] == '{')) {
                close = NULL;
                break;
            }
        }
        if (close == NULL) {
            sb_errorf(err, err_cap, "unclosed {{ at offset %zu", open);
            goto fail;
        }
        size_t name_start = open + 2, name_end = end;
        while (name_start < name_end && is_blank(text[name_start]))
            name_start++;
        while (name_end > name_start && is_blank(text[name_end - 1]))
            name_end--;
        size_t name_len = name_end - name_start;
        if (name_len == 0) {
            sb_errorf(err, err_cap, "empty placeholder name at offset %zu", open);
            goto fail;
        }
        const char *name = find_placeholder(text + name_start, name_len);
        if (name == NULL) {
            /* Quote at most TEMPLATE_ERR_NAME bytes, cut at a character. */
            size_t shown = name_len;
            if (shown > TEMPLATE_ERR_NAME) {
                shown = TEMPLATE_ERR_NAME;
                while (shown > 0 && ((unsigned char)text[name_start + shown] & 0xC0) == 0x80)
                    shown--;
            }
            sb_errorf(err, err_cap, "unknown placeholder {{%.*s%s}} at offset %zu", (int)shown, text + name_start,
                      shown < name_len ? "..." : "", open);
            goto fail;
        }
        add_literal(t, &cap, &lit, text + lit_start, open - lit_start);
        add_part(t, &cap, (template_part){0, 0, name});
        i = end + 2;
        lit_start = i;
    }
    add_literal(t, &cap, &lit, text + lit_start, len - lit_start);

    /* The buffer holds every literal; an empty template keeps "" too. */
    if (lit.p == NULL)
        sb_buf_append(&lit, "", 0);
    t->text = lit.p;
    *out = t;
    return 0;

fail:
    sb_buf_free(&lit);
    sb_template_free(t);
    return rc;
}

void sb_template_free(sb_template *t)
{
    if (t == NULL)
        return;
    free(t->text);
    free(t->parts);
    free(t);
}

char *sb_template_render(const sb_template *t, sb_template_lookup_fn lookup, void *ctx)
{
    sb_buf out;
    sb_buf_init(&out);
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < t->nparts; i++) {
        const template_part *part = &t->parts[i];
        if (part->name == NULL) {
            sb_buf_append(&out, t->text + part->off, part->len);
            continue;
        }
        const char *value = lookup != NULL ? lookup(ctx, part->name) : NULL;
        if (value != NULL)
            sb_buf_appendz(&out, value);
    }
    /* Always a string, even for an empty template. */
    if (out.p == NULL)
        sb_buf_append(&out, "", 0);
    return out.p;
}

static void first_word(const char *z, char *out, size_t cap)
{
    size_t n = strcspn(z, " \t");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), z);
}

const char *sb_template_value(void *ctx, const char *name)
{
    sb_template_values *v = ctx;
    if (strcmp(name, "contact.name") == 0)
        return v->contact_name;
    if (strcmp(name, "contact.first_name") == 0) {
        if (v->contact_name == NULL)
            return NULL;
        first_word(v->contact_name, v->contact_first, sizeof v->contact_first);
        return v->contact_first;
    }
    if (strcmp(name, "contact.phone") == 0)
        return v->contact_phone;
    if (strcmp(name, "contact.email") == 0)
        return v->contact_email;
    if (strcmp(name, "ticket.number") == 0) {
        if (v->ticket_number <= 0)
            return NULL;
        snprintf(v->number, sizeof v->number, "%lld", (long long)v->ticket_number);
        return v->number;
    }
    if (strcmp(name, "ticket.subject") == 0)
        return v->ticket_subject;
    if (strcmp(name, "ticket.status") == 0)
        return v->ticket_status;
    if (strcmp(name, "ticket.priority") == 0)
        return v->ticket_priority;
    if (strcmp(name, "ticket.channel") == 0)
        return v->ticket_channel;
    if (strcmp(name, "agent.name") == 0)
        return v->agent_name;
    if (strcmp(name, "agent.first_name") == 0) {
        if (v->agent_name == NULL)
            return NULL;
        first_word(v->agent_name, v->agent_first, sizeof v->agent_first);
        return v->agent_first;
    }
    if (strcmp(name, "team.name") == 0)
        return v->team_name;
    if (strcmp(name, "company.name") == 0)
        return v->company_name;
    if (strcmp(name, "csat.scale") == 0)
        return "1–5";
    if (strcmp(name, "business_hours.next_open") == 0)
        return v->next_open;
    return NULL;
}

void sb_template_format_time(int year, int month, int day, int minute_of_day, const char *lang, char *out, size_t cap)
{
    if (lang != NULL && strcmp(lang, "en") == 0)
        snprintf(out, cap, "%04d-%02d-%02d %02d:%02d", year, month, day, minute_of_day / 60, minute_of_day % 60);
    else
        snprintf(out, cap, "%02d.%02d.%04d %02d:%02d", day, month, year, minute_of_day / 60, minute_of_day % 60);
}
