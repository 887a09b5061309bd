/* ivr.c - the IVR state machine (see ivr.h).
 *
 *  - calls: a hash by the voice thread's call id; each call knows its
 *    number, the menus it went through (a stack, at most
 *    SB_IVR_MAX_DEPTH), what it is doing (playing, waiting for a key,
 *    collecting an extension, announcing before it leaves) and its path.
 *  - timers: one heap (base/theap.c) of (at, call), due together in the
 *    order armed. A call knows its live timer's sequence number; a timer
 *    is cancelled by forgetting it, a stale entry is skipped when it comes
 *    up, and the heap is compacted when stale entries outnumber the calls.
 *  - prompts: each PLAY has an id unique in this IVR, so a PLAY_DONE for a
 *    prompt that a key already stopped is told apart from the current one. */
#include "engine/ivr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/theap.h"

typedef enum call_state {
    ST_PLAYING,    /* a menu prompt (or the invalid prompt before it) plays */
    ST_WAITING,    /* the prompt ended; the menu's timeout runs */
    ST_COLLECTING, /* digits of an extension; the interdigit timeout runs */
    ST_ANNOUNCING, /* a prompt before the call leaves for .pending */
} call_state;

typedef struct ivr_call {
    uint64_t id;
    struct ivr_call *next; /* hash chain */
    int64_t number_id;
    char language[8];
    sb_ivr_period period;
    int64_t menus[SB_IVR_MAX_DEPTH];
    int depth;
    call_state state;
    bool answered;
    bool then_menu; /* after the current prompt, the menu's prompt */
    uint32_t play_id;
    int invalid;
    char digits[SB_IVR_EXT_DIGITS + 1];
    int ndigits;
    sb_ivr_target pending;
    const char *pending_reason;
    uint64_t timer_seq; /* the live timer's sequence number; 0 = none */
    char path[SB_IVR_PATH_MAX];
} ivr_call;

typedef struct calendar_slot {
    int64_t id;
    sb_calendar *cal;
} calendar_slot;

typedef struct extension {
    char digits[SB_IVR_EXT_DIGITS + 1];
    int64_t agent_id;
} extension;

struct sb_ivr {
    sb_phone_number *numbers;
    size_t nnumbers, cap_numbers;
    sb_ivr_menu *menus;
    size_t nmenus, cap_menus;
    calendar_slot *calendars;
    size_t ncalendars, cap_calendars;
    extension *extensions;
    size_t nextensions, cap_extensions;
    ivr_call **buckets;
    size_t nbuckets, ncalls;
    sb_theap timers; /* key: call id */
    uint32_t play_next;
};

static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return v;
    *cap = *cap ? *cap * 2 : 8;
    return sb_xrealloc(v, *cap * size);
}

const char *sb_ivr_period_name(sb_ivr_period p)
{
    switch (p) {
    case SB_IVR_BUSINESS_HOURS: return "business_hours";
    case SB_IVR_AFTER_HOURS: return "after_hours";
    case SB_IVR_HOLIDAY: return "holiday";
    }
    return "business_hours";
}

const char *sb_ivr_action_name(sb_ivr_action_kind kind)
{
    static const char *const names[] = {"answer",     "play",      "stop_play", "reject",   "queue",
                                        "ring_agent", "voicemail", "hangup",    "abandoned"};
    return (size_t)kind < SB_ARRAY_LEN(names) ? names[kind] : "?";
}

void sb_ivr_actions_reset(sb_ivr_actions *out)
{
    out->n = 0;
}

void sb_ivr_actions_free(sb_ivr_actions *out)
{
    free(out->v);
    *out = (sb_ivr_actions){0};
}

static sb_ivr_action *emit(sb_ivr_actions *out, sb_ivr_action_kind kind, const ivr_call *c)
{
    out->v = grow(out->v, &out->cap, out->n, sizeof *out->v);
    sb_ivr_action *a = &out->v[out->n++];
    *a = (sb_ivr_action){.kind = kind};
    if (c != NULL) {
        a->call_id = c->id;
        a->number_id = c->number_id;
        a->period = c->period;
        snprintf(a->language, sizeof a->language, "%s", c->language);
        snprintf(a->path, sizeof a->path, "%s", c->path);
    }
    return a;
}

/* ---- configuration ---- */

sb_ivr *sb_ivr_new(void)
{
    sb_ivr *ivr = sb_xcalloc(1, sizeof *ivr);
    ivr->nbuckets = 64;
    ivr->buckets = sb_xcalloc(ivr->nbuckets, sizeof *ivr->buckets);
    return ivr;
}

void sb_ivr_clear_config(sb_ivr *ivr)
{
    for (size_t i = 0; i < ivr->ncalendars; i++)
        sb_calendar_free(ivr->calendars[i].cal);
    ivr->nnumbers = ivr->nmenus = ivr->ncalendars = ivr->nextensions = 0;
}

void sb_ivr_free(sb_ivr *ivr)
{
    if (ivr == NULL)
        return;
    sb_ivr_clear_config(ivr);
    for (size_t b = 0; b < ivr->nbuckets; b++) {
        ivr_call *c = ivr->buckets[b];
        while (c != NULL) {
            ivr_call *next = c->next;
            free(c);
            c = next;
        }
    }
    free(ivr->buckets);
    sb_theap_close(&ivr->timers);
    free(ivr->numbers);
    free(ivr->menus);
    free(ivr->calendars);
    free(ivr->extensions);
    free(ivr);
}

int sb_ivr_put_number(sb_ivr *ivr, const sb_phone_number *number)
{
    size_t at = ivr->nnumbers;
    for (size_t i = 0; i < ivr->nnumbers; i++) {
        if (ivr->numbers[i].id == number->id)
            at = i;
        else if (strcmp(ivr->numbers[i].number, number->number) == 0)
            return SB_ECONFLICT;
    }
    if (at == ivr->nnumbers) {
        ivr->numbers = grow(ivr->numbers, &ivr->cap_numbers, ivr->nnumbers, sizeof *ivr->numbers);
        ivr->nnumbers++;
    }
    ivr->numbers[at] = *number;
    return 0;
}

int sb_ivr_put_menu(sb_ivr *ivr, const sb_ivr_menu *menu)
{
    size_t at = ivr->nmenus;
    for (size_t i = 0; i < ivr->nmenus; i++)
        if (ivr->menus[i].id == menu->id)
            at = i;
    if (at == ivr->nmenus) {
        ivr->menus = grow(ivr->menus, &ivr->cap_menus, ivr->nmenus, sizeof *ivr->menus);
        ivr->nmenus++;
    }
    ivr->menus[at] = *menu;
    return 0;
}

int sb_ivr_put_calendar(sb_ivr *ivr, int64_t id, sb_calendar *cal)
{
    for (size_t i = 0; i < ivr->ncalendars; i++)
        if (ivr->calendars[i].id == id) {
            sb_calendar_free(ivr->calendars[i].cal);
            ivr->calendars[i].cal = cal;
            return 0;
        }
    ivr->calendars = grow(ivr->calendars, &ivr->cap_calendars, ivr->ncalendars, sizeof *ivr->calendars);
    ivr->calendars[ivr->ncalendars++] = (calendar_slot){id, cal};
    return 0;
}

int sb_ivr_put_extension(sb_ivr *ivr, const char *ext, int64_t agent_id)
{
    if (ext == NULL || strlen(ext) != SB_IVR_EXT_DIGITS || strspn(ext, "0123456789") != SB_IVR_EXT_DIGITS ||
        agent_id <= 0)
        return SB_EINVAL;
    for (size_t i = 0; i < ivr->nextensions; i++)
        if (strcmp(ivr->extensions[i].digits, ext) == 0) {
            ivr->extensions[i].agent_id = agent_id;
            return 0;
        }
    ivr->extensions = grow(ivr->extensions, &ivr->cap_extensions, ivr->nextensions, sizeof *ivr->extensions);
    extension *e = &ivr->extensions[ivr->nextensions++];
    snprintf(e->digits, sizeof e->digits, "%s", ext);
    e->agent_id = agent_id;
    return 0;
}

static const sb_phone_number *find_number(const sb_ivr *ivr, const char *digits)
{
    for (size_t i = 0; i < ivr->nnumbers; i++)
        if (strcmp(ivr->numbers[i].number, digits) == 0)
            return &ivr->numbers[i];
    return NULL;
}

static const sb_phone_number *number_by_id(const sb_ivr *ivr, int64_t id)
{
    for (size_t i = 0; i < ivr->nnumbers; i++)
        if (ivr->numbers[i].id == id)
            return &ivr->numbers[i];
    return NULL;
}

const sb_phone_number *sb_ivr_number(const sb_ivr *ivr, int64_t id)
{
    return number_by_id(ivr, id);
}

static const sb_calendar *find_calendar(const sb_ivr *ivr, int64_t id);

const sb_calendar *sb_ivr_calendar(const sb_ivr *ivr, int64_t id)
{
    return find_calendar(ivr, id);
}

static const sb_ivr_menu *find_menu(const sb_ivr *ivr, int64_t id)
{
    for (size_t i = 0; i < ivr->nmenus; i++)
        if (ivr->menus[i].id == id)
            return &ivr->menus[i];
    return NULL;
}

static const sb_calendar *find_calendar(const sb_ivr *ivr, int64_t id)
{
    for (size_t i = 0; i < ivr->ncalendars; i++)
        if (ivr->calendars[i].id == id)
            return ivr->calendars[i].cal;
    return NULL;
}

static bool begins_extension(const sb_ivr *ivr, char digit)
{
    for (size_t i = 0; i < ivr->nextensions; i++)
        if (ivr->extensions[i].digits[0] == digit)
            return true;
    return false;
}

static int64_t extension_agent(const sb_ivr *ivr, const char *digits)
{
    for (size_t i = 0; i < ivr->nextensions; i++)
        if (strcmp(ivr->extensions[i].digits, digits) == 0)
            return ivr->extensions[i].agent_id;
    return 0;
}

/* ---- calls ---- */

static size_t bucket_of(const sb_ivr *ivr, uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (ivr->nbuckets - 1);
}

static ivr_call *find_call(const sb_ivr *ivr, uint64_t id)
{
    for (ivr_call *c = ivr->buckets[bucket_of(ivr, id)]; c != NULL; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

static void rehash(sb_ivr *ivr)
{
    size_t old_n = ivr->nbuckets;
    ivr_call **old = ivr->buckets;
    ivr->nbuckets = old_n * 2;
    ivr->buckets = sb_xcalloc(ivr->nbuckets, sizeof *ivr->buckets);
    for (size_t b = 0; b < old_n; b++) {
        ivr_call *c = old[b];
        while (c != NULL) {
            ivr_call *next = c->next;
            size_t nb = bucket_of(ivr, c->id);
            c->next = ivr->buckets[nb];
            ivr->buckets[nb] = c;
            c = next;
        }
    }
    free(old);
}

static ivr_call *add_call(sb_ivr *ivr, uint64_t id)
{
    if (ivr->ncalls >= ivr->nbuckets)
        rehash(ivr);
    ivr_call *c = sb_xcalloc(1, sizeof *c);
    c->id = id;
    size_t b = bucket_of(ivr, id);
    c->next = ivr->buckets[b];
    ivr->buckets[b] = c;
    ivr->ncalls++;
    return c;
}

static void remove_call(sb_ivr *ivr, ivr_call *c)
{
    ivr_call **p = &ivr->buckets[bucket_of(ivr, c->id)];
    while (*p != c)
        p = &(*p)->next;
    *p = c->next;
    ivr->ncalls--;
    free(c);
}

size_t sb_ivr_calls(const sb_ivr *ivr)
{
    return ivr->ncalls;
}

int sb_ivr_call_path(const sb_ivr *ivr, uint64_t call_id, char *out, size_t cap)
{
    const ivr_call *c = find_call(ivr, call_id);
    if (c == NULL)
        return SB_ENOTFOUND;
    snprintf(out, cap, "%s", c->path);
    return 0;
}

/* Adds one step to the path; a path too long for the log keeps its start. */
static void path_add(ivr_call *c, const char *step)
{
    size_t len = strlen(c->path), n = strlen(step);
    if (len + (len > 0) + n >= sizeof c->path)
        return;
    if (len > 0)
        c->path[len++] = '>';
    memcpy(c->path + len, step, n + 1);
}

/* ---- timers ---- */

static bool timer_live(const sb_timer *tm, void *ctx)
{
    const ivr_call *c = find_call(ctx, tm->key);
    return c != NULL && c->timer_seq == tm->seq;
}

/* Each call has at most one live timer: stale entries are dropped when
 * they outnumber the calls. */
static void arm(sb_ivr *ivr, ivr_call *c, int64_t at)
{
    sb_theap_compact_stale(&ivr->timers, ivr->ncalls, timer_live, ivr);
    c->timer_seq = sb_theap_push(&ivr->timers, (sb_timer){.at = at, .key = c->id});
}

static void disarm(ivr_call *c)
{
    c->timer_seq = 0;
}

int64_t sb_ivr_next_deadline(const sb_ivr *ivr)
{
    return sb_theap_next_at(&ivr->timers);
}

/* ---- decisions ---- */

static const sb_ivr_menu *current_menu(const sb_ivr *ivr, const ivr_call *c)
{
    return c->depth > 0 ? find_menu(ivr, c->menus[c->depth - 1]) : NULL;
}

/* The menu's operator, else the nearest enclosing menu's, else the
 * number's. */
static const sb_ivr_target *operator_of(const sb_ivr *ivr, const ivr_call *c)
{
    for (int d = c->depth; d-- > 0;) {
        const sb_ivr_menu *m = find_menu(ivr, c->menus[d]);
        if (m != NULL && m->operator_target.what != SB_IVR_DO_NONE)
            return &m->operator_target;
    }
    const sb_phone_number *n = number_by_id(ivr, c->number_id);
    return n != NULL && n->operator_target.what != SB_IVR_DO_NONE ? &n->operator_target : NULL;
}

/* The call leaves the IVR towards `t` (queue, agent, voicemail, hangup). */
static void leave(sb_ivr *ivr, ivr_call *c, const sb_ivr_target *t, const char *reason, sb_ivr_actions *out)
{
    sb_ivr_action_kind kind = SB_IVR_HANGUP;
    switch (t != NULL ? t->what : SB_IVR_DO_HANGUP) {
    case SB_IVR_DO_QUEUE: kind = SB_IVR_QUEUE; break;
    case SB_IVR_DO_AGENT: kind = SB_IVR_RING_AGENT; break;
    case SB_IVR_DO_VOICEMAIL: kind = SB_IVR_VOICEMAIL; break;
    default: kind = SB_IVR_HANGUP; break;
    }
    sb_ivr_action *a = emit(out, kind, c);
    a->id = kind != SB_IVR_HANGUP ? t->id : 0;
    a->scheme_id = t != NULL && t->what == SB_IVR_DO_SCHEME ? t->id : 0;
    a->reason = reason;
    remove_call(ivr, c);
}

static void play(sb_ivr *ivr, ivr_call *c, const char *prompt, sb_ivr_actions *out)
{
    if (!c->answered) {
        emit(out, SB_IVR_ANSWER, c);
        c->answered = true;
    }
    disarm(c);
    c->play_id = ++ivr->play_next;
    if (c->play_id == 0)
        c->play_id = ++ivr->play_next;
    sb_ivr_action *a = emit(out, SB_IVR_PLAY, c);
    a->play_id = c->play_id;
    snprintf(a->prompt, sizeof a->prompt, "%s", prompt);
}

static void play_menu(sb_ivr *ivr, ivr_call *c, const sb_ivr_menu *m, sb_ivr_actions *out)
{
    c->state = ST_PLAYING;
    c->then_menu = false;
    c->ndigits = 0;
    play(ivr, c, m->prompt, out);
}

static void go(sb_ivr *ivr, ivr_call *c, const sb_ivr_target *t, const char *reason, sb_ivr_actions *out);

static void fallback(sb_ivr *ivr, ivr_call *c, const sb_ivr_menu *m, const char *reason, sb_ivr_actions *out)
{
    if (m->fallback.what != SB_IVR_DO_NONE && m->fallback.what != SB_IVR_DO_OPERATOR) {
        go(ivr, c, &m->fallback, reason, out);
        return;
    }
    const sb_ivr_target *op = operator_of(ivr, c);
    if (op == NULL) {
        leave(ivr, c, NULL, reason, out);
        return;
    }
    go(ivr, c, op, reason, out);
}

static void go(sb_ivr *ivr, ivr_call *c, const sb_ivr_target *t, const char *reason, sb_ivr_actions *out)
{
    const sb_ivr_menu *m;
    switch (t->what) {
    case SB_IVR_DO_MENU:
        m = find_menu(ivr, t->id);
        if (m == NULL || c->depth == SB_IVR_MAX_DEPTH) {
            leave(ivr, c, NULL, "config_changed", out);
            return;
        }
        c->menus[c->depth++] = m->id;
        c->invalid = 0;
        play_menu(ivr, c, m, out);
        return;
    case SB_IVR_DO_BACK:
    case SB_IVR_DO_REPEAT:
        if (t->what == SB_IVR_DO_BACK && c->depth > 1) {
            c->depth--;
            c->invalid = 0;
        }
        m = current_menu(ivr, c);
        if (m == NULL) {
            leave(ivr, c, NULL, "config_changed", out);
            return;
        }
        play_menu(ivr, c, m, out);
        return;
    case SB_IVR_DO_OPERATOR: {
        const sb_ivr_target *op = operator_of(ivr, c);
        if (op == NULL)
            leave(ivr, c, NULL, "no_operator", out);
        else
            go(ivr, c, op, "operator", out);
        return;
    }
    case SB_IVR_DO_QUEUE:
    case SB_IVR_DO_AGENT:
    case SB_IVR_DO_VOICEMAIL:
    case SB_IVR_DO_HANGUP:
    case SB_IVR_DO_SCHEME:
        if (t->prompt[0] != '\0') {
            c->state = ST_ANNOUNCING;
            c->pending = *t;
            c->pending_reason = reason;
            play(ivr, c, t->prompt, out);
            return;
        }
        leave(ivr, c, t, reason, out);
        return;
    case SB_IVR_DO_NONE: break;
    }
    leave(ivr, c, NULL, reason, out);
}

/* Wrong input `what` (a key, or the digits of an unknown extension). */
static void invalid(sb_ivr *ivr, ivr_call *c, const sb_ivr_menu *m, const char *what, sb_ivr_actions *out)
{
    path_add(c, what);
    c->ndigits = 0;
    if (++c->invalid > m->invalid_retries) {
        fallback(ivr, c, m, "invalid", out);
        return;
    }
    c->state = ST_PLAYING;
    c->then_menu = true;
    play(ivr, c, m->invalid_prompt, out);
}

/* Whether key `slot` does something in `m`: its option, or `0` as the
 * operator. */
static bool has_choice(const sb_ivr *ivr, const ivr_call *c, const sb_ivr_menu *m, int slot)
{
    return m->options[slot].what != SB_IVR_DO_NONE || (slot == 0 && operator_of(ivr, c) != NULL);
}

static void choose(sb_ivr *ivr, ivr_call *c, const sb_ivr_menu *m, char digit, sb_ivr_actions *out)
{
    int slot = sb_ivr_digit_slot(digit);
    char step[2] = {digit, '\0'};
    path_add(c, step);
    c->ndigits = 0;
    if (m->options[slot].what == SB_IVR_DO_NONE) {
        static const sb_ivr_target op = {.what = SB_IVR_DO_OPERATOR};
        go(ivr, c, &op, "operator", out);
        return;
    }
    go(ivr, c, &m->options[slot], m->options[slot].what == SB_IVR_DO_OPERATOR ? "operator" : "selected", out);
}

static void on_digit(sb_ivr *ivr, ivr_call *c, char digit, int64_t now, sb_ivr_actions *out)
{
    const sb_ivr_menu *m = current_menu(ivr, c);
    if (m == NULL) {
        leave(ivr, c, NULL, "config_changed", out);
        return;
    }
    if (c->state == ST_PLAYING) {
        sb_ivr_action *a = emit(out, SB_IVR_STOP_PLAY, c);
        a->play_id = c->play_id;
        c->play_id = 0;
        c->then_menu = false;
    }
    disarm(c);
    if (c->state == ST_COLLECTING) {
        if (digit < '0' || digit > '9') {
            char typed[SB_IVR_EXT_DIGITS + 2];
            snprintf(typed, sizeof typed, "%.*s%c", c->ndigits, c->digits, digit);
            invalid(ivr, c, m, typed, out);
            return;
        }
        c->digits[c->ndigits++] = digit;
        c->digits[c->ndigits] = '\0';
        if (c->ndigits < SB_IVR_EXT_DIGITS) {
            arm(ivr, c, now + (int64_t)m->interdigit_s * 1000);
            return;
        }
        int64_t agent = extension_agent(ivr, c->digits);
        if (agent == 0) {
            invalid(ivr, c, m, c->digits, out);
            return;
        }
        path_add(c, c->digits);
        c->ndigits = 0;
        sb_ivr_target t = {.what = SB_IVR_DO_AGENT, .id = agent};
        leave(ivr, c, &t, "extension", out);
        return;
    }
    int slot = sb_ivr_digit_slot(digit);
    if (m->extension_dialing && slot <= 9 && begins_extension(ivr, digit)) {
        c->state = ST_COLLECTING;
        c->digits[0] = digit;
        c->digits[1] = '\0';
        c->ndigits = 1;
        arm(ivr, c, now + (int64_t)m->interdigit_s * 1000);
        return;
    }
    if (has_choice(ivr, c, m, slot)) {
        choose(ivr, c, m, digit, out);
        return;
    }
    char typed[2] = {digit, '\0'};
    invalid(ivr, c, m, typed, out);
}

static sb_ivr_period period_at(const sb_ivr *ivr, const sb_phone_number *n, int64_t now)
{
    const sb_calendar *cal = n->calendar_id != 0 ? find_calendar(ivr, n->calendar_id) : NULL;
    if (cal == NULL)
        return SB_IVR_BUSINESS_HOURS;
    if (sb_calendar_is_holiday(cal, now))
        return SB_IVR_HOLIDAY;
    return sb_calendar_is_open(cal, now) ? SB_IVR_BUSINESS_HOURS : SB_IVR_AFTER_HOURS;
}

/* A new call of number `n` at `now`: its language and calendar period. */
static ivr_call *start_call(sb_ivr *ivr, uint64_t call_id, const sb_phone_number *n, int64_t now)
{
    ivr_call *c = add_call(ivr, call_id);
    c->number_id = n->id;
    snprintf(c->language, sizeof c->language, "%s", n->language);
    c->period = period_at(ivr, n, now);
    return c;
}

int sb_ivr_enter(sb_ivr *ivr, uint64_t call_id, int64_t number_id, const sb_ivr_target *dest, bool answered,
                 const char *reason, int64_t now, sb_ivr_actions *out)
{
    if (find_call(ivr, call_id) != NULL)
        return SB_ECONFLICT;
    const sb_phone_number *n = number_by_id(ivr, number_id);
    if (n == NULL)
        return SB_ENOTFOUND;
    switch (dest->what) {
    case SB_IVR_DO_MENU:
    case SB_IVR_DO_QUEUE:
    case SB_IVR_DO_AGENT:
    case SB_IVR_DO_VOICEMAIL:
    case SB_IVR_DO_HANGUP: break;
    default: return SB_EINVAL;
    }
    ivr_call *c = start_call(ivr, call_id, n, now);
    c->answered = answered;
    go(ivr, c, dest, reason, out);
    return 0;
}

static int offered(sb_ivr *ivr, const sb_ivr_input *in, int64_t now, sb_ivr_actions *out)
{
    const sb_phone_number *n = in->number != NULL ? find_number(ivr, in->number) : NULL;
    if (n == NULL) {
        sb_ivr_action *a = emit(out, SB_IVR_REJECT, NULL);
        a->call_id = in->call_id;
        a->sip_status = 404;
        a->reason = "unknown_number";
        return 0;
    }
    ivr_call *c = start_call(ivr, in->call_id, n, now);
    const sb_ivr_target *t = &n->entry;
    if (c->period == SB_IVR_HOLIDAY && n->holidays.what != SB_IVR_DO_NONE)
        t = &n->holidays;
    else if (c->period != SB_IVR_BUSINESS_HOURS && n->after_hours.what != SB_IVR_DO_NONE)
        t = &n->after_hours;
    go(ivr, c, t, "entry", out);
    return 0;
}

int sb_ivr_handle(sb_ivr *ivr, const sb_ivr_input *in, int64_t now, sb_ivr_actions *out)
{
    ivr_call *c = find_call(ivr, in->call_id);
    if (in->kind == SB_IVR_IN_OFFERED)
        return c != NULL ? SB_ECONFLICT : offered(ivr, in, now, out);
    if (c == NULL)
        return SB_ENOTFOUND;
    switch (in->kind) {
    case SB_IVR_IN_DIGIT:
        if (sb_ivr_digit_slot(in->digit) < 0)
            return SB_EINVAL;
        if (c->state != ST_ANNOUNCING) /* keys during a goodbye do nothing */
            on_digit(ivr, c, in->digit, now, out);
        return 0;
    case SB_IVR_IN_PLAY_DONE: {
        if (in->play_id == 0 || in->play_id != c->play_id)
            return 0; /* a prompt a key already stopped */
        c->play_id = 0;
        if (c->state == ST_ANNOUNCING) {
            sb_ivr_target t = c->pending;
            leave(ivr, c, &t, c->pending_reason, out);
            return 0;
        }
        const sb_ivr_menu *m = current_menu(ivr, c);
        if (m == NULL) {
            leave(ivr, c, NULL, "config_changed", out);
        } else if (c->then_menu) {
            play_menu(ivr, c, m, out);
        } else if (c->state == ST_PLAYING) {
            c->state = ST_WAITING;
            arm(ivr, c, now + (int64_t)m->timeout_s * 1000);
        }
        return 0;
    }
    case SB_IVR_IN_HANGUP: {
        sb_ivr_action *a = emit(out, SB_IVR_ABANDONED, c);
        a->reason = "caller";
        remove_call(ivr, c);
        return 0;
    }
    case SB_IVR_IN_OFFERED: break;
    }
    return SB_EINVAL;
}

static void fire(sb_ivr *ivr, ivr_call *c, int64_t now, sb_ivr_actions *out)
{
    c->timer_seq = 0;
    const sb_ivr_menu *m = current_menu(ivr, c);
    if (m == NULL) {
        leave(ivr, c, NULL, "config_changed", out);
        return;
    }
    if (c->state == ST_WAITING) {
        path_add(c, "t");
        fallback(ivr, c, m, "timeout", out);
    } else if (c->state == ST_COLLECTING) {
        /* the pause after one key that also begins an extension: that key */
        if (c->ndigits == 1 && has_choice(ivr, c, m, sb_ivr_digit_slot(c->digits[0])))
            choose(ivr, c, m, c->digits[0], out);
        else
            invalid(ivr, c, m, c->digits, out);
    }
    (void)now;
}

void sb_ivr_tick(sb_ivr *ivr, int64_t now, sb_ivr_actions *out)
{
    sb_timer tm;
    while (sb_theap_pop_due(&ivr->timers, now, &tm)) {
        ivr_call *c = find_call(ivr, tm.key);
        if (c != NULL && c->timer_seq == tm.seq)
            fire(ivr, c, now, out);
    }
}
