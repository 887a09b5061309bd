/* sip.c - the voice thread's SIP side: UDP and TCP transports on one
 * address, a registrar with digest authentication (qop=auth, signed nonces
 * that expire, lockout of sources that keep failing), and inbound sessions
 * (INVITE -> 180 and call_offered; answer/reject/hangup on command; CANCEL,
 * BYE, INFO DTMF, re-INVITEs and late offers). Everything here runs on the
 * voice thread; decisions come from the core as commands (voice.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"
#include "voice/voice_internal.h"

#define CALL_MAGIC          0x43414c4cu /* "CALL" */
#define LEG_MAGIC           0x4c454753u /* "LEGS" */
#define FORK_MAGIC          0x464f524bu /* "FORK" */
#define NONCE_TTL_MS        (5 * 60 * 1000)
#define FAILURE_WINDOW_MS   (60 * 1000)
#define INVITE_IDLE_MS      (10 * 1000) /* a source's INVITE bucket is forgotten after this long quiet */
#define REGISTER_MIN_S      60
#define REGISTER_MAX_S      3600
#define REGISTER_DEFAULT_S  3600
#define MAX_CONTACTS        10    /* devices per extension */
#define MAX_BINDINGS        20000 /* all extensions */
#define MAX_LOCKOUT_ENTRIES 10000
#define SHUTDOWN_GRACE_MS   2000
#define USER_AGENT          "Switchboard"
/* Buckets of libre's SIP transaction and dialog tables and of our calls by
 * id. A completed INVITE transaction lingers 32 s, so 80 calls/s keep some
 * ten thousand of them: with libre's usual 32 buckets, matching each
 * message walked hundreds (15 % of the voice thread in bench/voice.py). */
#define TRANS_HASH    4096
#define TCP_HASH      256
#define CALLS_HASH    4096
#define FAILURES_HASH 1024
#define NONCES_HASH   4096
#define MAX_NONCES    100000    /* remembered uses; the oldest goes first */
#define SIP_RCVBUF    (4 << 20) /* bytes: the SIP UDP socket's receive buffer (enlarge_udp_buffer) */

/* An inbound call rings (for the core's decision), is answered, is up. An
 * originated one rings the agent (CALL_ORIG_AGENT), then the customer
 * through the trunk (CALL_ORIG_CUSTOMER), and is up once they answer. */
typedef enum call_state {
    CALL_RINGING,
    CALL_ANSWERING,
    CALL_UP,
    CALL_ENDED,
    CALL_ORIG_AGENT,
    CALL_ORIG_CUSTOMER
} call_state;

typedef struct vleg vleg;

/* One device of an agent's leg: an INVITE we sent. Its session is
 * released by a 0 ms timer (never inside its own callback); until then it
 * waits in vt->dying. */
typedef struct leg_device {
    uint32_t magic;
    struct le le; /* in leg->forks, then in vt->dying */
    vleg *leg;    /* NULL once ended */
    sb_vthread *vt;
    struct sipsess *sess;
    sb_media *media;
    bool answer_ok; /* the 2xx carried a usable SDP answer */
    struct tmr tmr_free;
} leg_device;

typedef enum leg_state { LEG_RINGING, LEG_UP } leg_state;

/* A leg of a call: one agent's extension, rung on every device registered
 * for it; the first device to answer wins. */
struct vleg {
    uint32_t magic;
    struct le le; /* in call->legs */
    sb_vcall *call;
    uint64_t id;
    char ext[SB_VOICE_EXT_MAX];
    leg_state state;
    struct list forks;
    leg_device *winner;
    int fail_code;
    bool ringing_reported;
    struct tmr tmr_timeout;
};

/* A call. Inbound: `sess` and `media` are the caller's. Originated: they
 * are the customer's, made when the agent's leg answers (the customer is
 * the "caller" side of the bridge, the agent's leg the other). */
struct sb_vcall {
    uint32_t magic;
    struct le le;
    struct le hle; /* in vt->calls_by_id */
    uint64_t id;
    char from[SB_VOICE_EXT_MAX]; /* the caller's number: caller ID of our legs */
    struct list legs;
    sb_vthread *vt;
    struct sipsess *sess;
    sb_media *media;
    call_state state;
    uint32_t play_id;    /* of the prompt playing now */
    bool keep_caller;    /* bridged by sb_voice_bridge_keep_caller: the agent's BYE is LEG_ENDED */
    struct tmr tmr_ring; /* inbound: the core's decision; originated: the customer's ring */
    struct tmr tmr_free;
    /* originated calls */
    bool originated;
    sb_voice_originate_opts orig;
    bool customer_ringing; /* LEG_RINGING sent for the customer's leg */
    bool early;            /* the customer's early media (183 with SDP) reaches the agent */
    bool answer_ok;        /* the customer's 2xx carried a usable SDP answer */
};

typedef struct binding {
    struct le le;
    char ext[SB_VOICE_EXT_MAX];
    int64_t agent_id;
    char contact[SB_VOICE_ADDR_MAX];
    struct sa src;
    uint64_t expires_ms;
} binding;

/* A nonce a digest was accepted with, and the highest nonce count used
 * (see nonce_fresh). */
typedef struct nonce_use {
    struct le le;  /* in vt->nonce_uses, oldest first */
    struct le hle; /* in vt->nonces */
    char nonce[SB_VOICE_NONCE_LEN + 1];
    uint32_t nc;
    uint64_t until_ms; /* after this the nonce is stale anyway */
} nonce_use;

typedef struct failure_entry {
    struct le le;  /* in vt->failures, oldest first */
    struct le hle; /* in vt->failures_by_ip */
    struct sa ip;
    unsigned failures;
    uint64_t window_start_ms;
    uint64_t locked_until_ms;
    /* INVITE flood control: a token bucket per source IP */
    double invite_tokens;
    uint64_t invite_at_ms; /* last INVITE (0: none yet) */
    bool invite_limited;   /* refusing now (logged once per episode) */
    bool stranger_logged;  /* an INVITE from outside [trunk] allow was logged */
} failure_entry;

struct sb_vthread {
    sb_voice *v;
    sb_voice_counters *cnt;
    sb_voice_options opt;
    struct sip *sip;
    struct dnsc *dnsc; /* only for a trunk named by a host name */
    struct sipsess_sock *sock;
    struct sip_lsnr *lsnr;
    sb_mediactx *mx;
    struct list calls;
    struct hash *calls_by_id; /* the same calls by id: every command names one */
    struct list dying;        /* forks whose session is about to be released */
    uint64_t next_id;
    sb_voice_extension *ext;
    size_t next;
    struct list bindings;
    size_t nbindings;
    struct list failures;
    struct hash *failures_by_ip; /* the same entries: looked up for every INVITE and REGISTER */
    size_t nfailures;
    struct list nonce_uses; /* nonce_use, oldest first */
    struct hash *nonces;    /* the same, by nonce */
    uint64_t nonce_seq;     /* of the last nonce made */
    size_t nnonces;
    char secret[65];
    char trunk_ha1[33]; /* of [trunk] inbound_username ("" = no digest for INVITEs from outside) */
    struct sipreg *reg; /* our registration at the trunk ([trunk] register) */
    bool shedding;      /* refusing new calls: the core lags (logged once per episode) */
    bool reg_ok;        /* its last answer was a 2xx */
    struct tmr housekeeping;
    struct tmr grace;
    bool shutting_down;
    bool sip_exited;
};

static void post(sb_vthread *vt, sb_voice_event *ev)
{
    ev->at_ms = sb_clock_wall_ms();
    sb_voice_post(vt->v, ev);
}

/* ---- calls ---- */

static void leg_free(vleg *leg);

static bool call_has_id(struct le *le, void *arg)
{
    const sb_vcall *c = le->data;
    return c->id == *(const uint64_t *)arg;
}

static sb_vcall *call_find(sb_vthread *vt, uint64_t id)
{
    struct le *le = hash_lookup(vt->calls_by_id, (uint32_t)id, call_has_id, &id);
    return le != NULL ? le->data : NULL;
}

static void call_add(sb_vthread *vt, sb_vcall *c)
{
    list_append(&vt->calls, &c->le, c);
    hash_append(vt->calls_by_id, (uint32_t)c->id, &c->hle, c);
}

static void call_destroy(sb_vcall *c)
{
    SB_ASSERT(c->magic == CALL_MAGIC);
    tmr_cancel(&c->tmr_ring);
    tmr_cancel(&c->tmr_free);
    sb_media_free(c->media);
    c->media = NULL;
    /* An established session sends BYE (and lingers until it is answered);
     * one still ringing answers 486 unless a final response went out. */
    c->sess = mem_deref(c->sess);
    list_unlink(&c->le);
    hash_unlink(&c->hle);
    c->magic = 0;
    free(c);
}

static void on_free_tmr(void *arg)
{
    call_destroy(arg);
}

/* Reports the end of a call and frees it soon after (never inside a libre
 * callback of its own session). */
static void call_finish(sb_vcall *c, sb_voice_cause cause, sb_voice_party by, int sip_code)
{
    if (c->state == CALL_ENDED)
        return;
    sb_vthread *vt = c->vt;
    c->state = CALL_ENDED;
    tmr_cancel(&c->tmr_ring);
    /* a recording ends first: its RECORDING_DONE comes before the HANGUP */
    sb_media_record_stop(c->media, SB_VOICE_REC_HANGUP);
    while (!list_isempty(&c->legs)) /* CANCEL or BYE to the agents */
        leg_free(list_ledata(list_head(&c->legs)));
    sb_media_free(c->media);
    c->media = NULL;
    atomic_fetch_sub(&vt->cnt->calls_active, 1);
    sb_voice_event ev = {.kind = SB_VOICE_HANGUP, .call_id = c->id, .cause = cause, .by = by, .sip_code = sip_code};
    post(vt, &ev);
    tmr_start(&c->tmr_free, 0, on_free_tmr, c);
}

static const char *reason_phrase(int code)
{
    switch (code) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 480: return "Temporarily Unavailable";
    case 486: return "Busy Here";
    case 487: return "Request Terminated";
    case 488: return "Not Acceptable Here";
    case 500: return "Server Internal Error";
    case 503: return "Service Unavailable";
    case 603: return "Decline";
    default: return code < 500 ? "Request Failed" : code < 600 ? "Server Error" : "Global Failure";
    }
}

static void call_reject(sb_vcall *c, int code, sb_voice_cause cause)
{
    if (c->state != CALL_RINGING)
        return;
    (void)sipsess_reject(c->sess, (uint16_t)code, reason_phrase(code), "");
    atomic_fetch_add(&c->vt->cnt->sip_rejected, 1);
    call_finish(c, cause, SB_VOICE_BY_SYSTEM, code);
}

/* A re-INVITE on one of our sessions (the caller's, a customer's we
 * dialled, an agent's device): hold, resume, a new address or law, or no
 * offer at all (ours goes in the 200; its answer comes in the ACK). An
 * error makes libre answer 488 and keep the session as it was. */
static int reoffer(sb_media *m, uint64_t call_id, struct mbuf **descp, const struct sip_msg *msg)
{
    if (m == NULL)
        return EPROTO;
    int rc = sb_media_reoffer(m, msg, descp);
    sb_log(SB_DEBUG, "voice", "call=%llu re-INVITE %s%s", (unsigned long long)call_id, rc == 0 ? "answered" : "refused",
           rc == 0 && sb_media_held(m) ? " (on hold)" : "");
    return rc == 0 ? 0 : EPROTO;
}

/* The answer in an ACK, to the offer we made in our 200. */
static int take_late_answer(sb_media *m, const struct sip_msg *msg)
{
    if (!sb_media_awaits_answer(m))
        return 0;
    return sb_media_take_answer(m, msg) == 0 ? 0 : EPROTO;
}

static int on_offer(struct mbuf **descp, const struct sip_msg *msg, void *arg)
{
    sb_vcall *c = arg;
    return c->magic == CALL_MAGIC ? reoffer(c->media, c->id, descp, msg) : EPROTO;
}

static int on_answer(const struct sip_msg *msg, void *arg)
{
    sb_vcall *c = arg;
    return c->magic == CALL_MAGIC ? take_late_answer(c->media, msg) : 0;
}

static void on_estab(const struct sip_msg *msg, void *arg)
{
    sb_vcall *c = arg;
    if (c->magic != CALL_MAGIC || c->state != CALL_ANSWERING)
        return;
    c->state = CALL_UP;
    atomic_fetch_add(&c->vt->cnt->calls_answered, 1);
    if (c->media != NULL)
        sb_media_start(c->media);
    sb_voice_event ev = {.kind = SB_VOICE_ANSWERED, .call_id = c->id};
    post(c->vt, &ev);
}

static void report_digit(sb_vcall *c, char digit)
{
    sb_voice_event ev = {.kind = SB_VOICE_DTMF, .call_id = c->id, .digit = digit};
    post(c->vt, &ev);
}

static void on_info(struct sip *sip, const struct sip_msg *msg, void *arg)
{
    sb_vcall *c = arg;
    bool relay = msg_ctype_cmp(&msg->ctyp, "application", "dtmf-relay");
    bool plain = msg_ctype_cmp(&msg->ctyp, "application", "dtmf");
    if (!relay && !plain) {
        (void)sip_reply(sip, msg, 415, "Unsupported Media Type");
        return;
    }
    char digit = 0;
    if (sb_voice_dtmf_relay_parse((const char *)mbuf_buf(msg->mb), mbuf_get_left(msg->mb), relay, &digit) != 0) {
        (void)sip_reply(sip, msg, 400, "Bad Request");
        return;
    }
    (void)sip_reply(sip, msg, 200, "OK");
    if (c->magic == CALL_MAGIC && c->state == CALL_UP) {
        atomic_fetch_add(&c->vt->cnt->dtmf_digits, 1);
        report_digit(c, digit);
    }
}

static void on_close(int err, const struct sip_msg *msg, void *arg)
{
    sb_vcall *c = arg;
    if (c->magic != CALL_MAGIC || c->state == CALL_ENDED)
        return;
    if (err == ECONNRESET) { /* CANCEL or BYE from the caller */
        bool answered = c->state == CALL_UP;
        call_finish(c, answered ? SB_VOICE_CAUSE_NORMAL : SB_VOICE_CAUSE_CANCELLED, SB_VOICE_BY_CALLER,
                    answered ? 0 : 487);
    } else if (err == ETIMEDOUT) {
        call_finish(c, SB_VOICE_CAUSE_TIMEOUT, SB_VOICE_BY_SYSTEM, 0);
    } else {
        sb_log(SB_INFO, "voice", "call=%llu closed err=%d", (unsigned long long)c->id, err);
        call_finish(c, SB_VOICE_CAUSE_ERROR, SB_VOICE_BY_SYSTEM, 0);
    }
}

static void on_ring_timeout(void *arg)
{
    sb_vcall *c = arg;
    sb_log(SB_WARN, "voice", "call=%llu no decision in time: 480", (unsigned long long)c->id);
    call_reject(c, 480, SB_VOICE_CAUSE_TIMEOUT);
}

/* media hooks: the owner is a call or a fork of an agent's leg */
static void media_dtmf(void *owner, char digit)
{
    sb_vcall *c = owner;
    if (c->magic == CALL_MAGIC && c->state == CALL_UP)
        report_digit(c, digit);
}

static void media_play_done(void *owner, bool failed)
{
    sb_vcall *c = owner;
    if (c->magic != CALL_MAGIC)
        return;
    sb_voice_event ev = {.kind = SB_VOICE_PLAY_DONE,
                         .call_id = c->id,
                         .cause = failed ? SB_VOICE_CAUSE_ERROR : SB_VOICE_CAUSE_NONE,
                         .play_id = c->play_id};
    post(c->vt, &ev);
}

static void media_no_media(void *owner)
{
    const leg_device *f = owner;
    if (f->magic == FORK_MAGIC) { /* the agent's device went silent: the call ends */
        if (f->leg != NULL) {
            sb_log(SB_INFO, "voice", "call=%llu leg=%llu no media from the agent: hanging up",
                   (unsigned long long)f->leg->call->id, (unsigned long long)f->leg->id);
            call_finish(f->leg->call, SB_VOICE_CAUSE_NO_MEDIA, SB_VOICE_BY_SYSTEM, 0);
        }
        return;
    }
    sb_vcall *c = owner;
    SB_ASSERT(c->magic == CALL_MAGIC);
    sb_log(SB_INFO, "voice", "call=%llu no media for %us: hanging up", (unsigned long long)c->id,
           c->vt->opt.no_media_seconds);
    call_finish(c, SB_VOICE_CAUSE_NO_MEDIA, SB_VOICE_BY_SYSTEM, 0);
}

static void media_recording_done(void *owner, const char *path, int64_t duration_ms, uint64_t bytes,
                                 sb_voice_rec_reason reason)
{
    sb_vcall *c = owner;
    if (c->magic != CALL_MAGIC)
        return;
    sb_voice_event ev = {.kind = SB_VOICE_RECORDING_DONE,
                         .call_id = c->id,
                         .duration_ms = duration_ms,
                         .bytes = bytes,
                         .reason = reason};
    snprintf(ev.path, sizeof ev.path, "%s", path);
    post(c->vt, &ev);
}

static bool is_registered_from(sb_vthread *vt, const char *user, const struct sa *src)
{
    for (struct le *le = list_head(&vt->bindings); le != NULL; le = le->next) {
        const binding *b = le->data;
        if (strcmp(b->ext, user) == 0 && sa_cmp(&b->src, src, SA_ADDR))
            return true;
    }
    return false;
}

static failure_entry *failure_get(sb_vthread *vt, const struct sa *src, bool create);

/* Whether a new INVITE from this source is within [sip] invite_rate_per_second
 * (a token bucket of invite_burst); a flood gets 503 with Retry-After.
 * Addresses in [trunk] allow are not limited. */
static bool invite_allowed(sb_vthread *vt, const struct sa *src, uint64_t now)
{
    unsigned rate = vt->opt.invite_rate_per_second;
    if (rate == 0)
        return true;
    /* [trunk] allow names our providers, who send every customer's call from
     * a few addresses: the limit is for strangers (overload shedding above
     * still guards the capacity) */
    if (vt->opt.trunk_nallow > 0 && sb_cidr_match(vt->opt.trunk_allow, vt->opt.trunk_nallow, &src->u.sa))
        return true;
    failure_entry *f = failure_get(vt, src, true);
    double cap = vt->opt.invite_burst > rate ? vt->opt.invite_burst : rate;
    if (f->invite_at_ms == 0)
        f->invite_tokens = cap;
    else
        f->invite_tokens = fmin(cap, f->invite_tokens + (double)(now - f->invite_at_ms) * rate / 1000.0);
    f->invite_at_ms = now;
    if (f->invite_tokens < 1.0) {
        atomic_fetch_add(&vt->cnt->invites_limited, 1);
        if (!f->invite_limited) {
            f->invite_limited = true;
            char ip[64] = "";
            (void)sa_ntop(src, ip, sizeof ip);
            sb_log(SB_WARN, "voice", "INVITE flood src=%s: over %u/s, refusing with 503", ip, rate);
        }
        return false;
    }
    f->invite_limited = false;
    f->invite_tokens -= 1.0;
    return true;
}

static bool locked_out(sb_vthread *vt, const struct sa *src, uint64_t now);
static void count_failure(sb_vthread *vt, const struct sip_msg *msg, const char *ext, uint64_t now);
static void challenge(sb_vthread *vt, const struct sip_msg *msg, bool stale, bool proxy);
static int authenticate(sb_vthread *vt, const struct sip_msg *msg, const char *user, const char *ha1_hex, bool proxy,
                        uint64_t now, const sb_voice_extension **e, bool *stale);
static const sb_voice_extension *ext_find(const sb_vthread *vt, const char *ext, size_t len);

static void refuse_invite(sb_vthread *vt, const struct sip_msg *msg, uint16_t code)
{
    atomic_fetch_add(&vt->cnt->sip_rejected, 1);
    (void)sip_treply(NULL, vt->sip, msg, code, reason_phrase(code));
}

/* Whether an INVITE carries `user`'s digest (HA1 `ha1_hex`): the trunk's
 * in Authorization (challenged with 401), a phone's in Proxy-Authorization
 * (`proxy`: 407). Otherwise it has been answered: the challenge, 403 for a
 * locked-out source or wrong credentials (which count toward the lockout,
 * logged with the name tried), 400 for a malformed header. */
static bool admit_by_digest(sb_vthread *vt, const struct sip_msg *msg, const char *user, const char *ha1_hex,
                            bool proxy, uint64_t now)
{
    if (locked_out(vt, &msg->src, now)) {
        atomic_fetch_add(&vt->cnt->invites_refused, 1);
        refuse_invite(vt, msg, 403);
        return false;
    }
    bool stale = false;
    int rc = authenticate(vt, msg, user, ha1_hex, proxy, now, NULL, &stale);
    if (rc == 0)
        return true;
    if (rc == 1) {
        challenge(vt, msg, stale, proxy);
    } else if (rc == SB_EINVAL) {
        refuse_invite(vt, msg, 400);
    } else {
        char tried[SB_VOICE_EXT_MAX] = "";
        const struct sip_hdr *h = sip_msg_hdr(msg, proxy ? SIP_HDR_PROXY_AUTHORIZATION : SIP_HDR_AUTHORIZATION);
        struct httpauth_digest_resp resp;
        if (h != NULL && httpauth_digest_response_decode(&resp, &h->val) == 0)
            (void)sb_voice_user_copy(&resp.username, tried);
        count_failure(vt, msg, tried[0] ? tried : "-", now);
        refuse_invite(vt, msg, 403);
    }
    return false;
}

/* An INVITE not from one of our extensions comes from a trunk (or a
 * stranger): true when [trunk] allow and inbound_username let it in (see
 * sb_voice_options); otherwise it has been answered (401 to authenticate,
 * 403 refused, 400 a malformed Authorization). */
static bool admit_from_outside(sb_vthread *vt, const struct sip_msg *msg, uint64_t now)
{
    if (vt->opt.trunk_nallow > 0 && !sb_cidr_match(vt->opt.trunk_allow, vt->opt.trunk_nallow, &msg->src.u.sa)) {
        atomic_fetch_add(&vt->cnt->invites_refused, 1);
        failure_entry *f = failure_get(vt, &msg->src, true);
        if (!f->stranger_logged) { /* once per source: a scanner must not fill the log */
            f->stranger_logged = true;
            char ip[64] = "";
            (void)sa_ntop(&msg->src, ip, sizeof ip);
            sb_log(SB_WARN, "voice", "invite refused src=%s: not one of our phones nor in [trunk] allow", ip);
        }
        refuse_invite(vt, msg, 403);
        return false;
    }
    if (vt->trunk_ha1[0] == '\0')
        return true;
    return admit_by_digest(vt, msg, vt->opt.trunk_in_username, vt->trunk_ha1, false, now);
}

/* An INVITE whose From user is extension `e` claims to be that agent's
 * phone ([sip] auth_invites): true when it carries the extension's own
 * digest; otherwise it has been answered (407 to authenticate, as Asterisk
 * asks of INVITEs; 403 for wrong credentials, another extension's name or
 * a locked-out source; 400 a malformed Proxy-Authorization). A wrong
 * digest counts toward the source's lockout like a REGISTER's, so the same
 * NAT cannot guess its way to another agent's calls (toll fraud). */
static bool admit_extension(sb_vthread *vt, const struct sip_msg *msg, const sb_voice_extension *e, uint64_t now)
{
    return admit_by_digest(vt, msg, e->extension, e->ha1, true, now);
}

static void on_invite(const struct sip_msg *msg, void *arg)
{
    sb_vthread *vt = arg;
    if (vt->shutting_down) {
        (void)sip_treply(NULL, vt->sip, msg, 503, "Service Unavailable");
        return;
    }
    if (vt->opt.overload_lag_ms > 0) {
        /* the core is behind: a new call would wait unanswered in silence
         * (or be given up by the caller) and make it worse; a 503 lets the
         * provider try another route or come back (RFC 3261 21.5.4) */
        /* ... or the media thread is (the RTP of too many calls): its 20 ms
         * clock a tenth of that late already breaks audio */
        uint64_t lag = sb_voice_core_lag_ms(vt->v), own = sb_mediactx_lag_ms(vt->mx);
        bool self = own * 10 > vt->opt.overload_lag_ms;
        if (self || lag > vt->opt.overload_lag_ms) {
            atomic_fetch_add(&vt->cnt->invites_shed, 1);
            if (!vt->shedding) {
                vt->shedding = true;
                sb_log(SB_WARN, "voice", "overloaded: %s %llu ms behind, refusing new calls with 503",
                       self ? "the media thread is" : "the core is", (unsigned long long)(self ? own : lag));
            }
            (void)sip_replyf(vt->sip, msg, 503, "Service Unavailable", "Retry-After: 5\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        if (vt->shedding) {
            vt->shedding = false;
            sb_log(SB_INFO, "voice", "no longer overloaded: taking new calls again");
        }
    }
    if (!invite_allowed(vt, &msg->src, sb_clock_mono_ms())) {
        atomic_fetch_add(&vt->cnt->sip_rejected, 1);
        (void)sip_replyf(vt->sip, msg, 503, "Service Unavailable", "Retry-After: 5\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    char from[SB_VOICE_EXT_MAX], to[SB_VOICE_EXT_MAX];
    if (sb_voice_invite_parties(msg, from, to) != 0) {
        refuse_invite(vt, msg, 400);
        return;
    }
    /* a registration trunk addresses us as our registered user; the
     * number the customer dialled is in To */
    if (vt->reg != NULL && strcmp(to, vt->opt.trunk_username) == 0 && !sb_voice_user_copy(&msg->to.uri.user, to)) {
        refuse_invite(vt, msg, 400);
        return;
    }
    /* From an extension: its digest decides (auth_invites), or, for phones
     * that cannot answer a challenge, a registration from this address;
     * anyone else is the trunk's (or a stranger's) */
    uint64_t now = sb_clock_mono_ms();
    const sb_voice_extension *e = vt->opt.auth_invites ? ext_find(vt, from, strlen(from)) : NULL;
    bool from_extension = e != NULL || (!vt->opt.auth_invites && is_registered_from(vt, from, &msg->src));
    if (e != NULL && !admit_extension(vt, msg, e, now))
        return;
    if (!from_extension && !admit_from_outside(vt, msg, now))
        return;
    sb_vcall *c = sb_xcalloc(1, sizeof *c);
    c->magic = CALL_MAGIC;
    c->vt = vt;
    c->id = ++vt->next_id;
    memcpy(c->from, from, sizeof from);
    list_init(&c->legs);
    tmr_init(&c->tmr_ring);
    tmr_init(&c->tmr_free);
    sb_voice_event ev = {.kind = SB_VOICE_CALL_OFFERED, .call_id = c->id};
    memcpy(ev.from, from, sizeof from);
    memcpy(ev.to, to, sizeof to);
    (void)re_snprintf(ev.source, sizeof ev.source, "%s:%J",
                      msg->tp == SIP_TRANSP_UDP   ? "udp"
                      : msg->tp == SIP_TRANSP_TCP ? "tcp"
                                                  : sip_transp_param(msg->tp),
                      &msg->src);
    ev.from_extension = from_extension;
    struct sa ip;
    int err = sip_transp_laddr(vt->sip, &ip, msg->tp, &msg->src);
    int rc = err == 0 ? sb_media_new(&c->media, vt->mx, c, &ip, msg) : SB_EIO;
    if (rc == 0) {
        err = sipsess_accept(&c->sess, vt->sock, msg, 180, "Ringing", "switchboard", "application/sdp", NULL, NULL,
                             NULL, false, on_offer, on_answer, on_estab, on_info, NULL, on_close, c, "");
        if (err != 0)
            rc = SB_EIO;
    }
    atomic_fetch_add(&vt->cnt->calls_offered, 1);
    atomic_fetch_add(&vt->cnt->calls_active, 1);
    call_add(vt, c);
    post(vt, &ev); /* every INVITE we took in reaches the call log */
    if (rc != 0) {
        int code = rc == SB_EINVAL ? 488 : 500;
        atomic_fetch_add(&vt->cnt->sip_rejected, 1);
        (void)sip_treply(NULL, vt->sip, msg, (uint16_t)code, reason_phrase(code));
        c->sess = mem_deref(c->sess);
        call_finish(c, rc == SB_EINVAL ? SB_VOICE_CAUSE_CODEC : SB_VOICE_CAUSE_ERROR, SB_VOICE_BY_SYSTEM, code);
        return;
    }
    tmr_start(&c->tmr_ring, (uint64_t)vt->opt.ring_timeout_seconds * 1000, on_ring_timeout, c);
}

static void answer_call(sb_vcall *c)
{
    if (c->state != CALL_RINGING || c->media == NULL)
        return;
    struct mbuf *desc = NULL;
    int err = sb_media_answer_sdp(c->media, &desc) != 0 ? EIO : 0;
    if (err == 0)
        err = sipsess_answer(c->sess, 200, "OK", desc, "");
    mem_deref(desc);
    if (err != 0) {
        sb_log(SB_ERROR, "voice", "call=%llu cannot answer err=%d", (unsigned long long)c->id, err);
        call_reject(c, 500, SB_VOICE_CAUSE_ERROR);
        return;
    }
    tmr_cancel(&c->tmr_ring);
    c->state = CALL_ANSWERING;
}

/* ---- agents' legs: INVITEs we send, forked to every device ---- */

static void dial_customer(sb_vcall *c);

static void fork_release(leg_device *f)
{
    tmr_cancel(&f->tmr_free);
    list_unlink(&f->le);
    f->sess = mem_deref(f->sess); /* CANCEL while it rings, BYE once up */
    f->magic = 0;
    free(f);
}

static void on_fork_free(void *arg)
{
    fork_release(arg);
}

/* Ends a fork: its media at once, its session from a 0 ms timer (this may
 * run inside the session's own callback). */
static void fork_end(leg_device *f)
{
    if (f->leg == NULL)
        return;
    sb_vthread *vt = f->vt;
    list_unlink(&f->le);
    f->leg = NULL;
    sb_media_free(f->media);
    f->media = NULL;
    list_append(&vt->dying, &f->le, f);
    tmr_start(&f->tmr_free, 0, on_fork_free, f);
}

static void dying_flush(sb_vthread *vt)
{
    while (!list_isempty(&vt->dying))
        fork_release(list_ledata(list_head(&vt->dying)));
}

static void leg_post(vleg *leg, sb_voice_event_kind kind, int code)
{
    sb_voice_event ev = {.kind = kind, .call_id = leg->call->id, .leg_id = leg->id, .sip_code = code};
    if (kind == SB_VOICE_LEG_ANSWERED)
        memcpy(ev.extension, leg->ext, sizeof ev.extension);
    post(leg->call->vt, &ev);
}

static void leg_free(vleg *leg)
{
    SB_ASSERT(leg->magic == LEG_MAGIC);
    tmr_cancel(&leg->tmr_timeout);
    while (!list_isempty(&leg->forks))
        fork_end(list_ledata(list_head(&leg->forks)));
    list_unlink(&leg->le);
    leg->magic = 0;
    free(leg);
}

static void leg_fail(vleg *leg, int code)
{
    sb_log(SB_INFO, "voice", "call=%llu leg=%llu ext=%s failed code=%d", (unsigned long long)leg->call->id,
           (unsigned long long)leg->id, leg->ext, code);
    leg_post(leg, SB_VOICE_LEG_FAILED, code);
    sb_vcall *c = leg->call;
    bool agent_of_originated = c->originated && leg->id == SB_VOICE_LEG_AGENT;
    leg_free(leg);
    if (!agent_of_originated)
        return;
    /* an originated call without its agent has nobody for the customer:
     * it ends (no device 404 and our own failures are the system's) */
    if (code == 408)
        call_finish(c, SB_VOICE_CAUSE_TIMEOUT, SB_VOICE_BY_SYSTEM, code);
    else if (code == 404 || (code >= 500 && code < 600))
        call_finish(c, SB_VOICE_CAUSE_ERROR, SB_VOICE_BY_SYSTEM, code);
    else
        call_finish(c, SB_VOICE_CAUSE_REJECTED, SB_VOICE_BY_AGENT, code);
}

static vleg *leg_find(sb_vcall *c, uint64_t id)
{
    for (struct le *le = list_head(&c->legs); le != NULL; le = le->next) {
        vleg *leg = le->data;
        if (leg->id == id)
            return leg;
    }
    return NULL;
}

static void on_leg_timeout(void *arg)
{
    leg_fail(arg, 408);
}

/* What a leg reports when every device refused: busy wins over a decline,
 * a decline over the rest, so the core learns the agent's own answer. */
static int merge_code(int had, int code)
{
    if (had == 0 || code == 486)
        return code;
    if (code == 603 && had != 486)
        return code;
    return had;
}

static int fork_answer(const struct sip_msg *msg, void *arg)
{
    leg_device *f = arg;
    if (f->magic != FORK_MAGIC || f->media == NULL)
        return 0;
    f->answer_ok = sb_media_take_answer(f->media, msg) == 0;
    return 0;
}

static void fork_progress(const struct sip_msg *msg, void *arg)
{
    leg_device *f = arg;
    if (f->magic != FORK_MAGIC || f->leg == NULL || f->leg->ringing_reported)
        return;
    if (msg->scode == 180 || msg->scode == 183) {
        f->leg->ringing_reported = true;
        leg_post(f->leg, SB_VOICE_LEG_RINGING, 0);
    }
}

static void fork_failed(leg_device *f, int code)
{
    vleg *leg = f->leg;
    fork_end(f);
    leg->fail_code = merge_code(leg->fail_code, code);
    if (leg->state == LEG_RINGING && list_isempty(&leg->forks))
        leg_fail(leg, leg->fail_code);
}

static void fork_estab(const struct sip_msg *msg, void *arg)
{
    leg_device *f = arg;
    (void)msg;
    if (f->magic != FORK_MAGIC || f->leg == NULL)
        return;
    vleg *leg = f->leg;
    if (leg->state != LEG_RINGING) { /* a second device answered too late */
        fork_end(f);
        return;
    }
    if (!f->answer_ok) {
        sb_log(SB_WARN, "voice", "call=%llu leg=%llu answer without G.711: hanging up",
               (unsigned long long)leg->call->id, (unsigned long long)leg->id);
        fork_failed(f, 488);
        return;
    }
    leg->state = LEG_UP;
    leg->winner = f;
    tmr_cancel(&leg->tmr_timeout);
    struct le *le = list_head(&leg->forks);
    while (le != NULL) {
        leg_device *other = le->data;
        le = le->next;
        if (other != f)
            fork_end(other);
    }
    sb_media_start(f->media);
    atomic_fetch_add(&f->vt->cnt->legs_answered, 1);
    leg_post(leg, SB_VOICE_LEG_ANSWERED, 0);
    sb_vcall *c = leg->call;
    if (c->originated && leg->id == SB_VOICE_LEG_AGENT && c->state == CALL_ORIG_AGENT)
        dial_customer(c);
}

static void fork_close(int err, const struct sip_msg *msg, void *arg)
{
    leg_device *f = arg;
    if (f->magic != FORK_MAGIC || f->leg == NULL)
        return;
    vleg *leg = f->leg;
    if (leg->winner == f && err == ECONNRESET && leg->call->keep_caller && leg->call->state != CALL_ENDED) {
        /* the agent hung up (BYE) and the caller stays (the post-call
         * rating): the recording ends with the conversation, freeing the
         * agent's media unbridges the caller's, and the core decides what
         * comes next. A failed dialog still ends the whole call, below. */
        sb_vcall *c = leg->call;
        sb_voice_event ev = {.kind = SB_VOICE_LEG_ENDED,
                             .call_id = c->id,
                             .leg_id = leg->id,
                             .cause = SB_VOICE_CAUSE_NORMAL,
                             .by = SB_VOICE_BY_AGENT};
        c->keep_caller = false;
        sb_media_record_stop(c->media, SB_VOICE_REC_HANGUP);
        fork_end(f);
        leg->winner = NULL;
        leg_free(leg);
        post(c->vt, &ev);
        return;
    }
    if (leg->winner == f) { /* the agent hung up (or the dialog failed): so does the caller */
        sb_vcall *c = leg->call;
        fork_end(f);
        leg->winner = NULL;
        call_finish(c, err == ECONNRESET ? SB_VOICE_CAUSE_NORMAL : SB_VOICE_CAUSE_ERROR, SB_VOICE_BY_AGENT, 0);
        return;
    }
    int code = msg != NULL && msg->scode >= 300 ? msg->scode : err == ETIMEDOUT ? 408 : 480;
    fork_failed(f, code);
}

static int fork_offer(struct mbuf **descp, const struct sip_msg *msg, void *arg)
{
    leg_device *f = arg;
    if (f->magic != FORK_MAGIC || f->leg == NULL)
        return EPROTO;
    return reoffer(f->media, f->leg->call->id, descp, msg);
}

static int trunk_auth(char **username, char **password, const char *realm, void *arg);

/* INVITEs one device for `leg`: `to_uri`, over `tp`, towards `dst` when
 * known (the address our SDP and From name follow); From `from_user` at
 * our address, or at the trunk host with the trunk's credentials for a
 * 401/407 when `trunk`. It offers the caller's G.711 law (both for an
 * originated call, which has no caller yet) and telephone-event. */
static void invite_fork(vleg *leg, const char *to_uri, enum sip_transp tp, const struct sa *dst, const char *from_user,
                        bool trunk)
{
    sb_vcall *c = leg->call;
    sb_vthread *vt = c->vt;
    leg_device *f = sb_xcalloc(1, sizeof *f);
    f->magic = FORK_MAGIC;
    f->vt = vt;
    f->leg = leg;
    tmr_init(&f->tmr_free);
    list_append(&leg->forks, &f->le, f);
    struct sa laddr;
    char from_uri[SB_VOICE_ADDR_MAX + 64];
    struct mbuf *desc = NULL;
    int err = sip_transp_laddr(vt->sip, &laddr, tp, dst);
    int pt = c->media != NULL ? sb_media_pt(c->media) : -1;
    if (err == 0)
        err = sb_media_new_offer(&f->media, vt->mx, f, &laddr, pt) == 0 ? 0 : EIO;
    if (err == 0)
        err = sb_media_offer_sdp(f->media, &desc) == 0 ? 0 : EIO;
    if (err == 0 && (trunk ? re_snprintf(from_uri, sizeof from_uri, "sip:%s@%s", from_user, vt->opt.trunk_host)
                           : re_snprintf(from_uri, sizeof from_uri, "sip:%s@%J", from_user, &laddr)) < 0)
        err = EINVAL;
    if (err == 0)
        err = sipsess_connect(&f->sess, vt->sock, to_uri,
                              c->originated ? (c->orig.display_name[0] ? c->orig.display_name : NULL) : c->from,
                              from_uri, "switchboard", NULL, 0, "application/sdp", desc, trunk ? trunk_auth : NULL,
                              trunk ? vt : NULL, false, fork_offer, fork_answer, fork_progress, fork_estab, NULL, NULL,
                              fork_close, f, "");
    mem_deref(desc);
    if (err != 0) {
        sb_log(SB_WARN, "voice", "call=%llu leg=%llu cannot ring %s err=%d", (unsigned long long)c->id,
               (unsigned long long)leg->id, trunk ? "through the trunk" : to_uri, err);
        leg->fail_code = merge_code(leg->fail_code, trunk ? 503 : 500);
        fork_end(f);
        return;
    }
    atomic_fetch_add(&vt->cnt->legs_invited, 1);
}

static void ring_device(vleg *leg, const binding *b)
{
    invite_fork(leg, b->contact, SIP_TRANSP_UDP, &b->src, leg->call->from, false);
}

static vleg *leg_new(sb_vcall *c, uint64_t leg_id, const char *name)
{
    vleg *leg = sb_xcalloc(1, sizeof *leg);
    leg->magic = LEG_MAGIC;
    leg->call = c;
    leg->id = leg_id;
    snprintf(leg->ext, sizeof leg->ext, "%s", name);
    list_init(&leg->forks);
    tmr_init(&leg->tmr_timeout);
    list_append(&c->legs, &leg->le, leg);
    return leg;
}

static void ring_extension(sb_vcall *c, uint64_t leg_id, const char *ext, unsigned timeout_s)
{
    vleg *leg = leg_new(c, leg_id, ext);
    for (struct le *le = list_head(&c->vt->bindings); le != NULL; le = le->next) {
        const binding *b = le->data;
        if (strcmp(b->ext, leg->ext) == 0)
            ring_device(leg, b);
    }
    if (list_isempty(&leg->forks)) {
        leg_fail(leg, leg->fail_code != 0 ? leg->fail_code : 404);
        return;
    }
    tmr_start(&leg->tmr_timeout, (uint64_t)timeout_s * 1000, on_leg_timeout, leg);
}

/* A phone outside (sb_voice_ring_out): one INVITE, no registered devices. */
static void ring_out(sb_vcall *c, const sb_vcmd *cmd)
{
    if (leg_find(c, cmd->leg_id) != NULL || c->media == NULL)
        return;
    tmr_cancel(&c->tmr_ring);
    vleg *leg = leg_new(c, cmd->leg_id, "outside");
    bool tcp = cmd->via_trunk ? c->vt->opt.trunk_tcp : strstr(cmd->path, ";transport=tcp") != NULL;
    invite_fork(leg, cmd->path, tcp ? SIP_TRANSP_TCP : SIP_TRANSP_UDP, NULL, cmd->extension, cmd->via_trunk);
    if (list_isempty(&leg->forks)) {
        leg_fail(leg, leg->fail_code != 0 ? leg->fail_code : 503);
        return;
    }
    atomic_fetch_add(&c->vt->cnt->legs_outside, 1);
    tmr_start(&leg->tmr_timeout, (uint64_t)cmd->timeout_s * 1000, on_leg_timeout, leg);
}

static void ring_leg(sb_vcall *c, const sb_vcmd *cmd)
{
    if (leg_find(c, cmd->leg_id) != NULL || c->media == NULL)
        return;
    /* Ringing agents is a decision: a caller still ringing is no longer
     * refused for lack of one (the core's queue_max_wait ends the wait). */
    tmr_cancel(&c->tmr_ring);
    ring_extension(c, cmd->leg_id, cmd->extension, cmd->timeout_s);
}

static void bridge_leg(sb_vcall *c, uint64_t leg_id, bool keep_caller)
{
    vleg *leg = leg_find(c, leg_id);
    if (leg == NULL || leg->state != LEG_UP || leg->winner == NULL || c->media == NULL)
        return;
    if (c->state == CALL_RINGING)
        answer_call(c);
    if (c->state == CALL_ENDED)
        return;
    sb_media_bridge(c->media, leg->winner->media);
    c->keep_caller = keep_caller;
    sb_log(SB_INFO, "voice", "call=%llu bridged to leg=%llu ext=%s", (unsigned long long)c->id,
           (unsigned long long)leg->id, leg->ext);
}

/* ---- originated calls: the agent first, then the customer through the trunk ---- */

/* libre asks for the trunk's credentials on a 401/407, once per realm (a
 * second challenge for the same realm means they were refused). */
static int trunk_auth(char **username, char **password, const char *realm, void *arg)
{
    const sb_vthread *vt = arg;
    (void)realm;
    if (vt->opt.trunk_username[0] == '\0')
        return EAUTH;
    int err = str_dup(username, vt->opt.trunk_username);
    if (err == 0)
        err = str_dup(password, vt->opt.trunk_password);
    return err;
}

/* The customer's leg ended before an answer: LEG_FAILED, then the call. */
static void customer_failed(sb_vcall *c, int code, sb_voice_cause cause, sb_voice_party by)
{
    sb_log(SB_INFO, "voice", "call=%llu customer's leg failed code=%d", (unsigned long long)c->id, code);
    sb_voice_event ev = {
        .kind = SB_VOICE_LEG_FAILED, .call_id = c->id, .leg_id = SB_VOICE_LEG_CUSTOMER, .sip_code = code};
    post(c->vt, &ev);
    call_finish(c, cause, by, code);
}

static void on_customer_timeout(void *arg)
{
    customer_failed(arg, 408, SB_VOICE_CAUSE_TIMEOUT, SB_VOICE_BY_SYSTEM);
}

static int orig_offer(struct mbuf **descp, const struct sip_msg *msg, void *arg)
{
    sb_vcall *c = arg;
    return c->magic == CALL_MAGIC ? reoffer(c->media, c->id, descp, msg) : EPROTO;
}

static int orig_answer(const struct sip_msg *msg, void *arg)
{
    sb_vcall *c = arg;
    if (c->magic == CALL_MAGIC && c->media != NULL)
        c->answer_ok = sb_media_take_answer(c->media, msg) == 0;
    return 0;
}

static void orig_progress(const struct sip_msg *msg, void *arg)
{
    sb_vcall *c = arg;
    if (c->magic != CALL_MAGIC || c->state != CALL_ORIG_CUSTOMER)
        return;
    if (msg->scode != 180 && msg->scode != 183)
        return;
    /* early media (the network's ringback, "the number is not available"):
     * the agent hears it instead of ours; unwatched until the answer, as
     * a network may go quiet after its announcement */
    vleg *agent = leg_find(c, SB_VOICE_LEG_AGENT);
    if (!c->early && mbuf_get_left(msg->mb) > 0 && agent != NULL && agent->winner != NULL &&
        sb_media_take_answer(c->media, msg) == 0) {
        c->early = true;
        atomic_fetch_add(&c->vt->cnt->early_media, 1);
        sb_media_watch(c->media, false);
        sb_media_start(c->media);
        sb_media_bridge(c->media, agent->winner->media);
        sb_log(SB_DEBUG, "voice", "call=%llu early media from the customer's network", (unsigned long long)c->id);
    }
    if (!c->customer_ringing) {
        c->customer_ringing = true;
        sb_voice_event ev = {.kind = SB_VOICE_LEG_RINGING, .call_id = c->id, .leg_id = SB_VOICE_LEG_CUSTOMER};
        post(c->vt, &ev);
    }
}

/* The customer answered: their media and the agent's are bridged. */
static void orig_estab(const struct sip_msg *msg, void *arg)
{
    sb_vcall *c = arg;
    (void)msg;
    if (c->magic != CALL_MAGIC || c->state != CALL_ORIG_CUSTOMER)
        return;
    vleg *agent = leg_find(c, SB_VOICE_LEG_AGENT);
    if (!c->answer_ok || agent == NULL || agent->winner == NULL) {
        sb_log(SB_WARN, "voice", "call=%llu the customer answered without G.711: hanging up",
               (unsigned long long)c->id);
        customer_failed(c, 488, SB_VOICE_CAUSE_CODEC, SB_VOICE_BY_SYSTEM);
        return;
    }
    tmr_cancel(&c->tmr_ring);
    c->state = CALL_UP;
    atomic_fetch_add(&c->vt->cnt->trunk_answered, 1);
    sb_media_watch(c->media, true);
    sb_media_start(c->media);
    sb_media_bridge(c->media, agent->winner->media);
    sb_log(SB_INFO, "voice", "call=%llu customer answered: bridged to ext=%s", (unsigned long long)c->id, agent->ext);
    sb_voice_event ev = {.kind = SB_VOICE_LEG_ANSWERED, .call_id = c->id, .leg_id = SB_VOICE_LEG_CUSTOMER};
    post(c->vt, &ev);
}

static void orig_close(int err, const struct sip_msg *msg, void *arg)
{
    sb_vcall *c = arg;
    if (c->magic != CALL_MAGIC || c->state == CALL_ENDED)
        return;
    if (c->state == CALL_UP) {
        if (err == ECONNRESET) /* the customer's BYE */
            call_finish(c, SB_VOICE_CAUSE_NORMAL, SB_VOICE_BY_CUSTOMER, 0);
        else
            call_finish(c, err == ETIMEDOUT ? SB_VOICE_CAUSE_TIMEOUT : SB_VOICE_CAUSE_ERROR, SB_VOICE_BY_SYSTEM, 0);
        return;
    }
    /* a final answer from the network is the customer's (busy, no answer,
     * declined); a 401/403 left is the trunk refusing our credentials */
    int code = msg != NULL && msg->scode >= 300 ? msg->scode : err == ETIMEDOUT ? 408 : 500;
    if (msg == NULL || code == 401 || code == 403 || code == 407)
        customer_failed(c, code, err == ETIMEDOUT ? SB_VOICE_CAUSE_TIMEOUT : SB_VOICE_CAUSE_ERROR, SB_VOICE_BY_SYSTEM);
    else if (code == 486 || code == 600 || code == 603)
        customer_failed(c, code, SB_VOICE_CAUSE_REJECTED, SB_VOICE_BY_CUSTOMER);
    else if (code == 408 || code == 480 || code == 487)
        customer_failed(c, code, SB_VOICE_CAUSE_TIMEOUT, SB_VOICE_BY_CUSTOMER);
    else
        customer_failed(c, code, SB_VOICE_CAUSE_ERROR, SB_VOICE_BY_SYSTEM);
}

/* The agent answered: INVITE sip:<number>@<trunk host> From the caller ID,
 * offering both G.711 laws; the answer is bridged in orig_estab. */
static void dial_customer(sb_vcall *c)
{
    sb_vthread *vt = c->vt;
    c->state = CALL_ORIG_CUSTOMER;
    enum sip_transp tp = vt->opt.trunk_tcp ? SIP_TRANSP_TCP : SIP_TRANSP_UDP;
    char to_uri[SB_VOICE_ADDR_MAX + 64], from_uri[SB_VOICE_ADDR_MAX + 64];
    struct sa laddr;
    struct mbuf *desc = NULL;
    int err = sip_transp_laddr(vt->sip, &laddr, tp, NULL);
    if (err == 0)
        err = sb_media_new_offer(&c->media, vt->mx, c, &laddr, -1) == 0 ? 0 : EIO;
    if (err == 0)
        err = sb_media_offer_sdp(c->media, &desc) == 0 ? 0 : EIO;
    if (err == 0 && (re_snprintf(to_uri, sizeof to_uri, "sip:%s@%s%s", c->orig.number, vt->opt.trunk_host,
                                 vt->opt.trunk_tcp ? ";transport=tcp" : "") < 0 ||
                     re_snprintf(from_uri, sizeof from_uri, "sip:%s@%s", c->orig.caller_id, vt->opt.trunk_host) < 0))
        err = EINVAL;
    if (err == 0)
        err = sipsess_connect(&c->sess, vt->sock, to_uri, NULL, from_uri, "switchboard", NULL, 0, "application/sdp",
                              desc, trunk_auth, vt, false, orig_offer, orig_answer, orig_progress, orig_estab, on_info,
                              NULL, orig_close, c, "");
    mem_deref(desc);
    if (err != 0) {
        sb_log(SB_WARN, "voice", "call=%llu cannot dial through the trunk err=%d", (unsigned long long)c->id, err);
        customer_failed(c, 503, SB_VOICE_CAUSE_ERROR, SB_VOICE_BY_SYSTEM);
        return;
    }
    atomic_fetch_add(&vt->cnt->trunk_calls, 1);
    sb_log(SB_INFO, "voice", "call=%llu agent answered: dialling the customer through the trunk",
           (unsigned long long)c->id);
    vleg *agent = leg_find(c, SB_VOICE_LEG_AGENT); /* they hear it ring (the bridge stops it) */
    if (c->orig.ringback[0] != '\0' && agent != NULL && agent->winner != NULL &&
        sb_media_play(agent->winner->media, c->orig.ringback, true) != 0)
        sb_log(SB_DEBUG, "voice", "call=%llu no ringback prompt: the agent hears silence", (unsigned long long)c->id);
    tmr_start(&c->tmr_ring, (uint64_t)c->orig.customer_timeout_s * 1000, on_customer_timeout, c);
}

/* A call with no inbound caller (voice.h, sb_voice_originate): it starts
 * by ringing the agent's extension as leg SB_VOICE_LEG_AGENT. */
static void originate(sb_vthread *vt, const sb_vcmd *cmd)
{
    if (call_find(vt, cmd->call_id) != NULL) {
        sb_log(SB_WARN, "voice", "call=%llu originate refused: the id is in use", (unsigned long long)cmd->call_id);
        return;
    }
    if (vt->shutting_down || vt->opt.trunk_host[0] == '\0') {
        sb_voice_event ev = {.kind = SB_VOICE_HANGUP,
                             .call_id = cmd->call_id,
                             .cause = vt->shutting_down ? SB_VOICE_CAUSE_SHUTDOWN : SB_VOICE_CAUSE_ERROR,
                             .by = SB_VOICE_BY_SYSTEM,
                             .sip_code = 503};
        post(vt, &ev);
        return;
    }
    sb_vcall *c = sb_xcalloc(1, sizeof *c);
    c->magic = CALL_MAGIC;
    c->vt = vt;
    c->id = cmd->call_id;
    c->originated = true;
    c->orig = *cmd->orig;
    c->state = CALL_ORIG_AGENT;
    memcpy(c->from, cmd->orig->display, sizeof c->from); /* what the agent's phone shows */
    list_init(&c->legs);
    tmr_init(&c->tmr_ring);
    tmr_init(&c->tmr_free);
    atomic_fetch_add(&vt->cnt->calls_active, 1);
    call_add(vt, c);
    sb_log(SB_INFO, "voice", "call=%llu originated: ringing ext=%s first", (unsigned long long)c->id,
           c->orig.extension);
    ring_extension(c, SB_VOICE_LEG_AGENT, c->orig.extension, c->orig.agent_timeout_s);
}

/* ---- commands ---- */

static void binding_remove(sb_vthread *vt, binding *b, bool report)
{
    if (report) {
        sb_voice_event ev = {.kind = SB_VOICE_UNREGISTERED, .agent_id = b->agent_id};
        memcpy(ev.extension, b->ext, sizeof ev.extension);
        memcpy(ev.contact, b->contact, sizeof ev.contact);
        post(vt, &ev);
    }
    list_unlink(&b->le);
    vt->nbindings--;
    atomic_fetch_sub(&vt->cnt->registrations, 1);
    free(b);
}

static const sb_voice_extension *ext_find(const sb_vthread *vt, const char *ext, size_t len)
{
    for (size_t i = 0; i < vt->next; i++)
        if (strlen(vt->ext[i].extension) == len && memcmp(vt->ext[i].extension, ext, len) == 0)
            return &vt->ext[i];
    return NULL;
}

static void set_extensions(sb_vthread *vt, sb_vcmd *cmd)
{
    free(vt->ext);
    vt->ext = cmd->ext;
    vt->next = cmd->n;
    cmd->ext = NULL;
    /* Devices of extensions that went away (or changed owner) are dropped. */
    struct le *le = list_head(&vt->bindings);
    while (le != NULL) {
        binding *b = le->data;
        le = le->next;
        const sb_voice_extension *e = ext_find(vt, b->ext, strlen(b->ext));
        if (e == NULL || e->agent_id != b->agent_id)
            binding_remove(vt, b, true);
    }
    sb_log(SB_INFO, "voice", "extensions=%zu", vt->next);
}

void sb_vsip_command(sb_vthread *vt, sb_vcmd *cmd)
{
    sb_vcall *c = cmd->call_id != 0 ? call_find(vt, cmd->call_id) : NULL;
    bool live = c != NULL && c->state != CALL_ENDED;
    switch (cmd->kind) {
    case SB_VCMD_SET_EXTENSIONS: set_extensions(vt, cmd); break;
    case SB_VCMD_ANSWER:
        if (live)
            answer_call(c);
        break;
    case SB_VCMD_REJECT:
        if (live)
            call_reject(c, cmd->code, SB_VOICE_CAUSE_REJECTED);
        break;
    case SB_VCMD_PLAY:
        if (live)
            c->play_id = cmd->play_id;
        if (live && c->media != NULL && sb_media_play(c->media, cmd->path, cmd->loop) != 0)
            media_play_done(c, true);
        break;
    case SB_VCMD_STOP_PLAY:
        if (live && c->media != NULL)
            sb_media_stop_play(c->media);
        break;
    case SB_VCMD_HANGUP:
        if (live && c->state == CALL_RINGING)
            call_reject(c, 480, SB_VOICE_CAUSE_NORMAL);
        else if (live)
            call_finish(c, SB_VOICE_CAUSE_NORMAL, SB_VOICE_BY_SYSTEM, 0);
        break;
    case SB_VCMD_RING:
        if (live)
            ring_leg(c, cmd);
        break;
    case SB_VCMD_RING_OUT:
        if (live)
            ring_out(c, cmd);
        break;
    case SB_VCMD_CANCEL_LEG:
        if (live && leg_find(c, cmd->leg_id) != NULL)
            leg_free(leg_find(c, cmd->leg_id));
        break;
    case SB_VCMD_BRIDGE:
        if (live)
            bridge_leg(c, cmd->leg_id, cmd->keep_caller);
        break;
    case SB_VCMD_RECORD:
        if (live && c->media != NULL)
            sb_media_record(c->media, cmd->path, &cmd->rec);
        break;
    case SB_VCMD_ORIGINATE: originate(vt, cmd); break;
    case SB_VCMD_STOP: break; /* handled in voice.c */
    }
    sb_vcmd_free(cmd);
}

/* ---- registrar ---- */

static bool failure_has_ip(struct le *le, void *arg)
{
    const failure_entry *f = le->data;
    return sa_cmp(&f->ip, arg, SA_ADDR);
}

static void failure_drop(sb_vthread *vt, failure_entry *f)
{
    list_unlink(&f->le);
    hash_unlink(&f->hle);
    free(f);
    vt->nfailures--;
}

static failure_entry *failure_get(sb_vthread *vt, const struct sa *src, bool create)
{
    uint32_t key = sa_hash(src, SA_ADDR);
    struct le *le = hash_lookup(vt->failures_by_ip, key, failure_has_ip, (void *)src);
    if (le != NULL || !create)
        return le != NULL ? le->data : NULL;
    if (vt->nfailures >= MAX_LOCKOUT_ENTRIES) /* forget the oldest */
        failure_drop(vt, list_ledata(list_head(&vt->failures)));
    failure_entry *f = sb_xcalloc(1, sizeof *f);
    f->ip = *src;
    list_append(&vt->failures, &f->le, f);
    hash_append(vt->failures_by_ip, key, &f->hle, f);
    vt->nfailures++;
    return f;
}

static bool locked_out(sb_vthread *vt, const struct sa *src, uint64_t now)
{
    failure_entry *f = failure_get(vt, src, false);
    return f != NULL && f->locked_until_ms > now;
}

static void count_failure(sb_vthread *vt, const struct sip_msg *msg, const char *ext, uint64_t now)
{
    bool invite = pl_strcmp(&msg->met, "INVITE") == 0;
    atomic_fetch_add(invite ? &vt->cnt->invites_refused : &vt->cnt->register_failures, 1);
    failure_entry *f = failure_get(vt, &msg->src, true);
    if (now - f->window_start_ms > FAILURE_WINDOW_MS) {
        f->window_start_ms = now;
        f->failures = 0;
    }
    f->failures++;
    char ip[64] = "";
    (void)sa_ntop(&msg->src, ip, sizeof ip);
    sb_log(SB_WARN, "voice", "%s refused user=%s src=%s failures=%u", invite ? "invite" : "register", ext, ip,
           f->failures);
    if (vt->opt.register_max_failures > 0 && f->failures >= vt->opt.register_max_failures) {
        f->locked_until_ms = now + (uint64_t)vt->opt.register_lockout_seconds * 1000;
        f->failures = 0;
        f->window_start_ms = now;
        atomic_fetch_add(&vt->cnt->register_lockouts, 1);
        sb_log(SB_WARN, "voice", "digest lockout src=%s seconds=%u", ip, vt->opt.register_lockout_seconds);
    }
}

/* 401 with WWW-Authenticate, or with `proxy` 407 with Proxy-Authenticate
 * (what phones expect for an INVITE). An INVITE's challenge is sent by a
 * server transaction: over UDP it is repeated until the caller's ACK, and
 * the INVITE's retransmissions get it again rather than a new nonce each. */
static void challenge(sb_vthread *vt, const struct sip_msg *msg, bool stale, bool proxy)
{
    char nonce[SB_VOICE_NONCE_LEN + 1];
    sb_voice_nonce_make(vt->secret, sb_clock_mono_ms() + NONCE_TTL_MS, ++vt->nonce_seq, nonce);
    uint16_t code = proxy ? 407 : 401;
    const char *reason = proxy ? "Proxy Authentication Required" : "Unauthorized";
    const char *fmt = "%s: Digest realm=\"%s\", nonce=\"%s\", qop=\"auth\", algorithm=MD5%s\r\n"
                      "Content-Length: 0\r\n\r\n";
    const char *hdr = proxy ? "Proxy-Authenticate" : "WWW-Authenticate";
    const char *st = stale ? ", stale=true" : "";
    if (pl_strcmp(&msg->met, "INVITE") == 0)
        (void)sip_treplyf(NULL, NULL, vt->sip, msg, false, code, reason, fmt, hdr, vt->opt.realm, nonce, st);
    else
        (void)sip_replyf(vt->sip, msg, code, reason, fmt, hdr, vt->opt.realm, nonce, st);
}

static int hex_to_bin(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = ch_hex(hex[2 * i]), lo = ch_hex(hex[2 * i + 1]);
        if (hex[2 * i] == '\0' || hex[2 * i + 1] == '\0')
            return SB_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Checks the Authorization header (with `proxy`, Proxy-Authorization,
 * which answers our 407) for `user`: 0 authenticated, 1 challenge again
 * (none, stale or foreign nonce, other realm), SB_EAUTH wrong credentials
 * or another user's, SB_EINVAL malformed. The HA1 is `ha1_hex` when given
 * (the trunk, an INVITE's extension), else the extension's (*e set). */
static bool nonce_is(struct le *le, void *arg)
{
    const nonce_use *u = le->data;
    return pl_strcmp(arg, u->nonce) == 0;
}

static void nonce_drop(sb_vthread *vt, nonce_use *u)
{
    list_unlink(&u->le);
    hash_unlink(&u->hle);
    free(u);
    vt->nnonces--;
}

/* Whether a digest that verified is not a replay. Our nonces carry no
 * state (sb_voice_nonce_make), so each accepted one is remembered for its
 * lifetime with the highest nonce count (qop=auth's nc) used: a request
 * must count higher than the last (RFC 7616 3.4); without qop (no nc) a
 * nonce serves once. A retransmission never gets here: the transaction
 * layer answers it. Only digests that verified are remembered, so a
 * stranger cannot fill the table. */
static bool nonce_fresh(sb_vthread *vt, const struct httpauth_digest_resp *r, uint64_t now)
{
    if (r->nonce.l >= sizeof(((nonce_use *)0)->nonce))
        return false;
    uint32_t nc = pl_isset(&r->nc) ? pl_x32(&r->nc) : 0;
    uint32_t key = hash_joaat((const uint8_t *)r->nonce.p, r->nonce.l);
    struct le *le = hash_lookup(vt->nonces, key, nonce_is, (void *)&r->nonce);
    if (le != NULL) {
        nonce_use *u = le->data;
        if (nc <= u->nc)
            return false;
        u->nc = nc;
        return true;
    }
    if (vt->nnonces >= MAX_NONCES)
        nonce_drop(vt, list_ledata(list_head(&vt->nonce_uses)));
    nonce_use *u = sb_xcalloc(1, sizeof *u);
    memcpy(u->nonce, r->nonce.p, r->nonce.l);
    u->nc = nc;
    u->until_ms = now + NONCE_TTL_MS; /* at most: the nonce was made no later than now */
    list_append(&vt->nonce_uses, &u->le, u);
    hash_append(vt->nonces, key, &u->hle, u);
    vt->nnonces++;
    return true;
}

static int authenticate(sb_vthread *vt, const struct sip_msg *msg, const char *user, const char *ha1_hex, bool proxy,
                        uint64_t now, const sb_voice_extension **e, bool *stale)
{
    *stale = false;
    const struct sip_hdr *h = sip_msg_hdr(msg, proxy ? SIP_HDR_PROXY_AUTHORIZATION : SIP_HDR_AUTHORIZATION);
    if (h == NULL)
        return 1;
    struct httpauth_digest_resp resp;
    if (httpauth_digest_response_decode(&resp, &h->val) != 0)
        return SB_EINVAL;
    if (pl_strcmp(&resp.realm, vt->opt.realm) != 0)
        return 1;
    int nc = sb_voice_nonce_check(vt->secret, resp.nonce.p, resp.nonce.l, now);
    if (nc != 0) {
        *stale = nc == 1;
        return 1;
    }
    if (pl_isset(&resp.qop) && pl_strcasecmp(&resp.qop, "auth") != 0)
        return SB_EINVAL;
    if (pl_strcmp(&resp.username, user) != 0)
        return SB_EAUTH;
    if (ha1_hex == NULL) {
        *e = ext_find(vt, resp.username.p, resp.username.l);
        if (*e == NULL)
            return SB_EAUTH;
        ha1_hex = (*e)->ha1;
    }
    uint8_t ha1[MD5_SIZE];
    if (hex_to_bin(ha1_hex, ha1, sizeof ha1) != 0)
        return SB_EAUTH;
    if (httpauth_digest_response_auth(&resp, &msg->met, ha1) != 0)
        return SB_EAUTH;
    if (!nonce_fresh(vt, &resp, now)) { /* a replay: a new challenge, not a wrong password */
        *stale = true;
        return 1;
    }
    return 0;
}

typedef struct contact_walk {
    sb_vthread *vt;
    const struct sip_msg *msg;
    const sb_voice_extension *e;
    uint32_t default_expires;
    uint64_t now;
    int status; /* 0 or a SIP error */
    bool star;
    size_t count;
} contact_walk;

static binding *binding_find(sb_vthread *vt, const char *ext, const char *contact)
{
    for (struct le *le = list_head(&vt->bindings); le != NULL; le = le->next) {
        binding *b = le->data;
        if (strcmp(b->ext, ext) == 0 && strcmp(b->contact, contact) == 0)
            return b;
    }
    return NULL;
}

static size_t bindings_of(sb_vthread *vt, const char *ext)
{
    size_t n = 0;
    for (struct le *le = list_head(&vt->bindings); le != NULL; le = le->next)
        n += strcmp(((binding *)le->data)->ext, ext) == 0;
    return n;
}

static bool on_contact(const struct sip_hdr *hdr, const struct sip_msg *msg, void *arg)
{
    contact_walk *w = arg;
    if (pl_strcmp(&hdr->val, "*") == 0) {
        w->star = true;
        return false;
    }
    struct sip_addr addr;
    if (sip_addr_decode(&addr, &hdr->val) != 0 || addr.auri.l == 0 || addr.auri.l >= SB_VOICE_ADDR_MAX) {
        w->status = 400;
        return true;
    }
    uint32_t expires = w->default_expires;
    struct pl ex;
    if (msg_param_decode(&addr.params, "expires", &ex) == 0)
        expires = pl_u32(&ex);
    char contact[SB_VOICE_ADDR_MAX];
    (void)pl_strcpy(&addr.auri, contact, sizeof contact);
    binding *b = binding_find(w->vt, w->e->extension, contact);
    if (expires == 0) {
        if (b != NULL)
            binding_remove(w->vt, b, true);
        return false;
    }
    if (expires < REGISTER_MIN_S) {
        w->status = 423;
        return true;
    }
    if (expires > REGISTER_MAX_S)
        expires = REGISTER_MAX_S;
    if (b == NULL) {
        if (bindings_of(w->vt, w->e->extension) >= MAX_CONTACTS || w->vt->nbindings >= MAX_BINDINGS) {
            w->status = 403;
            return true;
        }
        b = sb_xcalloc(1, sizeof *b);
        memcpy(b->ext, w->e->extension, sizeof b->ext);
        b->agent_id = w->e->agent_id;
        memcpy(b->contact, contact, sizeof contact);
        list_append(&w->vt->bindings, &b->le, b);
        w->vt->nbindings++;
        atomic_fetch_add(&w->vt->cnt->registrations, 1);
        sb_voice_event ev = {.kind = SB_VOICE_REGISTERED, .agent_id = b->agent_id};
        memcpy(ev.extension, b->ext, sizeof ev.extension);
        memcpy(ev.contact, b->contact, sizeof ev.contact);
        post(w->vt, &ev);
    }
    b->src = msg->src;
    b->expires_ms = w->now + (uint64_t)expires * 1000;
    w->count++;
    return false;
}

static void reply_bindings(sb_vthread *vt, const struct sip_msg *msg, const char *ext, uint64_t now)
{
    sb_buf hdrs;
    sb_buf_init(&hdrs);
    for (struct le *le = list_head(&vt->bindings); le != NULL; le = le->next) {
        const binding *b = le->data;
        if (strcmp(b->ext, ext) == 0)
            sb_buf_printf(&hdrs, "Contact: <%s>;expires=%llu\r\n", b->contact,
                          (unsigned long long)((b->expires_ms - now + 999) / 1000));
    }
    (void)sip_replyf(vt->sip, msg, 200, "OK", "%sContent-Length: 0\r\n\r\n", hdrs.len ? hdrs.p : "");
    sb_buf_free(&hdrs);
}

static void handle_register(sb_vthread *vt, const struct sip_msg *msg)
{
    uint64_t now = sb_clock_mono_ms();
    char ext[SB_VOICE_EXT_MAX];
    if (!sb_voice_user_copy(&msg->to.uri.user, ext)) {
        (void)sip_reply(vt->sip, msg, 400, "Bad Request");
        return;
    }
    if (locked_out(vt, &msg->src, now)) {
        (void)sip_reply(vt->sip, msg, 403, "Forbidden");
        return;
    }
    const sb_voice_extension *e = NULL;
    bool stale = false;
    int rc = authenticate(vt, msg, ext, NULL, false, now, &e, &stale);
    if (rc == 1) {
        challenge(vt, msg, stale, false);
        return;
    }
    if (rc == SB_EINVAL) {
        (void)sip_reply(vt->sip, msg, 400, "Bad Request");
        return;
    }
    if (rc != 0) {
        count_failure(vt, msg, ext, now);
        (void)sip_reply(vt->sip, msg, 403, "Forbidden");
        return;
    }
    contact_walk w = {vt, msg, e, REGISTER_DEFAULT_S, now, 0, false, 0};
    if (pl_isset(&msg->expires))
        w.default_expires = pl_u32(&msg->expires);
    (void)sip_msg_hdr_apply(msg, true, SIP_HDR_CONTACT, on_contact, &w);
    if (w.star) {
        if (w.default_expires != 0 || sip_msg_hdr_count(msg, SIP_HDR_CONTACT) != 1) {
            (void)sip_reply(vt->sip, msg, 400, "Bad Request");
            return;
        }
        struct le *le = list_head(&vt->bindings);
        while (le != NULL) {
            binding *b = le->data;
            le = le->next;
            if (strcmp(b->ext, ext) == 0)
                binding_remove(vt, b, true);
        }
    }
    if (w.status == 423) {
        (void)sip_replyf(vt->sip, msg, 423, "Interval Too Brief", "Min-Expires: %u\r\nContent-Length: 0\r\n\r\n",
                         REGISTER_MIN_S);
        return;
    }
    if (w.status != 0) {
        (void)sip_reply(vt->sip, msg, (uint16_t)w.status, reason_phrase(w.status));
        return;
    }
    reply_bindings(vt, msg, ext, now);
}

static bool on_request(const struct sip_msg *msg, void *arg)
{
    sb_vthread *vt = arg;
    if (pl_strcmp(&msg->met, "REGISTER") == 0) {
        if (vt->shutting_down)
            (void)sip_reply(vt->sip, msg, 503, "Service Unavailable");
        else
            handle_register(vt, msg);
        return true;
    }
    if (pl_strcmp(&msg->met, "OPTIONS") == 0) {
        (void)sip_replyf(vt->sip, msg, 200, "OK",
                         "Allow: INVITE, ACK, CANCEL, BYE, INFO, OPTIONS, REGISTER\r\n"
                         "Accept: application/sdp\r\nContent-Length: 0\r\n\r\n");
        return true;
    }
    return false;
}

static void on_housekeeping(void *arg)
{
    sb_vthread *vt = arg;
    uint64_t now = sb_clock_mono_ms();
    struct le *le = list_head(&vt->bindings);
    while (le != NULL) {
        binding *b = le->data;
        le = le->next;
        if (b->expires_ms <= now)
            binding_remove(vt, b, true);
    }
    le = list_head(&vt->failures);
    while (le != NULL) {
        failure_entry *f = le->data;
        le = le->next;
        if (f->locked_until_ms <= now && now - f->window_start_ms > FAILURE_WINDOW_MS &&
            now - f->invite_at_ms > INVITE_IDLE_MS)
            failure_drop(vt, f);
    }
    while (!list_isempty(&vt->nonce_uses) && ((nonce_use *)list_ledata(list_head(&vt->nonce_uses)))->until_ms <= now)
        nonce_drop(vt, list_ledata(list_head(&vt->nonce_uses))); /* stale now: refused before a replay check */
    tmr_start(&vt->housekeeping, 1000, on_housekeeping, vt);
}

/* ---- lifecycle ---- */

static void on_sip_exit(void *arg)
{
    sb_vthread *vt = arg;
    vt->sip_exited = true;
    tmr_cancel(&vt->grace);
    re_cancel();
}

/* libre 1.1.0 keeps its transports' sockets to itself, so the UDP one is
 * found among our descriptors by the address it is bound to. Its receive
 * buffer goes from the kernel's default (about 200 kB, a few hundred SIP
 * messages) to SIP_RCVBUF, up to net.core.rmem_max: a burst of calls, or
 * a moment the thread is not scheduled (a busy machine), then waits in the
 * buffer instead of being dropped and retransmitted 500 ms later. */
static void enlarge_udp_buffer(const struct sa *bound)
{
    struct rlimit rl;
    int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
    for (int fd = 0; fd < max; fd++) {
        struct sa sa;
        sa_init(&sa, AF_UNSPEC);
        int type = 0;
        socklen_t tlen = sizeof type;
        if (getsockname(fd, &sa.u.sa, &sa.len) != 0 || !sa_cmp(&sa, bound, SA_ALL) ||
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_DGRAM)
            continue;
        int want = SIP_RCVBUF, got = 0;
        socklen_t glen = sizeof got;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
        (void)getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &glen); /* the kernel counts double */
        if (got / 2 < want)
            sb_log(SB_WARN, "voice", "SIP UDP receive buffer is %d kB, not %d kB: raise net.core.rmem_max", got / 2048,
                   want / 1024);
        return;
    }
    sb_log(SB_WARN, "voice", "SIP UDP socket not found: its receive buffer stays the kernel's default");
}

static int add_transports(sb_vthread *vt, int *port)
{
    struct sa laddr;
    if (sa_set_str(&laddr, vt->opt.host, (uint16_t)vt->opt.port) != 0) {
        sb_log(SB_ERROR, "voice", "bad SIP listen address %s", vt->opt.host);
        return SB_EINVAL;
    }
    /* Port 0: the kernel picks the UDP port, TCP must get the same one. */
    for (int attempt = 0; attempt < 20; attempt++) {
        int err = sip_transp_add(vt->sip, SIP_TRANSP_UDP, &laddr);
        struct sa bound;
        if (err == 0)
            err = sip_transp_laddr(vt->sip, &bound, SIP_TRANSP_UDP, NULL);
        if (err == 0) {
            struct sa tcp = laddr;
            sa_set_port(&tcp, sa_port(&bound));
            err = sip_transp_add(vt->sip, SIP_TRANSP_TCP, &tcp);
            if (err == 0) {
                *port = sa_port(&bound);
                enlarge_udp_buffer(&bound);
                return 0;
            }
        }
        sip_transp_flush(vt->sip);
        if (vt->opt.port != 0 || (err != EADDRINUSE && err != 0)) {
            sb_log(SB_ERROR, "voice", "cannot listen for SIP on %s:%d err=%d", vt->opt.host, vt->opt.port, err);
            return SB_EIO;
        }
    }
    return SB_EIO;
}

/* A trunk named by a host name needs DNS (RFC 3263: NAPTR, SRV, A); one
 * named by its address does not, and then no resolver is made. Without
 * one the trunk's calls fail (503) and say so in the log. */
/* libre's sipreg answers challenges (trunk_auth), refreshes at 90% of
 * what the registrar granted and retries failures with a growing wait;
 * this only tells the log and the gauge when the state changes. */
static void on_reg_response(int err, const struct sip_msg *msg, void *arg)
{
    sb_vthread *vt = arg;
    bool ok = err == 0 && msg != NULL && msg->scode >= 200 && msg->scode < 300;
    if (msg != NULL && msg->scode < 200)
        return;
    atomic_store(&vt->cnt->trunk_registered, ok ? 1 : 0);
    if (!ok)
        atomic_fetch_add(&vt->cnt->trunk_register_failures, 1);
    if (ok != vt->reg_ok || !ok) {
        if (ok)
            sb_log(SB_INFO, "voice", "registered at the trunk for %u s", sipreg_proxy_expires(vt->reg));
        else
            sb_log(SB_WARN, "voice", "registration at the trunk failed: %s %u", err != 0 ? "error" : "status",
                   err != 0      ? (unsigned)err
                   : msg != NULL ? (unsigned)msg->scode
                                 : 0u);
    }
    vt->reg_ok = ok;
}

static int start_registration(sb_vthread *vt)
{
    const sb_voice_options *o = &vt->opt;
    if (!o->trunk_register || o->trunk_host[0] == '\0' || o->trunk_username[0] == '\0')
        return 0;
    char reg_uri[SB_VOICE_ADDR_MAX + 32], aor[SB_VOICE_ADDR_MAX + 96];
    if (re_snprintf(reg_uri, sizeof reg_uri, "sip:%s%s", o->trunk_host, o->trunk_tcp ? ";transport=tcp" : "") < 0 ||
        re_snprintf(aor, sizeof aor, "sip:%s@%s", o->trunk_username, o->trunk_host) < 0)
        return SB_EINVAL;
    int err = sipreg_register(&vt->reg, vt->sip, reg_uri, aor, NULL, aor, o->trunk_register_expires, o->trunk_username,
                              NULL, 0, 0, trunk_auth, vt, false, on_reg_response, vt, NULL, NULL);
    if (err != 0) {
        sb_log(SB_ERROR, "voice", "cannot register at the trunk err=%d", err);
        return SB_EIO;
    }
    return 0;
}

static void open_resolver(sb_vthread *vt)
{
    const char *host = vt->opt.trunk_host;
    struct sa sa;
    if (host[0] == '\0' || sa_decode(&sa, host, strlen(host)) == 0 || sa_set_str(&sa, host, 0) == 0)
        return;
    struct sa ns[8];
    uint32_t n = SB_ARRAY_LEN(ns);
    char domain[128] = "";
    if (dns_srv_get(domain, sizeof domain, ns, &n) != 0 || n == 0 || dnsc_alloc(&vt->dnsc, NULL, ns, n) != 0)
        sb_log(SB_WARN, "voice", "no DNS resolver: the trunk host %s cannot be resolved", host);
}

int sb_vsip_open(sb_vthread **out, sb_voice *v, const sb_voice_options *opt, int *port)
{
    *out = NULL;
    sb_vthread *vt = sb_xcalloc(1, sizeof *vt);
    vt->v = v;
    vt->cnt = sb_voice_counters_of(v);
    vt->opt = *opt;
    list_init(&vt->calls);
    list_init(&vt->dying);
    list_init(&vt->bindings);
    list_init(&vt->failures);
    tmr_init(&vt->housekeeping);
    tmr_init(&vt->grace);
    list_init(&vt->nonce_uses);
    if (hash_alloc(&vt->calls_by_id, CALLS_HASH) != 0 || hash_alloc(&vt->failures_by_ip, FAILURES_HASH) != 0 ||
        hash_alloc(&vt->nonces, NONCES_HASH) != 0)
        abort(); /* out of memory */
    sb_random_hex(vt->secret, 32);
    if (opt->trunk_in_username[0] != '\0')
        sb_voice_ha1(opt->trunk_in_username, opt->realm, opt->trunk_in_password, vt->trunk_ha1);
    explicit_bzero(vt->opt.trunk_in_password, sizeof vt->opt.trunk_in_password); /* the HA1 is enough */
    sb_media_hooks hooks = {media_dtmf, media_play_done, media_no_media, media_recording_done};
    int rc = sb_mediactx_new(&vt->mx, vt->cnt, &hooks, opt->no_media_seconds);
    if (rc != 0)
        goto fail;
    open_resolver(vt);
    rc = SB_EIO;
    if (sip_alloc(&vt->sip, vt->dnsc, TRANS_HASH, TRANS_HASH, TCP_HASH, USER_AGENT, on_sip_exit, vt) != 0)
        goto fail;
    rc = add_transports(vt, port);
    if (rc != 0)
        goto fail;
    rc = SB_EIO;
    if (sip_listen(&vt->lsnr, vt->sip, true, on_request, vt) != 0 ||
        sipsess_listen(&vt->sock, vt->sip, TRANS_HASH, on_invite, vt) != 0)
        goto fail;
    tmr_start(&vt->housekeeping, 1000, on_housekeeping, vt);
    if (start_registration(vt) != 0)
        goto fail;
    *out = vt;
    return 0;
fail:
    vt->reg = mem_deref(vt->reg);
    vt->sock = mem_deref(vt->sock);
    vt->lsnr = mem_deref(vt->lsnr);
    vt->sip = mem_deref(vt->sip);
    vt->dnsc = mem_deref(vt->dnsc);
    sb_mediactx_free(vt->mx);
    explicit_bzero(vt->opt.trunk_password, sizeof vt->opt.trunk_password);
    mem_deref(vt->calls_by_id);
    mem_deref(vt->failures_by_ip);
    while (!list_isempty(&vt->nonce_uses))
        nonce_drop(vt, list_ledata(list_head(&vt->nonce_uses)));
    mem_deref(vt->nonces);
    free(vt);
    return rc;
}

static void on_grace(void *arg)
{
    sb_vthread *vt = arg;
    sb_log(SB_WARN, "voice", "SIP transactions still open at shutdown: closing them");
    sip_close(vt->sip, true);
    if (!vt->sip_exited)
        re_cancel();
}

void sb_vsip_shutdown(sb_vthread *vt)
{
    if (vt->shutting_down)
        return;
    vt->shutting_down = true;
    struct le *le = list_head(&vt->calls);
    while (le != NULL) {
        sb_vcall *c = le->data;
        le = le->next;
        if (c->state == CALL_RINGING) {
            (void)sipsess_reject(c->sess, 503, "Service Unavailable", "");
            call_finish(c, SB_VOICE_CAUSE_SHUTDOWN, SB_VOICE_BY_SYSTEM, 503);
        } else {
            call_finish(c, SB_VOICE_CAUSE_SHUTDOWN, SB_VOICE_BY_SYSTEM, 0);
        }
        call_destroy(c);
    }
    dying_flush(vt); /* CANCEL or BYE to the agents' devices */
    while (!list_isempty(&vt->bindings))
        binding_remove(vt, list_ledata(list_head(&vt->bindings)), false);
    tmr_cancel(&vt->housekeeping);
    vt->reg = mem_deref(vt->reg); /* REGISTER with Expires: 0, within the grace */
    atomic_store(&vt->cnt->trunk_registered, 0);
    vt->sock = mem_deref(vt->sock);
    vt->lsnr = mem_deref(vt->lsnr);
    tmr_start(&vt->grace, SHUTDOWN_GRACE_MS, on_grace, vt);
    sip_close(vt->sip, false); /* may call on_sip_exit at once */
}

void sb_vsip_free(sb_vthread *vt)
{
    if (vt == NULL)
        return;
    tmr_cancel(&vt->grace);
    tmr_cancel(&vt->housekeeping);
    dying_flush(vt);
    if (vt->sip_exited)
        mem_deref(vt->sip); /* the reference sip's destructor took back */
    vt->dnsc = mem_deref(vt->dnsc);
    explicit_bzero(vt->opt.trunk_password, sizeof vt->opt.trunk_password);
    while (!list_isempty(&vt->failures))
        failure_drop(vt, list_ledata(list_head(&vt->failures)));
    sb_mediactx_free(vt->mx);
    mem_deref(vt->calls_by_id);
    mem_deref(vt->failures_by_ip);
    while (!list_isempty(&vt->nonce_uses))
        nonce_drop(vt, list_ledata(list_head(&vt->nonce_uses)));
    mem_deref(vt->nonces);
    free(vt->ext);
    free(vt);
}
