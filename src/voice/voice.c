/* voice.c - the voice thread's lifecycle and the two queues between it and
 * the core loop (see voice.h). Start order follows DESIGN.md §5: libre_init,
 * fd_setsize first (later calls are silently ignored; 1024 fds break near
 * 500 calls), mqueue, SIP stack and transports, re_main(NULL) -- a non-NULL
 * handler would install process-wide signal handlers over libuv's. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "voice/voice_internal.h"

#define VOICE_MAGIC  0x564f4943u /* "VOIC" */
#define LAG_FRESH_MS 1000        /* a lag measured longer ago than this is stale */

typedef struct ev_node {
    sb_voice_event ev;
    uint64_t mono_ms; /* when it was posted */
    struct ev_node *next;
} ev_node;

struct sb_voice {
    uint32_t magic;
    uv_loop_t *loop;
    uv_async_t async;
    uv_timer_t retry;
    int closing_handles;
    sb_voice_event_fn on_event;
    void *arg;
    sb_voice_options opt;
    pthread_t thread;
    bool joined;
    /* start-up handshake */
    pthread_mutex_t start_mu;
    pthread_cond_t start_cv;
    bool start_signalled;
    int start_rc;
    int port;
    /* set by the voice thread before start-up is signalled; afterwards
     * only mqueue_push touches it from the core */
    struct mqueue *mq;
    sb_vthread *vt; /* voice thread only */
    /* voice -> core */
    pthread_mutex_t ev_mu;
    ev_node *ev_head, *ev_tail;
    /* the core's lag: how old the last event it handled was, and when */
    atomic_uint_fast64_t lag_ms, lag_at_ms;
    /* core-side backlog when the command pipe is full */
    sb_vcmd *backlog_head, *backlog_tail;
    bool stopping;
    void (*stop_done)(void *);
    void *stop_arg;
    sb_voice_counters counters;
};

void sb_vcmd_free(sb_vcmd *c)
{
    if (c == NULL)
        return;
    free(c->path);
    free(c->ext);
    free(c->orig);
    free(c);
}

sb_voice_counters *sb_voice_counters_of(sb_voice *v)
{
    return &v->counters;
}

void sb_voice_post(sb_voice *v, const sb_voice_event *ev)
{
    ev_node *n = sb_xmalloc(sizeof *n);
    n->ev = *ev;
    n->mono_ms = sb_clock_mono_ms();
    n->next = NULL;
    pthread_mutex_lock(&v->ev_mu);
    if (v->ev_tail != NULL)
        v->ev_tail->next = n;
    else
        v->ev_head = n;
    v->ev_tail = n;
    pthread_mutex_unlock(&v->ev_mu);
    uv_async_send(&v->async);
}

/* ---- the voice thread ---- */

static void on_mqueue(int id, void *data, void *arg)
{
    sb_voice *v = arg;
    sb_vcmd *cmd = data;
    SB_ASSERT(v->magic == VOICE_MAGIC);
    if (id == SB_VCMD_STOP) {
        sb_vcmd_free(cmd);
        sb_vsip_shutdown(v->vt);
        return;
    }
    sb_vsip_command(v->vt, cmd);
}

static void signal_start(sb_voice *v, int rc)
{
    pthread_mutex_lock(&v->start_mu);
    v->start_rc = rc;
    v->start_signalled = true;
    pthread_cond_signal(&v->start_cv);
    pthread_mutex_unlock(&v->start_mu);
}

static void *voice_main(void *arg)
{
    sb_voice *v = arg;
    int err = libre_init();
    if (err != 0) {
        sb_log(SB_ERROR, "voice", "libre_init failed err=%d", err);
        signal_start(v, SB_EIO);
        return NULL;
    }
    err = fd_setsize(16384);
    if (err == 0)
        err = mqueue_alloc(&v->mq, on_mqueue, v);
    int port = 0;
    int rc = err == 0 ? sb_vsip_open(&v->vt, v, &v->opt, &port) : SB_EIO;
    if (rc != 0) {
        v->mq = mem_deref(v->mq);
        libre_close();
        signal_start(v, rc);
        return NULL;
    }
    v->port = port;
    signal_start(v, 0);
    err = re_main(NULL);
    if (err != 0)
        sb_log(SB_WARN, "voice", "re_main ended err=%d", err);
    sb_vsip_free(v->vt);
    v->vt = NULL;
    v->mq = mem_deref(v->mq);
    libre_close();
    return NULL;
}

/* ---- core side ---- */

static void drain_events(sb_voice *v)
{
    pthread_mutex_lock(&v->ev_mu);
    ev_node *n = v->ev_head;
    v->ev_head = v->ev_tail = NULL;
    pthread_mutex_unlock(&v->ev_mu);
    uint64_t posted = 0;
    while (n != NULL) {
        ev_node *next = n->next;
        posted = n->mono_ms;
        v->on_event(&n->ev, v->arg);
        free(n);
        n = next;
    }
    if (posted != 0) {
        uint64_t now = sb_clock_mono_ms();
        atomic_store(&v->lag_ms, now > posted ? now - posted : 0);
        atomic_store(&v->lag_at_ms, now);
    }
}

uint64_t sb_voice_core_lag_ms(sb_voice *v)
{
    uint64_t now = sb_clock_mono_ms(), head = 0;
    pthread_mutex_lock(&v->ev_mu);
    if (v->ev_head != NULL && now > v->ev_head->mono_ms)
        head = now - v->ev_head->mono_ms;
    pthread_mutex_unlock(&v->ev_mu);
    uint64_t at = atomic_load(&v->lag_at_ms), last = now - at < LAG_FRESH_MS ? atomic_load(&v->lag_ms) : 0;
    return head > last ? head : last;
}

static void on_async(uv_async_t *h)
{
    sb_voice *v = h->data;
    SB_ASSERT(v->magic == VOICE_MAGIC);
    drain_events(v);
}

static void push_backlog(sb_voice *v);

static void on_retry(uv_timer_t *t)
{
    push_backlog(t->data);
}

/* Pushes the backlog in order; on EAGAIN retries 1 ms later. */
static void push_backlog(sb_voice *v)
{
    while (v->backlog_head != NULL) {
        sb_vcmd *c = v->backlog_head;
        int err = mqueue_push(v->mq, (int)c->kind, c);
        if (err == EAGAIN) {
            uv_timer_start(&v->retry, on_retry, 1, 0);
            return;
        }
        v->backlog_head = c->next;
        if (v->backlog_head == NULL)
            v->backlog_tail = NULL;
        if (err != 0) {
            sb_log(SB_ERROR, "voice", "command lost kind=%d err=%d", (int)c->kind, err);
            sb_vcmd_free(c);
        }
    }
}

static int send_cmd(sb_voice *v, sb_vcmd *c)
{
    c->next = NULL;
    if (v == NULL || v->stopping) {
        sb_vcmd_free(c);
        return SB_EINVAL;
    }
    if (v->backlog_head == NULL) {
        int err = mqueue_push(v->mq, (int)c->kind, c);
        if (err == 0)
            return 0;
        if (err != EAGAIN) {
            sb_log(SB_ERROR, "voice", "cannot queue a command kind=%d err=%d", (int)c->kind, err);
            sb_vcmd_free(c);
            return SB_EIO;
        }
    }
    if (v->backlog_tail != NULL)
        v->backlog_tail->next = c;
    else
        v->backlog_head = c;
    v->backlog_tail = c;
    if (!uv_is_active((uv_handle_t *)&v->retry))
        uv_timer_start(&v->retry, on_retry, 1, 0);
    return 0;
}

static sb_vcmd *cmd_new(sb_vcmd_kind kind, uint64_t call_id)
{
    sb_vcmd *c = sb_xcalloc(1, sizeof *c);
    c->kind = kind;
    c->call_id = call_id;
    return c;
}

int sb_voice_start(sb_voice **out, uv_loop_t *loop, const sb_voice_options *opt, sb_voice_event_fn on_event, void *arg)
{
    *out = NULL;
    sb_voice *v = sb_xcalloc(1, sizeof *v);
    v->magic = VOICE_MAGIC;
    v->loop = loop;
    v->on_event = on_event;
    v->arg = arg;
    v->opt = *opt;
    pthread_mutex_init(&v->start_mu, NULL);
    pthread_cond_init(&v->start_cv, NULL);
    pthread_mutex_init(&v->ev_mu, NULL);
    uv_async_init(loop, &v->async, on_async);
    v->async.data = v;
    uv_timer_init(loop, &v->retry);
    v->retry.data = v;
    uv_unref((uv_handle_t *)&v->retry);
    if (pthread_create(&v->thread, NULL, voice_main, v) != 0) {
        v->start_rc = SB_EIO;
        v->joined = true;
    } else {
        pthread_mutex_lock(&v->start_mu);
        while (!v->start_signalled)
            pthread_cond_wait(&v->start_cv, &v->start_mu);
        pthread_mutex_unlock(&v->start_mu);
        if (v->start_rc != 0) {
            pthread_join(v->thread, NULL);
            v->joined = true;
        }
    }
    if (v->start_rc != 0) {
        int rc = v->start_rc;
        v->stopping = true;
        sb_voice_stop(v, NULL, NULL);
        return rc;
    }
    *out = v;
    return 0;
}

int sb_voice_port(const sb_voice *v)
{
    return v != NULL ? v->port : 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    sb_voice *v = h->data;
    if (--v->closing_handles > 0)
        return;
    void (*done)(void *) = v->stop_done;
    void *arg = v->stop_arg;
    bool failed_start = v->start_rc != 0;
    if (failed_start)
        sb_voice_free(v);
    if (done != NULL)
        done(arg);
}

void sb_voice_stop(sb_voice *v, void (*done)(void *arg), void *arg)
{
    if (v == NULL) {
        if (done != NULL)
            done(arg);
        return;
    }
    v->stop_done = done;
    v->stop_arg = arg;
    v->stopping = true;
    /* Commands still parked are moot: the calls are about to end. */
    size_t dropped = 0;
    while (v->backlog_head != NULL) {
        sb_vcmd *c = v->backlog_head;
        v->backlog_head = c->next;
        sb_vcmd_free(c);
        dropped++;
    }
    v->backlog_tail = NULL;
    if (dropped > 0)
        sb_log(SB_WARN, "voice", "dropped %zu queued commands at shutdown", dropped);
    if (!v->joined) {
        sb_vcmd *stop = cmd_new(SB_VCMD_STOP, 0);
        int err;
        /* The voice loop drains the pipe; a full pipe frees up quickly. */
        while ((err = mqueue_push(v->mq, SB_VCMD_STOP, stop)) == EAGAIN)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        if (err != 0)
            sb_log(SB_ERROR, "voice", "cannot stop the voice thread err=%d", err);
        pthread_join(v->thread, NULL);
        v->joined = true;
    }
    drain_events(v); /* the hangups of calls ended by the shutdown */
    v->closing_handles = 2;
    uv_close((uv_handle_t *)&v->retry, on_handle_closed);
    uv_close((uv_handle_t *)&v->async, on_handle_closed);
}

void sb_voice_free(sb_voice *v)
{
    if (v == NULL)
        return;
    SB_ASSERT(v->joined);
    explicit_bzero(v->opt.trunk_password, sizeof v->opt.trunk_password);
    pthread_mutex_destroy(&v->start_mu);
    pthread_cond_destroy(&v->start_cv);
    pthread_mutex_destroy(&v->ev_mu);
    v->magic = 0;
    free(v);
}

int sb_voice_set_extensions(sb_voice *v, const sb_voice_extension *ext, size_t n)
{
    sb_vcmd *c = cmd_new(SB_VCMD_SET_EXTENSIONS, 0);
    if (n > 0) {
        c->ext = sb_xcalloc(n, sizeof *ext);
        memcpy(c->ext, ext, n * sizeof *ext);
    }
    c->n = n;
    return send_cmd(v, c);
}

int sb_voice_answer(sb_voice *v, uint64_t call_id)
{
    return send_cmd(v, cmd_new(SB_VCMD_ANSWER, call_id));
}

int sb_voice_reject(sb_voice *v, uint64_t call_id, int sip_code)
{
    if (sip_code < 400 || sip_code > 699)
        return SB_EINVAL;
    sb_vcmd *c = cmd_new(SB_VCMD_REJECT, call_id);
    c->code = sip_code;
    return send_cmd(v, c);
}

int sb_voice_play(sb_voice *v, uint64_t call_id, const char *wav_path, bool loop, uint32_t play_id)
{
    if (wav_path == NULL || wav_path[0] == '\0')
        return SB_EINVAL;
    sb_vcmd *c = cmd_new(SB_VCMD_PLAY, call_id);
    c->path = sb_xstrdup(wav_path);
    c->loop = loop;
    c->play_id = play_id;
    return send_cmd(v, c);
}

int sb_voice_stop_play(sb_voice *v, uint64_t call_id)
{
    return send_cmd(v, cmd_new(SB_VCMD_STOP_PLAY, call_id));
}

int sb_voice_hangup(sb_voice *v, uint64_t call_id)
{
    return send_cmd(v, cmd_new(SB_VCMD_HANGUP, call_id));
}

int sb_voice_ring(sb_voice *v, uint64_t call_id, uint64_t leg_id, const char *extension, unsigned timeout_s)
{
    if (leg_id == 0 || extension == NULL || !sb_voice_user_valid(extension, strlen(extension)) || timeout_s == 0 ||
        timeout_s > 600)
        return SB_EINVAL;
    sb_vcmd *c = cmd_new(SB_VCMD_RING, call_id);
    c->leg_id = leg_id;
    snprintf(c->extension, sizeof c->extension, "%s", extension);
    c->timeout_s = timeout_s;
    return send_cmd(v, c);
}

int sb_voice_ring_out(sb_voice *v, uint64_t call_id, uint64_t leg_id, const char *uri, const char *caller_id,
                      bool via_trunk, unsigned timeout_s)
{
    if (leg_id == 0 || uri == NULL || caller_id == NULL || timeout_s == 0 || timeout_s > 600 ||
        !sb_voice_user_valid(caller_id, strlen(caller_id)))
        return SB_EINVAL;
    size_t n = strlen(uri);
    /* what goes on the request line: no spaces, quotes, brackets nor line breaks */
    if (n >= SB_VOICE_ADDR_MAX || (strncmp(uri, "sip:", 4) != 0 && strncmp(uri, "sips:", 5) != 0) ||
        strcspn(uri, " \t\r\n\"<>") != n || strchr(uri, '@') == NULL)
        return SB_EINVAL;
    sb_vcmd *c = cmd_new(SB_VCMD_RING_OUT, call_id);
    c->leg_id = leg_id;
    c->path = sb_xstrdup(uri);
    snprintf(c->extension, sizeof c->extension, "%s", caller_id);
    c->via_trunk = via_trunk;
    c->timeout_s = timeout_s;
    return send_cmd(v, c);
}

int sb_voice_cancel_leg(sb_voice *v, uint64_t call_id, uint64_t leg_id)
{
    sb_vcmd *c = cmd_new(SB_VCMD_CANCEL_LEG, call_id);
    c->leg_id = leg_id;
    return send_cmd(v, c);
}

int sb_voice_bridge(sb_voice *v, uint64_t call_id, uint64_t leg_id)
{
    sb_vcmd *c = cmd_new(SB_VCMD_BRIDGE, call_id);
    c->leg_id = leg_id;
    return send_cmd(v, c);
}

int sb_voice_bridge_keep_caller(sb_voice *v, uint64_t call_id, uint64_t leg_id)
{
    sb_vcmd *c = cmd_new(SB_VCMD_BRIDGE, call_id);
    c->leg_id = leg_id;
    c->keep_caller = true;
    return send_cmd(v, c);
}

int sb_voice_record(sb_voice *v, uint64_t call_id, const char *path, const sb_voice_record_opts *o)
{
    if (path == NULL || path[0] == '\0' || strlen(path) >= SB_VOICE_PATH_MAX || o == NULL ||
        (o->mode != SB_VOICE_REC_CALL && o->mode != SB_VOICE_REC_VOICEMAIL) || o->max_seconds > 24 * 3600 ||
        o->silence_seconds > 3600)
        return SB_EINVAL;
    sb_vcmd *c = cmd_new(SB_VCMD_RECORD, call_id);
    c->path = sb_xstrdup(path);
    c->rec = *o;
    return send_cmd(v, c);
}

static bool user_ok(const char *z)
{
    return sb_voice_user_valid(z, strnlen(z, SB_VOICE_EXT_MAX));
}

int sb_voice_originate(sb_voice *v, uint64_t call_id, const sb_voice_originate_opts *o)
{
    if ((call_id & SB_VOICE_ORIGINATE_BIT) == 0 || o == NULL || !user_ok(o->extension) || !user_ok(o->number) ||
        !user_ok(o->caller_id) || !user_ok(o->display) || o->agent_timeout_s == 0 || o->agent_timeout_s > 600 ||
        o->customer_timeout_s == 0 || o->customer_timeout_s > 600 ||
        memchr(o->display_name, '\0', sizeof o->display_name) == NULL ||
        memchr(o->ringback, '\0', sizeof o->ringback) == NULL)
        return SB_EINVAL;
    sb_vcmd *c = cmd_new(SB_VCMD_ORIGINATE, call_id);
    c->orig = sb_xmalloc(sizeof *c->orig);
    *c->orig = *o;
    return send_cmd(v, c);
}

void sb_voice_metrics_text(const sb_voice *v, sb_buf *b)
{
    if (v == NULL)
        return;
    const sb_voice_counters *c = &v->counters;
    static const struct {
        const char *name, *help, *type;
        size_t off;
    } rows[] = {
        {"voice_calls_offered_total", "Inbound INVITEs offered to the core.", "counter",
         offsetof(sb_voice_counters, calls_offered)},
        {"voice_calls_answered_total", "Calls answered (ACKed 200).", "counter",
         offsetof(sb_voice_counters, calls_answered)},
        {"voice_calls_active", "Calls in progress.", "gauge", offsetof(sb_voice_counters, calls_active)},
        {"voice_rtp_packets_sent_total", "RTP packets sent.", "counter", offsetof(sb_voice_counters, rtp_packets_sent)},
        {"voice_rtp_packets_received_total", "RTP packets received.", "counter",
         offsetof(sb_voice_counters, rtp_packets_received)},
        {"voice_dtmf_digits_total", "DTMF digits received (RFC 4733, SIP INFO and in-band).", "counter",
         offsetof(sb_voice_counters, dtmf_digits)},
        {"voice_dtmf_inband_total", "DTMF digits detected in callers' audio (no telephone-event).", "counter",
         offsetof(sb_voice_counters, dtmf_inband)},
        {"voice_registrations", "Registered device bindings.", "gauge", offsetof(sb_voice_counters, registrations)},
        {"voice_register_failures_total", "REGISTERs refused for bad credentials.", "counter",
         offsetof(sb_voice_counters, register_failures)},
        {"voice_register_lockouts_total", "Sources locked out after repeated failures.", "counter",
         offsetof(sb_voice_counters, register_lockouts)},
        {"voice_sip_rejected_total", "INVITEs answered with a final error.", "counter",
         offsetof(sb_voice_counters, sip_rejected)},
        {"voice_no_media_hangups_total", "Calls ended for lack of media.", "counter",
         offsetof(sb_voice_counters, no_media_hangups)},
        {"voice_legs_invited_total", "INVITEs sent to agents' devices.", "counter",
         offsetof(sb_voice_counters, legs_invited)},
        {"voice_legs_answered_total", "Agents' legs answered.", "counter", offsetof(sb_voice_counters, legs_answered)},
        {"voice_rtp_relayed_to_agent_total", "RTP packets relayed from callers to agents.", "counter",
         offsetof(sb_voice_counters, rtp_relayed_to_agent)},
        {"voice_rtp_relayed_to_caller_total", "RTP packets relayed from agents to callers.", "counter",
         offsetof(sb_voice_counters, rtp_relayed_to_caller)},
        {"voice_rtp_transcoded_total", "Relayed RTP packets converted between PCMU and PCMA.", "counter",
         offsetof(sb_voice_counters, rtp_transcoded)},
        {"voice_invites_limited_total", "INVITEs refused (503) by the per-source rate limit.", "counter",
         offsetof(sb_voice_counters, invites_limited)},
        {"voice_invites_refused_total",
         "INVITEs refused: from outside, an address not in [trunk] allow; a failed digest, the trunk's or an "
         "extension's; a locked-out address.",
         "counter", offsetof(sb_voice_counters, invites_refused)},
        {"voice_invites_shed_total", "New calls refused (503, Retry-After) while the core lagged over overload_lag_ms.",
         "counter", offsetof(sb_voice_counters, invites_shed)},
        {"voice_reinvites_total", "re-INVITEs with or without an offer that we answered (hold, resume, a new address).",
         "counter", offsetof(sb_voice_counters, reinvites)},
        {"voice_legs_outside_total", "Legs rung outside: numbers through the trunk and SIP addresses.", "counter",
         offsetof(sb_voice_counters, legs_outside)},
        {"voice_dtmf_relayed_total", "RFC 4733 packets relayed from one side of a bridged call to the other.",
         "counter", offsetof(sb_voice_counters, dtmf_relayed)},
        {"voice_trunk_registered", "1 while our registration at the trunk ([trunk] register) holds.", "gauge",
         offsetof(sb_voice_counters, trunk_registered)},
        {"voice_trunk_register_failures_total", "REGISTERs at the trunk that failed (refused, timed out).", "counter",
         offsetof(sb_voice_counters, trunk_register_failures)},
        {"voice_recordings_started_total", "Recordings started (WAV files created).", "counter",
         offsetof(sb_voice_counters, recordings_started)},
        {"voice_recordings_finished_total", "Recordings ended at their length, silence or the hangup.", "counter",
         offsetof(sb_voice_counters, recordings_finished)},
        {"voice_recordings_failed_total", "Recordings that could not be created or written.", "counter",
         offsetof(sb_voice_counters, recordings_failed)},
        {"voice_trunk_calls_total", "Originated calls dialled through the trunk.", "counter",
         offsetof(sb_voice_counters, trunk_calls)},
        {"voice_trunk_early_media_total", "Originated calls whose early media (183 with SDP) the agent heard.",
         "counter", offsetof(sb_voice_counters, early_media)},
        {"voice_trunk_answered_total", "Originated calls the customer answered.", "counter",
         offsetof(sb_voice_counters, trunk_answered)},
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(rows); i++) {
        const atomic_uint_fast64_t *p = (const atomic_uint_fast64_t *)((const char *)c + rows[i].off);
        sb_buf_printf(b, "# HELP switchboard_%s %s\n# TYPE switchboard_%s %s\nswitchboard_%s %llu\n", rows[i].name,
                      rows[i].help, rows[i].name, rows[i].type, rows[i].name, (unsigned long long)atomic_load(p));
    }
}

const char *sb_voice_cause_name(sb_voice_cause c)
{
    switch (c) {
    case SB_VOICE_CAUSE_NORMAL: return "normal";
    case SB_VOICE_CAUSE_CANCELLED: return "cancelled";
    case SB_VOICE_CAUSE_REJECTED: return "rejected";
    case SB_VOICE_CAUSE_NO_MEDIA: return "no_media";
    case SB_VOICE_CAUSE_TIMEOUT: return "timeout";
    case SB_VOICE_CAUSE_CODEC: return "codec";
    case SB_VOICE_CAUSE_ERROR: return "error";
    case SB_VOICE_CAUSE_SHUTDOWN: return "shutdown";
    case SB_VOICE_CAUSE_NONE: break;
    }
    return "none";
}

const char *sb_voice_rec_reason_name(sb_voice_rec_reason r)
{
    switch (r) {
    case SB_VOICE_REC_MAX_LENGTH: return "max_length";
    case SB_VOICE_REC_SILENCE: return "silence";
    case SB_VOICE_REC_HANGUP: return "hangup";
    case SB_VOICE_REC_ERROR: return "error";
    case SB_VOICE_REC_NONE: break;
    }
    return "none";
}

const char *sb_voice_party_name(sb_voice_party p)
{
    switch (p) {
    case SB_VOICE_BY_CALLER: return "caller";
    case SB_VOICE_BY_SYSTEM: return "system";
    case SB_VOICE_BY_AGENT: return "agent";
    case SB_VOICE_BY_CUSTOMER: return "customer";
    case SB_VOICE_BY_NONE: break;
    }
    return NULL;
}

void sb_voice_ha1(const char *extension, const char *realm, const char *password, char out[33])
{
    uint8_t md[MD5_SIZE];
    sb_buf b;
    sb_buf_init(&b);
    sb_buf_printf(&b, "%s:%s:%s", extension, realm, password);
    md5((const uint8_t *)b.p, b.len, md);
    memset(b.p, 0, b.len); /* the password */
    sb_buf_free(&b);
    for (size_t i = 0; i < MD5_SIZE; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[32] = '\0';
}
