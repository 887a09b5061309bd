/* template.h - message templates with {{placeholders}}.
 *
 * "Здравствуйте, {{contact.name}}! Ваш запрос №{{ticket.number}} принят."
 * Placeholders are checked when a template is parsed (saved), so an
 * unknown one is an error then, never a surprise in a customer's chat. */
#ifndef SB_TEMPLATE_H
#define SB_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sb_template sb_template;

/* Every placeholder a template may use, NULL-terminated:
 * contact.name contact.first_name contact.phone contact.email
 * ticket.number ticket.subject ticket.status ticket.priority ticket.channel
 * agent.name agent.first_name team.name business_hours.next_open
 * csat.scale company.name */
extern const char *const sb_template_placeholders[];

/* Parses `text`. "{{ name }}" (spaces inside the braces allowed) is a
 * placeholder; "\{{" is a literal "{{". Errors (SB_EINVAL, `err` says
 * which and where): unknown placeholder, unclosed "{{", empty name, text
 * over 10,000 bytes, invalid UTF-8. */
int sb_template_parse(const char *text, sb_template **out, char *err, size_t err_cap);
void sb_template_free(sb_template *t);

/* Returns the value for a placeholder, or NULL for "unknown here" (then
 * the placeholder renders as empty text). */
typedef const char *(*sb_template_lookup_fn)(void *ctx, const char *name);

/* Renders with values from `lookup`; the result is malloc()ed. */
char *sb_template_render(const sb_template *t, sb_template_lookup_fn lookup, void *ctx);

/* The values of every placeholder, as the engine (automatic replies) and
 * the API (agents' template replies) both fill them; NULL = unknown. The
 * first names are derived from the full names. */
typedef struct sb_template_values {
    const char *contact_name, *contact_phone, *contact_email;
    const char *ticket_subject, *ticket_status, *ticket_priority, *ticket_channel;
    int64_t ticket_number;
    const char *agent_name, *team_name, *company_name;
    const char *next_open; /* "23.11.2026 09:00", formatted by sb_template_format_time */
    /* scratch for derived values */
    char number[24], contact_first[64], agent_first[64];
} sb_template_values;

/* An sb_template_lookup_fn over an sb_template_values (ctx). */
const char *sb_template_value(void *ctx, const char *name);
/* Local wall time for {{business_hours.next_open}}: "DD.MM.YYYY HH:MM", or
 * "YYYY-MM-DD HH:MM" for English. */
void sb_template_format_time(int year, int month, int day, int minute_of_day, const char *lang, char *out, size_t cap);

#endif
