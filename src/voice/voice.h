/* voice.h - the voice thread: a SIP + RTP *executor* on libre/librem.
 *
 * The voice thread runs libre's own loop (re_main) and owns every SIP
 * transaction, dialog, RTP socket and media timer. It decides nothing: it
 * reports what happened (events) and does what the core thread tells it
 * (commands). Which calls to answer, what to play, whom to ring, are the
 * core's decisions (DESIGN.md §1, Asterisk-under-ARI style).
 *
 *   core -> voice: commands through libre's mqueue (the only libre call
 *                  that is safe from another thread). A full pipe (EAGAIN)
 *                  parks commands in a core-side backlog, retried in order.
 *   voice -> core: events through a mutex-protected FIFO and one uv_async;
 *                  the async callback drains the whole FIFO (sends merge).
 *
 * Calls are named by a number the voice thread gives them (call_id, never 0,
 * never reused while the process lives). A command for a call that has
 * ended is ignored: the hangup event is on its way.
 *
 * Everything here is called on the core thread. */
#ifndef SB_VOICE_H
#define SB_VOICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/cidr.h"
#include "base/sb.h"

typedef struct sb_voice sb_voice;

#define SB_VOICE_EXT_MAX  32  /* an extension or a dialled number, NUL included */
#define SB_VOICE_ADDR_MAX 160 /* a contact URI or a source address */
#define SB_VOICE_PATH_MAX 640 /* a recording's file path, NUL included */

/* ---- events: voice -> core ---- */

typedef enum sb_voice_event_kind {
    SB_VOICE_REGISTERED = 1, /* a device bound `contact` to `extension` (new or refreshed) */
    SB_VOICE_UNREGISTERED,   /* a binding ended: Expires: 0 or expiry */
    SB_VOICE_CALL_OFFERED,   /* an INVITE we may answer or reject; it rings meanwhile */
    SB_VOICE_ANSWERED,       /* 200 OK sent and ACKed: media flows */
    SB_VOICE_DTMF,           /* a digit (RFC 4733 any payload type, or SIP INFO) */
    SB_VOICE_PLAY_DONE,      /* a non-looping `play` reached its end */
    SB_VOICE_HANGUP,         /* the call is over; the last event of a call */
    SB_VOICE_LEG_RINGING,    /* an agent's device rings (180/183), once per leg */
    SB_VOICE_LEG_ANSWERED,   /* a device of the leg answered (extension set); the others were cancelled */
    SB_VOICE_LEG_FAILED,     /* every device refused or the ring timed out; sip_code says why */
    SB_VOICE_RECORDING_DONE, /* a recording ended (path, duration_ms, bytes, reason); before its call's HANGUP */
    SB_VOICE_LEG_ENDED,      /* the agent of a sb_voice_bridge_keep_caller bridge hung up; the caller stays */
} sb_voice_event_kind;

typedef enum sb_voice_party {
    SB_VOICE_BY_NONE = 0,
    SB_VOICE_BY_CALLER,   /* BYE or CANCEL from the caller */
    SB_VOICE_BY_SYSTEM,   /* our decision (hangup, reject) or a failure */
    SB_VOICE_BY_AGENT,    /* BYE from the bridged agent's device */
    SB_VOICE_BY_CUSTOMER, /* originated calls: the customer's side (BYE, or their final answer) */
} sb_voice_party;

typedef enum sb_voice_cause {
    SB_VOICE_CAUSE_NONE = 0,
    SB_VOICE_CAUSE_NORMAL,    /* BYE after an answer */
    SB_VOICE_CAUSE_CANCELLED, /* CANCEL (or BYE) before the answer */
    SB_VOICE_CAUSE_REJECTED,  /* the core sent `reject` (code in sip_code) */
    SB_VOICE_CAUSE_NO_MEDIA,  /* no RTP from the caller for no_media_seconds */
    SB_VOICE_CAUSE_TIMEOUT,   /* no decision, or no ACK, in time */
    SB_VOICE_CAUSE_CODEC,     /* no usable codec in the offer (488) */
    SB_VOICE_CAUSE_ERROR,     /* a SIP or RTP failure */
    SB_VOICE_CAUSE_SHUTDOWN,  /* the daemon is stopping */
} sb_voice_cause;

/* Why a recording ended (RECORDING_DONE). */
typedef enum sb_voice_rec_reason {
    SB_VOICE_REC_NONE = 0,
    SB_VOICE_REC_MAX_LENGTH, /* max_seconds reached */
    SB_VOICE_REC_SILENCE,    /* voicemail: silence_seconds without the caller speaking */
    SB_VOICE_REC_HANGUP,     /* the call ended (RECORDING_DONE comes before its HANGUP) */
    SB_VOICE_REC_ERROR,      /* the file could not be made or written (what was written stays) */
} sb_voice_rec_reason;

typedef struct sb_voice_event {
    sb_voice_event_kind kind;
    uint64_t call_id; /* 0 for registrar events */
    uint64_t leg_id;  /* LEG_*: the id the core gave the leg */
    int64_t at_ms;    /* wall clock when it happened (voice thread) */
    /* REGISTERED / UNREGISTERED, LEG_ANSWERED (the agent's extension) */
    char extension[SB_VOICE_EXT_MAX];
    int64_t agent_id;
    char contact[SB_VOICE_ADDR_MAX];
    /* CALL_OFFERED */
    char from[SB_VOICE_EXT_MAX];    /* caller's user part (number or extension) */
    char to[SB_VOICE_EXT_MAX];      /* dialled user part (DID or extension) */
    char source[SB_VOICE_ADDR_MAX]; /* transport source "udp:IP:PORT" */
    bool from_extension;            /* the caller is one of our extensions (see auth_invites) */
    /* DTMF */
    char digit; /* '0'..'9', '*', '#', 'A'..'D' */
    /* PLAY_DONE: the id the core gave that `play` */
    uint32_t play_id;
    /* HANGUP */
    sb_voice_cause cause;
    sb_voice_party by;
    int sip_code; /* final response we sent before an answer (404, 487...), 0 after;
                   * LEG_FAILED: 486 busy, 480 unavailable, 408 ring timeout, 404 no
                   * device registered, 603 declined, another 4xx-6xx as the device sent */
    /* RECORDING_DONE: the file (as given to `record`), its audio length and
     * size on disk, and why it ended */
    char path[SB_VOICE_PATH_MAX];
    int64_t duration_ms;
    uint64_t bytes;
    sb_voice_rec_reason reason;
} sb_voice_event;

typedef void (*sb_voice_event_fn)(const sb_voice_event *ev, void *arg);

/* ---- commands: core -> voice ---- */

/* One row of the registrar's credentials table. */
typedef struct sb_voice_extension {
    char extension[SB_VOICE_EXT_MAX];
    int64_t agent_id;
    char ha1[33]; /* hex MD5(extension:realm:password) */
} sb_voice_extension;

typedef struct sb_voice_options {
    char host[64]; /* listen address for UDP and TCP */
    int port;      /* 0: any free port (the same for UDP and TCP) */
    char realm[64];
    unsigned no_media_seconds;         /* an answered call without RTP this long is ended */
    unsigned ring_timeout_seconds;     /* no answer/reject from the core in time -> 480 */
    unsigned register_max_failures;    /* failed digests from one IP before lockout */
    unsigned register_lockout_seconds; /* how long the lockout lasts */
    unsigned invite_rate_per_second;   /* new INVITEs per source IP (0: no limit) ... */
    unsigned invite_burst;             /* ... with this many at once */
    unsigned overload_lag_ms;          /* the core this far behind (sb_voice_core_lag_ms): 503 (0: never) */
    /* An INVITE whose From user is one of our extensions claims to be that
     * agent's phone. auth_invites: it must pass the extension's digest (407,
     * then 403 for wrong credentials or another extension's, counted toward
     * the source's lockout). Off (phones that cannot answer a challenge): a
     * phone registered from the INVITE's address is believed, as below. */
    bool auth_invites;
    /* [trunk]: the provider that originated calls reach customers through
     * (trunk_host "" = none: sb_voice_originate ends at once). The password
     * stays in the voice thread's memory, never in a log. */
    char trunk_host[128]; /* "host:port" (a host name is resolved by DNS) */
    char trunk_username[64];
    char trunk_password[128];
    bool trunk_tcp;
    /* Who may call our numbers. An INVITE from an extension (authenticated,
     * or with auth_invites off registered from that address) is always
     * ours. Any other must come from an address in trunk_allow (when the
     * list is not empty: else 403) and pass digest authentication as
     * trunk_in_username (when set: else 401, then 403 and a failure
     * counted toward the source's lockout). Neither set: anyone may. */
    sb_cidr trunk_allow[SB_CIDR_LIST_MAX];
    size_t trunk_nallow;
    char trunk_in_username[64];
    char trunk_in_password[128];
    /* trunk_register: we REGISTER sip:<trunk_username>@<trunk_host> there
     * (the trunk's credentials for its challenge), asking for
     * trunk_register_expires seconds and refreshing before they run out;
     * unregistered at shutdown. An INVITE then addressed to that user is
     * for the number in its To header. */
    bool trunk_register;
    unsigned trunk_register_expires;
} sb_voice_options;

/* Starts the voice thread and waits until it listens (or failed: then
 * returns SB_EIO and *out is NULL). `on_event` runs on `loop`. */
int sb_voice_start(sb_voice **out, uv_loop_t *loop, const sb_voice_options *opt, sb_voice_event_fn on_event, void *arg);
/* The port actually bound (useful with port 0). */
int sb_voice_port(const sb_voice *v);
/* Stops the thread (a command through the mqueue: the voice loop ends its
 * calls with BYE/480, closes its sockets and returns), joins it, then closes
 * the uv_async; `done` runs on the loop once the handle is closed. Events
 * still queued are delivered before `done`. */
void sb_voice_stop(sb_voice *v, void (*done)(void *arg), void *arg);
void sb_voice_free(sb_voice *v);

/* Each returns 0 (queued) or SB_EINVAL. A full command pipe is not an
 * error: the command waits in the backlog and keeps its order. */
int sb_voice_set_extensions(sb_voice *v, const sb_voice_extension *ext, size_t n);
int sb_voice_answer(sb_voice *v, uint64_t call_id);
int sb_voice_reject(sb_voice *v, uint64_t call_id, int sip_code); /* 400..699 */
/* `play_id` comes back in its PLAY_DONE (a play replaced or stopped
 * reports nothing), so a late report is never taken for a newer play. */
int sb_voice_play(sb_voice *v, uint64_t call_id, const char *wav_path, bool loop, uint32_t play_id);
int sb_voice_stop_play(sb_voice *v, uint64_t call_id);
int sb_voice_hangup(sb_voice *v, uint64_t call_id);
/* Rings every device registered for `extension` (a "leg" of the call,
 * named by `leg_id`, unique within the call): an INVITE from the caller's
 * number offering the caller's G.711 law and telephone-event. The first
 * device to answer wins (LEG_ANSWERED) and the others are cancelled; no
 * device registered is LEG_FAILED 404 at once; no answer within
 * `timeout_s` (1..600) is LEG_FAILED 408. A leg ends with its call. */
int sb_voice_ring(sb_voice *v, uint64_t call_id, uint64_t leg_id, const char *extension, unsigned timeout_s);
/* Rings a phone outside as leg `leg_id` of the call, like sb_voice_ring:
 * an INVITE to `uri` ("sip:user@host[:port][;transport=tcp]") From
 * `caller_id`, answered with the trunk's digest credentials when
 * `via_trunk` (the core dialled a number at the [trunk] host), with none
 * otherwise (a SIP address of someone else's). Failures are the far end's
 * code (503: it could not be sent). SB_EINVAL: a bad URI or caller ID. */
int sb_voice_ring_out(sb_voice *v, uint64_t call_id, uint64_t leg_id, const char *uri, const char *caller_id,
                      bool via_trunk, unsigned timeout_s);
/* Cancels a ringing leg (nothing is reported) or hangs up an answered one. */
int sb_voice_cancel_leg(sb_voice *v, uint64_t call_id, uint64_t leg_id);
/* Answers the caller if needed, stops its prompt and relays audio between
 * the caller and the answered leg. A BYE from either side then ends both
 * (HANGUP by caller or by agent). */
int sb_voice_bridge(sb_voice *v, uint64_t call_id, uint64_t leg_id);
/* A bridge after which the caller stays when the agent hangs up first
 * (the post-call rating): the agent's BYE ends the relay, their leg and the
 * call recording (RECORDING_DONE hangup), and is LEG_ENDED (by agent), not
 * HANGUP; the caller's call goes on unbridged, as before the bridge (play,
 * digits, in-band detection, the no-media watch) until sb_voice_hangup or
 * the caller's BYE. A BYE from the caller ends both as sb_voice_bridge's. */
int sb_voice_bridge_keep_caller(sb_voice *v, uint64_t call_id, uint64_t leg_id);

typedef enum sb_voice_rec_mode {
    SB_VOICE_REC_CALL = 1,  /* stereo: the caller left, the bridged agent right, until the call ends */
    SB_VOICE_REC_VOICEMAIL, /* mono: the caller, until max_seconds or silence_seconds of silence */
} sb_voice_rec_mode;

typedef struct sb_voice_record_opts {
    sb_voice_rec_mode mode;
    unsigned max_seconds;     /* reached: RECORDING_DONE max_length; 0: no limit */
    unsigned silence_seconds; /* VOICEMAIL: this long without speech after the caller spoke,
                               * or from the start if they never do: RECORDING_DONE silence;
                               * 0: off */
} sb_voice_record_opts;

/* Records the call's audio into a new WAV file at `path` (8 kHz 16-bit PCM;
 * missing directories are made 0750; an existing file is never replaced:
 * RECORDING_DONE error). Received RTP is decoded and placed by its
 * timestamps on a 20 ms clock, so lost packets and pauses become silence
 * and the two channels stay aligned; the file is written about once a
 * second and fsynced when it ends. The voice thread only reports: at
 * max_length or silence the call goes on until the core decides. One
 * recording per call at a time (another `record` is RECORDING_DONE error
 * for its own path). SB_EINVAL: bad options or a path too long. */
int sb_voice_record(sb_voice *v, uint64_t call_id, const char *path, const sb_voice_record_opts *o);

/* ---- originated calls (click-to-call, call-back) ----
 *
 * A call with no inbound caller: the voice thread rings the agent's
 * extension first (leg SB_VOICE_LEG_AGENT, every registered device, as
 * sb_voice_ring does; the phone shows the customer's number and name as
 * From), and once a device answers it dials the customer through the
 * trunk (leg SB_VOICE_LEG_CUSTOMER: INVITE sip:<number>@<trunk host>,
 * From the caller ID, digest authentication answered with the trunk's
 * credentials on 401/407), then relays audio between the two as a bridge
 * does (G.711, converted when the laws differ); while the customer's
 * phone rings the agent hears `ringback`. Events: LEG_RINGING,
 * LEG_ANSWERED, LEG_FAILED (sip_code) with those leg ids, DTMF from the
 * customer, RECORDING_DONE, and HANGUP last: by AGENT (their BYE, or their
 * phone refused: sip_code), by CUSTOMER (their BYE, or their final answer:
 * 486 busy, 480/408 no answer... in sip_code), by SYSTEM (sb_voice_hangup,
 * the customer's ring timeout 408, no media, no trunk 503, shutdown).
 * sb_voice_hangup ends it at any stage (CANCEL or BYE to both legs);
 * sb_voice_record records the customer left and the agent right.
 *
 * The core chooses the call id, with SB_VOICE_ORIGINATE_BIT set so that it
 * never meets the ids the voice thread gives inbound calls (a counter from
 * 1). An id already in use is ignored. */
#define SB_VOICE_ORIGINATE_BIT (1ull << 62)
#define SB_VOICE_LEG_AGENT     1
#define SB_VOICE_LEG_CUSTOMER  2

typedef struct sb_voice_originate_opts {
    char extension[SB_VOICE_EXT_MAX]; /* the agent's, rung first */
    unsigned agent_timeout_s;         /* 1..600: their phone rings this long */
    char number[SB_VOICE_EXT_MAX];    /* the user part dialled at the trunk */
    char caller_id[SB_VOICE_EXT_MAX]; /* the From user part the customer sees */
    char display[SB_VOICE_EXT_MAX];   /* From user part on the agent's phone: the customer's number */
    char display_name[64];            /* and its display name ("" = none); quotes are dropped */
    unsigned customer_timeout_s;      /* 1..600: the customer's phone rings this long */
    char ringback[SB_VOICE_PATH_MAX]; /* a WAV the agent hears (looped) meanwhile; "" = silence */
} sb_voice_originate_opts;

/* 0 (queued) or SB_EINVAL: no originate bit, or a field empty, invalid as a
 * SIP user part, or out of range. */
int sb_voice_originate(sb_voice *v, uint64_t call_id, const sb_voice_originate_opts *o);

/* Counters for /metrics (Prometheus text appended to b). NULL-safe. */
void sb_voice_metrics_text(const sb_voice *v, sb_buf *b);

const char *sb_voice_cause_name(sb_voice_cause c);
const char *sb_voice_party_name(sb_voice_party p);
/* "max_length", "silence", "hangup", "error" ("none") */
const char *sb_voice_rec_reason_name(sb_voice_rec_reason r);

/* HA1 for SIP digest: hex MD5("ext:realm:password") into out (33 bytes).
 * MD5 only because RFC 2617/3261 digest requires it. */
void sb_voice_ha1(const char *extension, const char *realm, const char *password, char out[33]);

#endif
