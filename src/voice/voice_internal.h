/* voice_internal.h - what the voice thread's files (voice.c, sip.c, media.c,
 * glue.c) share. Everything declared here is called on the voice thread,
 * except sb_voice_post (any thread) and the counters (atomics); media.c
 * runs the RTP on a thread of its own behind the sb_media_* calls, and
 * calls the sb_media_hooks back on the voice thread. libre's headers
 * need HAVE_INTTYPES_H and HAVE_STDBOOL_H (CMakeLists.txt): without the
 * second, `bool` silently becomes `signed char` (DESIGN.md §5). */
#ifndef SB_VOICE_INTERNAL_H
#define SB_VOICE_INTERNAL_H

#include <re.h>
#include <rem.h>
#include <stdatomic.h>

#include "voice/voice.h"

/* Counters shared with the core (read for /metrics). */
typedef struct sb_voice_counters {
    atomic_uint_fast64_t calls_offered;
    atomic_uint_fast64_t calls_answered;
    atomic_uint_fast64_t calls_active;
    atomic_uint_fast64_t rtp_packets_sent;
    atomic_uint_fast64_t rtp_packets_received;
    atomic_uint_fast64_t dtmf_digits;
    atomic_uint_fast64_t dtmf_inband;   /* ...of them heard in the audio (no telephone-event) */
    atomic_uint_fast64_t registrations; /* bindings now */
    atomic_uint_fast64_t register_failures;
    atomic_uint_fast64_t register_lockouts;
    atomic_uint_fast64_t sip_rejected; /* final 4xx-6xx we sent to INVITEs */
    atomic_uint_fast64_t no_media_hangups;
    atomic_uint_fast64_t legs_invited; /* INVITEs sent to agents' devices */
    atomic_uint_fast64_t legs_answered;
    atomic_uint_fast64_t rtp_relayed_to_agent;    /* caller -> agent */
    atomic_uint_fast64_t rtp_relayed_to_caller;   /* agent -> caller */
    atomic_uint_fast64_t rtp_transcoded;          /* relayed packets converted PCMU <-> PCMA */
    atomic_uint_fast64_t invites_limited;         /* INVITEs refused by the per-source rate limit */
    atomic_uint_fast64_t invites_refused;         /* INVITEs from outside refused: address or digest */
    atomic_uint_fast64_t invites_shed;            /* INVITEs refused (503) while the core lagged */
    atomic_uint_fast64_t reinvites;               /* re-INVITEs answered: hold, resume, new address or law */
    atomic_uint_fast64_t legs_outside;            /* legs rung outside: numbers and SIP addresses */
    atomic_uint_fast64_t dtmf_relayed;            /* RFC 4733 packets relayed across a bridge */
    atomic_uint_fast64_t trunk_registered;        /* 1 while our registration at the trunk holds */
    atomic_uint_fast64_t trunk_register_failures; /* REGISTERs at the trunk that failed */
    atomic_uint_fast64_t recordings_started;      /* files opened */
    atomic_uint_fast64_t recordings_finished;     /* ended at max_length, silence or hangup */
    atomic_uint_fast64_t recordings_failed;       /* not opened, or a write failed */
    atomic_uint_fast64_t trunk_calls;             /* originated calls dialled through the trunk */
    atomic_uint_fast64_t trunk_answered;          /* ...that the customer answered */
    atomic_uint_fast64_t early_media;             /* ...whose early media (183 with SDP) reached the agent */
} sb_voice_counters;

typedef enum sb_vcmd_kind {
    SB_VCMD_STOP = 1,
    SB_VCMD_SET_EXTENSIONS,
    SB_VCMD_ANSWER,
    SB_VCMD_REJECT,
    SB_VCMD_PLAY,
    SB_VCMD_STOP_PLAY,
    SB_VCMD_HANGUP,
    SB_VCMD_RING,
    SB_VCMD_RING_OUT,
    SB_VCMD_CANCEL_LEG,
    SB_VCMD_BRIDGE,
    SB_VCMD_RECORD,
    SB_VCMD_ORIGINATE,
} sb_vcmd_kind;

/* A command, malloc'ed on the core thread, freed on the voice thread. */
typedef struct sb_vcmd {
    sb_vcmd_kind kind;
    uint64_t call_id;
    uint64_t leg_id;                  /* RING, CANCEL_LEG, BRIDGE */
    char extension[SB_VOICE_EXT_MAX]; /* RING; RING_OUT: the caller ID */
    unsigned timeout_s;               /* RING, RING_OUT */
    int code;
    bool loop;
    bool via_trunk;                /* RING_OUT */
    bool keep_caller;              /* BRIDGE: the agent's BYE is LEG_ENDED, not the end of the call */
    char *path;                    /* PLAY, RECORD; RING_OUT: the URI */
    uint32_t play_id;              /* PLAY */
    sb_voice_record_opts rec;      /* RECORD */
    sb_voice_originate_opts *orig; /* ORIGINATE (malloc'ed) */
    sb_voice_extension *ext;       /* SET_EXTENSIONS */
    size_t n;
    struct sb_vcmd *next; /* core-side backlog */
} sb_vcmd;

void sb_vcmd_free(sb_vcmd *c);

typedef struct sb_vthread sb_vthread;

/* ---- voice.c ---- */
/* Queues an event for the core (any thread). */
void sb_voice_post(sb_voice *v, const sb_voice_event *ev);
/* How far behind the core is (any thread): the age of the oldest event
 * it has not taken yet, or of the last one it handled if that was within
 * the last second, whichever is more. The voice thread sheds new calls
 * when it grows beyond [sip] overload_lag_ms. */
uint64_t sb_voice_core_lag_ms(sb_voice *v);
sb_voice_counters *sb_voice_counters_of(sb_voice *v);

/* ---- sip.c: transports, registrar, sessions ---- */
int sb_vsip_open(sb_vthread **out, sb_voice *v, const sb_voice_options *opt, int *port);
/* Ends every call and closes the SIP stack; calls `done` (then re_cancel
 * is safe) once the last transaction is over or after a grace period. */
void sb_vsip_shutdown(sb_vthread *vt);
void sb_vsip_free(sb_vthread *vt);
void sb_vsip_command(sb_vthread *vt, sb_vcmd *cmd);

/* ---- media.c: RTP (its own thread), the shared tick, prompts, DTMF, recordings ---- */
typedef struct sb_vcall sb_vcall;
typedef struct sb_media sb_media;       /* per call */
typedef struct sb_mediactx sb_mediactx; /* per voice thread: the media thread, prompt cache */

/* `owner` is what the media was made for: a call or an agent's leg
 * (both start with a magic number, sip.c tells them apart). */
typedef struct sb_media_hooks {
    void (*dtmf)(void *owner, char digit);
    void (*play_done)(void *owner, bool failed);
    void (*no_media)(void *owner);
    /* a recording ended (never called from inside sb_media_free) */
    void (*recording_done)(void *owner, const char *path, int64_t duration_ms, uint64_t bytes,
                           sb_voice_rec_reason reason);
} sb_media_hooks;

int sb_mediactx_new(sb_mediactx **out, sb_voice_counters *counters, const sb_media_hooks *hooks,
                    unsigned no_media_seconds);
void sb_mediactx_free(sb_mediactx *mx);
/* How late the 20 ms media tick runs, averaged over its last ticks: the
 * media thread's lag; 0 while no media is active. */
uint64_t sb_mediactx_lag_ms(const sb_mediactx *mx);
/* Opens an RTP socket on `ip` and negotiates the offer in `msg`: 0, or
 * SB_EINVAL when the offer has no usable codec (-> 488), SB_EIO. An
 * INVITE without SDP (a late offer) gets our offer in the 200 and its
 * answer from the ACK (sb_media_take_answer). */
int sb_media_new(sb_media **out, sb_mediactx *mx, void *owner, const struct sa *ip, const struct sip_msg *msg);
/* For a call we place: an RTP socket on `ip` and an offer of one G.711 law
 * (`pt` 0 or 8, the caller's; -1: both, PCMA first) and telephone-event. */
int sb_media_new_offer(sb_media **out, sb_mediactx *mx, void *owner, const struct sa *ip, int pt);
int sb_media_offer_sdp(sb_media *m, struct mbuf **out);
/* Reads the answer to our offer: 0, or SB_EINVAL when it has no G.711. */
int sb_media_take_answer(sb_media *m, const struct sip_msg *msg);
/* A re-INVITE's offer (or none: then ours, answered in the ACK through
 * sb_media_take_answer): *answer for the 200. SB_EINVAL: no usable codec
 * or a bad SDP (-> 488), the media unchanged but for the parsed SDP. */
int sb_media_reoffer(sb_media *m, const struct sip_msg *msg, struct mbuf **answer);
/* Whether our SDP in the last 200 was an offer still waiting for its answer. */
bool sb_media_awaits_answer(const sb_media *m);
/* Whether the no-media watchdog applies (default on; turning it on starts
 * its wait over). */
void sb_media_watch(sb_media *m, bool on);
/* Whether the peer has put this media on hold (we do not send, or it does not). */
bool sb_media_held(const sb_media *m);
/* The negotiated audio payload type (0 PCMU, 8 PCMA). */
int sb_media_pt(const sb_media *m);
/* Relays audio both ways between two media (stops any prompt on both);
 * unbridge (or freeing either) ends it. */
void sb_media_bridge(sb_media *caller, sb_media *agent);
void sb_media_unbridge(sb_media *m);
/* The SDP for our 200 (mbuf, caller derefs): the answer, or our offer
 * after a late-offer INVITE. */
int sb_media_answer_sdp(sb_media *m, struct mbuf **out);
/* Starts sending and watching for media (after the answer). */
void sb_media_start(sb_media *m);
int sb_media_play(sb_media *m, const char *path, bool loop);
void sb_media_stop_play(sb_media *m);
/* Starts recording a caller's media (and, CALL mode, its bridged peer's,
 * on the right channel) into a new WAV file, made by the writer thread: a
 * file it cannot make ends the recording at the next tick with
 * recording_done(error). A recording running already: the new one is
 * refused with recording_done(error) at once. */
void sb_media_record(sb_media *m, const char *path, const sb_voice_record_opts *o);
/* Ends the recording (if any) with `reason`: what was received goes to the
 * file, recording_done is reported (and one the tick found just before),
 * the file is fsynced and closed on the writer thread. Call it before
 * freeing a call's media. */
void sb_media_record_stop(sb_media *m, sb_voice_rec_reason reason);
/* A recording still running is closed unreported (call record_stop). */
void sb_media_free(sb_media *m);

/* ---- glue.c: parsing of our own (fuzzed: tests/fuzz/fuzz_sip.c) ---- */
/* A user part of a URI we accept as an extension or a number:
 * 1..31 of [0-9A-Za-z+*#._-]. */
bool sb_voice_user_valid(const char *p, size_t len);
/* Copies a valid user part into out (SB_VOICE_EXT_MAX); false if invalid. */
bool sb_voice_user_copy(const struct pl *pl, char out[SB_VOICE_EXT_MAX]);
/* SIP INFO bodies: application/dtmf-relay ("Signal=5\r\nDuration=160") and
 * application/dtmf ("5"). 0 with *digit, or SB_EINVAL. */
int sb_voice_dtmf_relay_parse(const char *body, size_t len, bool relay, char *digit);
/* Digest nonces: "<16 hex expiry ms><16 hex seq><32 hex HMAC(secret, both)>".
 * `seq` makes two nonces of the same millisecond differ: a digest's use is
 * remembered per nonce (replays), so two phones must never share one. */
#define SB_VOICE_NONCE_LEN 64
void sb_voice_nonce_make(const char *secret, uint64_t expires_ms, uint64_t seq, char out[SB_VOICE_NONCE_LEN + 1]);
/* 0 valid, 1 valid but expired (stale), SB_EINVAL forged or malformed. */
int sb_voice_nonce_check(const char *secret, const char *nonce, size_t len, uint64_t now_ms);
/* What an INVITE asks for: caller and callee user parts; SB_EINVAL (400)
 * when they are missing or not valid user parts. */
int sb_voice_invite_parties(const struct sip_msg *msg, char from[SB_VOICE_EXT_MAX], char to[SB_VOICE_EXT_MAX]);
/* Adds our formats to `m` (PCMU, PCMA, telephone-event without a fixed
 * payload type so that decoding an offer adopts the peer's). */
int sb_voice_sdp_formats(struct sdp_media *m);
/* After sdp_decode of an offer: the audio payload type to send (0 or 8,
 * the peer's first preference we support) and the peer's telephone-event
 * payload type (-1 if none). SB_EINVAL when no G.711 is offered or the
 * media has no address. */
int sb_voice_sdp_choose(const struct sdp_media *m, bool need_addr, int *audio_pt, int *telev_pt);
/* An RTP packet's fixed header (RFC 3550) and where its payload is, past
 * the CSRCs and a header extension, without the padding. */
typedef struct sb_rtp_pkt {
    uint8_t pt;
    bool marker;
    uint16_t seq;
    uint32_t ts;
    uint32_t ssrc;
    size_t off, len; /* the payload: p + off, len bytes */
} sb_rtp_pkt;
/* 0 with *out, or SB_EINVAL (not version 2, shorter than its header says,
 * bad padding). */
int sb_voice_rtp_parse(const uint8_t *p, size_t n, sb_rtp_pkt *out);

#endif
