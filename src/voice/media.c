/* media.c - RTP for the voice thread: one RTP socket per call, G.711
 * (PCMU/PCMA) encoded on the fly from 8 kHz mono 16-bit WAV prompts, RFC
 * 4733 telephone-events in any payload type the peer offered, and one
 * shared 20 ms ticker for every call (libre keeps timers in a sorted list:
 * one timer per call cost twice the CPU, DESIGN.md §5). The same ticker
 * watches for calls whose media stopped. Prompts are read once and kept
 * in memory (restart to pick up regenerated files).
 *
 * Two media may be bridged (a caller and an agent's leg): each packet of
 * the one's audio payload type is sent on by the other's socket, as it is
 * when both use the same G.711 law (no decoding), converted byte by byte
 * (PCMU <-> PCMA) otherwise. RFC 4733 events are relayed too, renumbered
 * to the other side's telephone-event payload type when it has one (they
 * still reach the core as digits).
 *
 * A caller's media may carry a recording (src/voice/wav.c writes it): each
 * received audio packet, the caller's and (stereo) the bridged agent's, is
 * decoded into a one-second ring per channel at the place its RTP
 * timestamp gives it, and the ticker moves the audio from the rings to the
 * file 200 ms behind real time. So late packets up to 200 ms still land in
 * place, lost ones and pauses become silence, and both channels follow one
 * clock. The file is written about once a second; its fsync and close run
 * on a helper thread, so a slow disk never stalls the media of every call.
 *
 * A caller whose offer has no telephone-event (an old gateway, a phone set
 * to in-band) sends its keys as tones in the audio: its decoded audio goes
 * through the in-band detector (src/voice/inband.c), whose digits take the
 * same `dtmf` hook as RFC 4733's. Only for such callers: when the peer
 * offered telephone-event we rely on it, since a phone that sends events
 * usually leaves the tones in the audio too (each key would count twice)
 * and decoding every call's audio would cost CPU for nothing. And only
 * while the call is not bridged (the IVR and the queue wait for keys; an
 * agent's conversation does not), so the cost stays small.
 *
 * Hold, late offers. A re-INVITE with an offer (sb_media_reoffer) may move
 * the peer's address, switch the law, or change the direction: "sendonly"
 * or "inactive" (hold) from the peer, and we neither send to a peer that
 * does not receive nor wait for media from one that does not send. Held
 * media is ended only after HOLD_MAX_MS; resuming starts the no-media
 * watchdog over. An INVITE or re-INVITE without SDP gets our offer (both
 * laws, telephone-event 101) in the 200 and the answer in the ACK
 * (sb_media_take_answer). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "base/clock.h"
#include "base/log.h"
#include "voice/inband.h"
#include "voice/voice_internal.h"
#include "voice/wav.h"

#define FRAME_MS       20
#define FRAME_SAMPLES  160
#define RTP_PORT_MIN   10000
#define RTP_PORT_MAX   60000
#define PROMPT_MAX     (8000 * 600) /* samples: ten minutes */
#define MAX_CATCHUP    5            /* frames sent at once after a late tick */
#define MEDIA_CHECK_MS 1000
#define REC_RING       8000              /* samples a channel holds ahead of the file: one second */
#define REC_DELAY      1600              /* the file follows real time 200 ms behind: a packet that late still fits */
#define REC_MAX_AUDIO  1600              /* bytes of G.711 in one packet we record (200 ms) */
#define REC_LATE_MAX   5                 /* late packets in a row that restart a sender's timeline */
#define HOLD_MAX_MS    (2 * 3600 * 1000) /* a call on hold (the peer sends nothing) ends after this */

typedef struct sb_prompt {
    struct le le;
    char *path;
    int16_t *pcm;
    size_t n;
} sb_prompt;

/* One channel of a recording: where the sender's RTP timestamps fall on
 * the recording's sample clock, and the audio not yet in the file. */
typedef struct rec_chan {
    bool synced;
    uint32_t base_ts;  /* a timestamp of this sender... */
    uint64_t base_idx; /* ...and the recording's sample it is */
    uint64_t high;     /* one past the last sample placed */
    unsigned late;     /* packets in a row that came too late */
    int16_t ring[REC_RING];
} rec_chan;

typedef struct sb_recorder {
    sb_wav_writer *wav;
    char *path;
    sb_voice_record_opts opt;
    unsigned channels;
    uint64_t start_ms; /* monotonic: sample 0 */
    uint64_t pos;      /* samples (per channel) handed to the file */
    sb_wav_silence silence;
    rec_chan ch[2];
} sb_recorder;

/* A finished file waiting for its fsync and close on the helper thread. */
typedef struct rec_closing {
    sb_wav_writer *wav;
    char *path;
    struct rec_closing *next;
} rec_closing;

struct sb_mediactx {
    sb_voice_counters *cnt;
    sb_media_hooks hooks;
    uint64_t no_media_ms;
    struct list active; /* sb_media that started */
    struct tmr ticker;
    uint64_t next_ms;
    uint64_t next_check_ms;
    uint64_t late_ms, late_at_ms; /* how late the ticks run (a moving average over ~8), when last: this thread's lag */
    struct list prompts;
    struct mbuf *mb;
    /* the helper thread that fsyncs and closes finished recordings */
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    pthread_t syncer;
    bool syncer_started, syncer_stop;
    rec_closing *sync_head, *sync_tail;
};

struct sb_media {
    struct le le;
    sb_mediactx *mx;
    void *owner;    /* a call or an agent's leg (sip.c tells them by magic) */
    sb_media *peer; /* bridged: where our peer's audio goes */
    bool to_agent;  /* bridged: this side is the caller's */
    bool relay_marker;
    struct sdp_session *sdp;
    struct sdp_media *sdpm;
    struct rtp_sock *rtp;
    struct telev *telev;
    int pt, te_pt;
    struct sa raddr;
    bool started;
    uint32_t ts;
    bool marker;
    uint64_t last_rx_ms;
    const sb_prompt *prompt;
    size_t pos;
    bool loop;
    bool te_reported;
    bool no_media_reported;
    sb_recorder *rec;  /* a caller's media: the recording running */
    sb_inband *inband; /* a caller without telephone-event: its keys are tones */
    /* the offer/answer exchanges after the first (see "Hold, late offers") */
    bool late;        /* our SDP was the offer; the answer comes in the ACK */
    bool want_inband; /* a caller: listen for tones when the answer has no telephone-event */
    bool can_send;    /* the direction agreed lets us send, to an address the peer gave */
    bool expect_rx;   /* ... and lets the peer send: the no-media watchdog applies */
    uint64_t held_ms; /* since when the peer sends nothing (expect_rx false) */
    bool unwatched;   /* early media: no no-media watchdog until the answer */
};

int sb_mediactx_new(sb_mediactx **out, sb_voice_counters *counters, const sb_media_hooks *hooks,
                    unsigned no_media_seconds)
{
    sb_mediactx *mx = sb_xcalloc(1, sizeof *mx);
    mx->cnt = counters;
    mx->hooks = *hooks;
    mx->no_media_ms = (uint64_t)no_media_seconds * 1000;
    list_init(&mx->active);
    list_init(&mx->prompts);
    tmr_init(&mx->ticker);
    mx->mb = mbuf_alloc(RTP_HEADER_SIZE + FRAME_SAMPLES);
    if (mx->mb == NULL) {
        free(mx);
        return SB_ENOMEM;
    }
    pthread_mutex_init(&mx->sync_mu, NULL);
    pthread_cond_init(&mx->sync_cv, NULL);
    *out = mx;
    return 0;
}

void sb_mediactx_free(sb_mediactx *mx)
{
    if (mx == NULL)
        return;
    SB_ASSERT(list_isempty(&mx->active));
    tmr_cancel(&mx->ticker);
    if (mx->syncer_started) { /* it drains its queue first */
        pthread_mutex_lock(&mx->sync_mu);
        mx->syncer_stop = true;
        pthread_cond_signal(&mx->sync_cv);
        pthread_mutex_unlock(&mx->sync_mu);
        pthread_join(mx->syncer, NULL);
    }
    pthread_mutex_destroy(&mx->sync_mu);
    pthread_cond_destroy(&mx->sync_cv);
    struct le *le = list_head(&mx->prompts);
    while (le != NULL) {
        sb_prompt *p = le->data;
        le = le->next;
        list_unlink(&p->le);
        free(p->path);
        free(p->pcm);
        free(p);
    }
    mem_deref(mx->mb);
    free(mx);
}

/* ---- prompts ---- */

static const sb_prompt *prompt_get(sb_mediactx *mx, const char *path)
{
    for (struct le *le = list_head(&mx->prompts); le != NULL; le = le->next) {
        sb_prompt *p = le->data;
        if (strcmp(p->path, path) == 0)
            return p;
    }
    struct aufile *af = NULL;
    struct aufile_prm prm;
    memset(&prm, 0, sizeof prm);
    int err = aufile_open(&af, &prm, path, AUFILE_READ);
    if (err != 0) {
        sb_log(SB_WARN, "voice", "cannot open prompt %s err=%d", path, err);
        return NULL;
    }
    if (prm.srate != 8000 || prm.channels != 1 || prm.fmt != AUFMT_S16LE) {
        sb_log(SB_WARN, "voice", "prompt %s is not 8 kHz mono 16-bit (rate=%u channels=%u)", path, prm.srate,
               prm.channels);
        mem_deref(af);
        return NULL;
    }
    sb_prompt *p = sb_xcalloc(1, sizeof *p);
    size_t cap = 8000;
    p->pcm = sb_xmalloc(cap * sizeof(int16_t));
    for (;;) {
        if (p->n == cap) {
            if (cap >= PROMPT_MAX)
                break;
            cap *= 2;
            p->pcm = sb_xrealloc(p->pcm, cap * sizeof(int16_t));
        }
        size_t sz = (cap - p->n) * sizeof(int16_t);
        err = aufile_read(af, (uint8_t *)(p->pcm + p->n), &sz);
        if (err != 0 || sz == 0)
            break;
        p->n += sz / sizeof(int16_t);
    }
    mem_deref(af);
    if (p->n == 0) {
        sb_log(SB_WARN, "voice", "prompt %s is empty", path);
        free(p->pcm);
        free(p);
        return NULL;
    }
    p->path = sb_xstrdup(path);
    list_append(&mx->prompts, &p->le, p);
    return p;
}

/* ---- recordings ---- */

static void *syncer_main(void *arg)
{
    sb_mediactx *mx = arg;
    pthread_mutex_lock(&mx->sync_mu);
    for (;;) {
        while (mx->sync_head == NULL && !mx->syncer_stop)
            pthread_cond_wait(&mx->sync_cv, &mx->sync_mu);
        rec_closing *c = mx->sync_head;
        if (c == NULL)
            break; /* stopping, and nothing left */
        mx->sync_head = c->next;
        if (mx->sync_head == NULL)
            mx->sync_tail = NULL;
        pthread_mutex_unlock(&mx->sync_mu);
        if (sb_wav_close(c->wav, true) != 0)
            sb_log(SB_WARN, "voice", "recording %s: fsync or close failed errno=%d", c->path, errno);
        free(c->path);
        free(c);
        pthread_mutex_lock(&mx->sync_mu);
    }
    pthread_mutex_unlock(&mx->sync_mu);
    return NULL;
}

/* Hands a finished file to the helper thread for fsync and close (done
 * here when the thread cannot be started). */
static void sync_later(sb_mediactx *mx, sb_wav_writer *wav, const char *path)
{
    if (!mx->syncer_started) {
        if (pthread_create(&mx->syncer, NULL, syncer_main, mx) != 0) {
            sb_log(SB_WARN, "voice", "no fsync thread: closing recording %s here", path);
            if (sb_wav_close(wav, true) != 0)
                sb_log(SB_WARN, "voice", "recording %s: fsync or close failed: %s", path, strerror(errno));
            return;
        }
        mx->syncer_started = true;
    }
    rec_closing *c = sb_xcalloc(1, sizeof *c);
    c->wav = wav;
    c->path = sb_xstrdup(path);
    pthread_mutex_lock(&mx->sync_mu);
    if (mx->sync_tail != NULL)
        mx->sync_tail->next = c;
    else
        mx->sync_head = c;
    mx->sync_tail = c;
    pthread_cond_signal(&mx->sync_cv);
    pthread_mutex_unlock(&mx->sync_mu);
}

static uint64_t rec_live(const sb_recorder *r, uint64_t now)
{
    return now > r->start_ms ? (now - r->start_ms) * (SB_WAV_RATE / 1000) : 0;
}

static uint64_t rec_max_samples(const sb_recorder *r)
{
    return r->opt.max_seconds > 0 ? (uint64_t)r->opt.max_seconds * SB_WAV_RATE : UINT64_MAX;
}

/* Moves the audio before sample `upto` (at most max_seconds) from the
 * rings to the file; what nobody sent is silence. Buffered in the writer:
 * a write to disk about once a second. A failed write stops it (the
 * writer's error sticks and rec_check reports it). */
static void rec_advance(sb_recorder *r, uint64_t upto)
{
    uint64_t max = rec_max_samples(r);
    if (upto > max)
        upto = max;
    int16_t frames[2 * FRAME_SAMPLES];
    while (r->pos < upto) {
        size_t n = upto - r->pos < FRAME_SAMPLES ? (size_t)(upto - r->pos) : FRAME_SAMPLES;
        for (size_t i = 0; i < n; i++) {
            size_t slot = (size_t)((r->pos + i) % REC_RING);
            for (unsigned k = 0; k < r->channels; k++) {
                frames[i * r->channels + k] = r->ch[k].ring[slot];
                r->ch[k].ring[slot] = 0;
            }
        }
        if (sb_wav_write(r->wav, frames, n) != 0)
            return;
        sb_wav_silence_feed(&r->silence, frames, n, r->channels); /* the caller's channel */
        r->pos += n;
    }
}

/* Places one packet's audio on channel `k` where its RTP timestamp says.
 * A sender's first packet, and one whose timestamp left the window (a new
 * stream, a jump), starts the sender's timeline again at the present. A
 * packet whose place is in the file already is dropped; several in a row
 * mean the sender's clock runs slower than ours: its timeline starts again
 * too (a sender running fast comes back through the jump rule). */
static void rec_put(sb_recorder *r, unsigned k, int pt, uint32_t ts, const uint8_t *p, size_t n, uint64_t now)
{
    if (n == 0 || n > REC_MAX_AUDIO)
        return;
    uint64_t live = rec_live(r, now);
    rec_chan *ch = &r->ch[k];
    int64_t idx = ch->synced ? (int64_t)ch->base_idx + (int32_t)(ts - ch->base_ts) : 0;
    bool resync = !ch->synced || idx > (int64_t)(live + REC_DELAY) || (int64_t)r->pos - idx >= REC_RING;
    if (!resync && idx < (int64_t)r->pos) {
        if (++ch->late < REC_LATE_MAX)
            return;
        resync = true;
    }
    if (resync) {
        ch->synced = true;
        ch->base_ts = ts;
        ch->base_idx = live > r->pos ? live : r->pos;
        idx = (int64_t)ch->base_idx;
    }
    ch->late = 0;
    if ((uint64_t)idx + n > r->pos + REC_RING) /* the ticker fell behind: make room */
        rec_advance(r, (uint64_t)idx + n - REC_RING);
    if ((uint64_t)idx + n > r->pos + REC_RING)
        return; /* the file cannot keep up (a failed write) */
    int16_t pcm[REC_MAX_AUDIO];
    sb_g711_decode(pt, p, n, pcm);
    for (size_t i = 0; i < n; i++)
        ch->ring[(size_t)(((uint64_t)idx + i) % REC_RING)] = pcm[i];
    if ((uint64_t)idx + n > ch->high)
        ch->high = (uint64_t)idx + n;
}

/* Why the recording should end now (SB_VOICE_REC_NONE: it goes on). */
static sb_voice_rec_reason rec_check(const sb_recorder *r)
{
    if (sb_wav_status(r->wav) != 0)
        return SB_VOICE_REC_ERROR;
    if (r->pos >= rec_max_samples(r))
        return SB_VOICE_REC_MAX_LENGTH;
    if (r->opt.mode == SB_VOICE_REC_VOICEMAIL && r->opt.silence_seconds > 0 &&
        sb_wav_silence_ms(&r->silence) >= (uint64_t)r->opt.silence_seconds * 1000)
        return SB_VOICE_REC_SILENCE;
    return SB_VOICE_REC_NONE;
}

static void report_recording(sb_media *m, const char *path, int64_t duration_ms, uint64_t bytes,
                             sb_voice_rec_reason reason)
{
    sb_mediactx *mx = m->mx;
    atomic_fetch_add(reason == SB_VOICE_REC_ERROR ? &mx->cnt->recordings_failed : &mx->cnt->recordings_finished, 1);
    mx->hooks.recording_done(m->owner, path, duration_ms, bytes, reason);
}

/* Ends the recording: at a hangup what was received goes to the file too;
 * then the sizes are patched (quick) and the fsync and close go to the
 * helper thread. `report` false: freeing, nobody to tell. */
static void rec_end(sb_media *m, sb_voice_rec_reason reason, bool report)
{
    sb_recorder *r = m->rec;
    m->rec = NULL;
    if (reason == SB_VOICE_REC_HANGUP) {
        uint64_t upto = rec_live(r, sb_clock_mono_ms());
        upto = upto > REC_DELAY ? upto - REC_DELAY : 0;
        for (unsigned k = 0; k < r->channels; k++)
            if (r->ch[k].high > upto)
                upto = r->ch[k].high;
        rec_advance(r, upto);
    }
    if (sb_wav_finish(r->wav) != 0)
        reason = SB_VOICE_REC_ERROR;
    int64_t duration_ms = (int64_t)(sb_wav_frames(r->wav) * 1000 / SB_WAV_RATE);
    uint64_t bytes = sb_wav_bytes(r->wav);
    if (reason == SB_VOICE_REC_ERROR)
        sb_log(SB_WARN, "voice", "recording %s failed after %lld ms: %s", r->path, (long long)duration_ms,
               strerror(sb_wav_errno(r->wav)));
    else
        sb_log(SB_INFO, "voice", "recording %s done ms=%lld bytes=%llu reason=%s", r->path, (long long)duration_ms,
               (unsigned long long)bytes, sb_voice_rec_reason_name(reason));
    sync_later(m->mx, r->wav, r->path);
    if (report)
        report_recording(m, r->path, duration_ms, bytes, reason);
    free(r->path);
    free(r);
}

void sb_media_record(sb_media *m, const char *path, const sb_voice_record_opts *o)
{
    if (m->rec != NULL) {
        sb_log(SB_WARN, "voice", "recording %s refused: %s is running", path, m->rec->path);
        report_recording(m, path, 0, 0, SB_VOICE_REC_ERROR);
        return;
    }
    unsigned channels = o->mode == SB_VOICE_REC_CALL ? 2 : 1;
    sb_wav_writer *wav = NULL;
    int rc = sb_wav_open(&wav, path, channels, NULL);
    if (rc != 0) {
        sb_log(SB_WARN, "voice", "cannot create recording %s rc=%d: %s", path, rc, strerror(errno));
        report_recording(m, path, 0, 0, SB_VOICE_REC_ERROR);
        return;
    }
    sb_recorder *r = sb_xcalloc(1, sizeof *r);
    r->wav = wav;
    r->path = sb_xstrdup(path);
    r->opt = *o;
    r->channels = channels;
    r->start_ms = sb_clock_mono_ms();
    sb_wav_silence_init(&r->silence, SB_WAV_SILENCE_RMS);
    m->rec = r;
    atomic_fetch_add(&m->mx->cnt->recordings_started, 1);
}

void sb_media_record_stop(sb_media *m, sb_voice_rec_reason reason)
{
    if (m != NULL && m->rec != NULL)
        rec_end(m, reason, true);
}

/* The ticker's part: the file catches up with the clock; a voicemail that
 * reached its length or its silence ends (the call goes on: the core
 * decides). */
static void rec_tick(sb_media *m, uint64_t now)
{
    sb_recorder *r = m->rec;
    uint64_t live = rec_live(r, now);
    if (live > REC_DELAY)
        rec_advance(r, live - REC_DELAY);
    sb_voice_rec_reason reason = rec_check(r);
    if (reason != SB_VOICE_REC_NONE)
        rec_end(m, reason, true);
}

/* ---- per call ---- */

/* Sends one audio packet of `m`'s peer-to-be on by the bridged peer:
 * untouched when both use the same law, converted through 16-bit linear
 * otherwise. The timestamp and marker follow the sender's, so a jitter
 * buffer at the far end sees the talker's own timing. */
static void relay(sb_media *m, const struct rtp_header *hdr, struct mbuf *mb)
{
    sb_media *to = m->peer;
    sb_mediactx *mx = m->mx;
    if (to->pt != m->pt) {
        uint8_t *p = mbuf_buf(mb);
        size_t n = mbuf_get_left(mb);
        for (size_t i = 0; i < n; i++)
            p[i] = m->pt == 0 ? g711_pcm2alaw(g711_ulaw2pcm(p[i])) : g711_pcm2ulaw(g711_alaw2pcm(p[i]));
        atomic_fetch_add(&mx->cnt->rtp_transcoded, 1);
    }
    bool marker = hdr->m || to->relay_marker;
    to->relay_marker = false;
    if (to->can_send && rtp_send(to->rtp, &to->raddr, false, marker, (uint8_t)to->pt, hdr->ts, mb) == 0) {
        atomic_fetch_add(&mx->cnt->rtp_packets_sent, 1);
        atomic_fetch_add(m->to_agent ? &mx->cnt->rtp_relayed_to_agent : &mx->cnt->rtp_relayed_to_caller, 1);
    }
}

/* Decodes a packet of an unbridged caller without telephone-event for the
 * in-band detector; its digits are reported like RFC 4733's. */
static void inband_recv(sb_media *m, const uint8_t *p, size_t n)
{
    sb_mediactx *mx = m->mx;
    int16_t pcm[FRAME_SAMPLES];
    char digits[4];
    while (n > 0) {
        size_t k = n < FRAME_SAMPLES ? n : FRAME_SAMPLES;
        sb_g711_decode(m->pt, p, k, pcm);
        size_t found = sb_inband_feed(m->inband, pcm, k, digits, sizeof digits);
        for (size_t i = 0; i < found; i++) {
            atomic_fetch_add(&mx->cnt->dtmf_digits, 1);
            atomic_fetch_add(&mx->cnt->dtmf_inband, 1);
            mx->hooks.dtmf(m->owner, digits[i]);
        }
        p += k;
        n -= k;
    }
}

static void rtp_recv(const struct sa *src, const struct rtp_header *hdr, struct mbuf *mb, void *arg)
{
    sb_media *m = arg;
    sb_mediactx *mx = m->mx;
    atomic_fetch_add(&mx->cnt->rtp_packets_received, 1);
    m->last_rx_ms = sb_clock_mono_ms();
    if (hdr->pt == (uint8_t)m->pt) { /* recorded before the relay converts it in place */
        if (m->rec != NULL)
            rec_put(m->rec, 0, m->pt, hdr->ts, mbuf_buf(mb), mbuf_get_left(mb), m->last_rx_ms);
        else if (m->peer != NULL && !m->to_agent && m->peer->rec != NULL && m->peer->rec->channels == 2)
            rec_put(m->peer->rec, 1, m->pt, hdr->ts, mbuf_buf(mb), mbuf_get_left(mb), m->last_rx_ms);
    }
    if (m->peer != NULL && hdr->pt == (uint8_t)m->pt) {
        relay(m, hdr, mb);
        return;
    }
    if (m->inband != NULL && hdr->pt == (uint8_t)m->pt) {
        inband_recv(m, mbuf_buf(mb), mbuf_get_left(mb));
        return;
    }
    if (m->te_pt < 0 || hdr->pt != (uint8_t)m->te_pt || m->telev == NULL)
        return;
    int event = -1;
    bool end = false;
    size_t pos = mb->pos;
    int err = telev_recv(m->telev, mb, &event, &end);
    sb_media *to = m->peer;
    if (to != NULL && to->te_pt >= 0 && to->can_send) {
        /* bridged: the key goes on to the other side as its own event
         * payload type (IVRs and voicemail beyond need it); our own
         * reading of it below still reaches the core */
        mb->pos = pos;
        if (rtp_send(to->rtp, &to->raddr, false, hdr->m, (uint8_t)to->te_pt, hdr->ts, mb) == 0)
            atomic_fetch_add(&mx->cnt->dtmf_relayed, 1);
    }
    if (err != 0)
        return;
    /* One digit per press: at its first packet, or at its end packet when
     * the start was lost. */
    bool report = end ? !m->te_reported : true;
    m->te_reported = !end;
    if (!report)
        return;
    int digit = telev_code2digit(event);
    if (digit <= 0)
        return;
    atomic_fetch_add(&mx->cnt->dtmf_digits, 1);
    mx->hooks.dtmf(m->owner, (char)digit);
}

static sb_media *media_alloc(sb_mediactx *mx, void *owner)
{
    sb_media *m = sb_xcalloc(1, sizeof *m);
    m->mx = mx;
    m->owner = owner;
    m->pt = -1;
    m->te_pt = -1;
    m->can_send = true;
    m->expect_rx = true;
    return m;
}

/* The formats we offer: law `pt` first (-1: PCMA then PCMU; else that law
 * alone), telephone-event 101. */
static int add_offer_formats(sb_media *m, int pt)
{
    int err = sdp_format_add(NULL, m->sdpm, false, pt == 0 ? "0" : "8", pt == 0 ? "PCMU" : "PCMA", 8000, 1, NULL, NULL,
                             NULL, false, NULL);
    if (err == 0 && pt < 0)
        err = sdp_format_add(NULL, m->sdpm, false, "0", "PCMU", 8000, 1, NULL, NULL, NULL, false, NULL);
    if (err == 0)
        err = sdp_format_add(NULL, m->sdpm, false, "101", telev_rtpfmt, 8000, 1, NULL, NULL, NULL, false, "0-15");
    return err == 0 ? 0 : SB_ENOMEM;
}

/* The peer's side of the SDP just decoded: its address, and which ways
 * media may flow now (see "Hold, late offers" at the top). */
static void apply_remote(sb_media *m)
{
    m->raddr = *sdp_media_raddr(m->sdpm);
    enum sdp_dir dir = sdp_media_dir(m->sdpm);
    m->can_send = (dir & SDP_SENDONLY) != 0 && sa_isset(&m->raddr, SA_ADDR) && sa_port(&m->raddr) != 0;
    bool rx = (dir & SDP_RECVONLY) != 0;
    uint64_t now = sb_clock_mono_ms();
    if (rx && !m->expect_rx)
        m->last_rx_ms = now; /* resumed: the watchdog starts over */
    else if (!rx && m->expect_rx)
        m->held_ms = now;
    m->expect_rx = rx;
}

static int choose_remote(sb_media *m, bool need_addr)
{
    int pt = -1, te_pt = -1;
    if (sb_voice_sdp_choose(m->sdpm, need_addr, &pt, &te_pt) != 0)
        return SB_EINVAL;
    if (te_pt >= 0 && m->telev == NULL && telev_alloc(&m->telev, FRAME_MS) != 0)
        return SB_EIO;
    m->pt = pt;
    m->te_pt = te_pt;
    if (m->te_pt < 0 && m->want_inband && m->inband == NULL) { /* listen for tones (see the top) */
        m->inband = sb_xmalloc(sizeof *m->inband);
        sb_inband_init(m->inband);
    }
    apply_remote(m);
    return 0;
}

int sb_media_new(sb_media **out, sb_mediactx *mx, void *owner, const struct sa *ip, const struct sip_msg *msg)
{
    *out = NULL;
    sb_media *m = media_alloc(mx, owner);
    m->want_inband = true;
    int rc = SB_EIO;
    int err = sdp_session_alloc(&m->sdp, ip);
    if (err == 0)
        err = sdp_media_add(&m->sdpm, m->sdp, "audio", 0, "RTP/AVP");
    if (err != 0)
        goto fail;
    if (mbuf_get_left(msg->mb) == 0) { /* a late offer: ours goes in the 200 */
        if (add_offer_formats(m, -1) != 0)
            goto fail;
        m->late = true;
    } else {
        if (sb_voice_sdp_formats(m->sdpm) != 0)
            goto fail;
        if (!msg_ctype_cmp(&msg->ctyp, "application", "sdp") || sdp_decode(m->sdp, msg->mb, true) != 0) {
            rc = SB_EINVAL;
            goto fail;
        }
        rc = choose_remote(m, true);
        if (rc != 0)
            goto fail;
        rc = SB_EIO;
    }
    err = rtp_listen(&m->rtp, IPPROTO_UDP, ip, RTP_PORT_MIN, RTP_PORT_MAX, false, rtp_recv, NULL, m);
    if (err != 0) {
        sb_log(SB_ERROR, "voice", "no RTP port err=%d", err);
        goto fail;
    }
    sdp_media_set_lport(m->sdpm, sa_port(rtp_local(m->rtp)));
    *out = m;
    return 0;
fail:
    sb_media_free(m);
    return rc;
}

int sb_media_new_offer(sb_media **out, sb_mediactx *mx, void *owner, const struct sa *ip, int pt)
{
    *out = NULL;
    sb_media *m = media_alloc(mx, owner);
    int err = sdp_session_alloc(&m->sdp, ip);
    if (err == 0)
        err = sdp_media_add(&m->sdpm, m->sdp, "audio", 0, "RTP/AVP");
    if (err == 0)
        err = add_offer_formats(m, pt); /* -1, both laws: the answer picks one */
    if (err == 0)
        err = rtp_listen(&m->rtp, IPPROTO_UDP, ip, RTP_PORT_MIN, RTP_PORT_MAX, false, rtp_recv, NULL, m);
    if (err != 0) {
        sb_log(SB_ERROR, "voice", "cannot prepare an offer err=%d", err);
        sb_media_free(m);
        return SB_EIO;
    }
    sdp_media_set_lport(m->sdpm, sa_port(rtp_local(m->rtp)));
    *out = m;
    return 0;
}

int sb_media_offer_sdp(sb_media *m, struct mbuf **out)
{
    return sdp_encode(out, m->sdp, true) == 0 ? 0 : SB_EIO;
}

int sb_media_take_answer(sb_media *m, const struct sip_msg *msg)
{
    if (mbuf_get_left(msg->mb) == 0 || !msg_ctype_cmp(&msg->ctyp, "application", "sdp"))
        return SB_EINVAL;
    if (sdp_decode(m->sdp, msg->mb, false) != 0)
        return SB_EINVAL;
    /* the first answer needs an address; a later one may hold (0.0.0.0) */
    int rc = choose_remote(m, m->pt < 0);
    if (rc == 0)
        m->late = false;
    return rc;
}

bool sb_media_awaits_answer(const sb_media *m)
{
    return m != NULL && m->late;
}

int sb_media_reoffer(sb_media *m, const struct sip_msg *msg, struct mbuf **answer)
{
    atomic_fetch_add(&m->mx->cnt->reinvites, 1);
    if (mbuf_get_left(msg->mb) == 0) { /* no offer: ours, answered in the ACK */
        if (sdp_encode(answer, m->sdp, true) != 0)
            return SB_EIO;
        m->late = true;
        return 0;
    }
    if (!msg_ctype_cmp(&msg->ctyp, "application", "sdp") || sdp_decode(m->sdp, msg->mb, true) != 0)
        return SB_EINVAL;
    int rc = choose_remote(m, false);
    if (rc != 0)
        return rc;
    return sdp_encode(answer, m->sdp, false) == 0 ? 0 : SB_EIO;
}

uint64_t sb_mediactx_lag_ms(const sb_mediactx *mx)
{
    if (list_isempty(&mx->active) || sb_clock_mono_ms() - mx->late_at_ms >= 1000)
        return 0;
    return mx->late_ms;
}

void sb_media_watch(sb_media *m, bool on)
{
    if (on && m->unwatched)
        m->last_rx_ms = sb_clock_mono_ms();
    m->unwatched = !on;
}

bool sb_media_held(const sb_media *m)
{
    return m != NULL && (!m->expect_rx || !m->can_send);
}

int sb_media_pt(const sb_media *m)
{
    return m->pt;
}

void sb_media_bridge(sb_media *caller, sb_media *agent)
{
    caller->prompt = NULL;
    caller->pos = 0;
    caller->peer = agent;
    caller->to_agent = true;
    caller->relay_marker = true;
    agent->prompt = NULL;
    agent->peer = caller;
    agent->to_agent = false;
    agent->relay_marker = true;
}

void sb_media_unbridge(sb_media *m)
{
    if (m == NULL || m->peer == NULL)
        return;
    m->peer->peer = NULL;
    m->peer = NULL;
}

int sb_media_answer_sdp(sb_media *m, struct mbuf **out)
{
    return sdp_encode(out, m->sdp, m->late) == 0 ? 0 : SB_EIO;
}

static void ticker(void *arg);

static void arm_ticker(sb_mediactx *mx, uint64_t now)
{
    uint64_t delay = mx->next_ms > now ? mx->next_ms - now : 0;
    tmr_start(&mx->ticker, delay, ticker, mx);
}

void sb_media_start(sb_media *m)
{
    if (m->started)
        return;
    m->started = true;
    m->marker = true;
    m->ts = rand_u32();
    m->last_rx_ms = sb_clock_mono_ms();
    sb_mediactx *mx = m->mx;
    bool was_idle = list_isempty(&mx->active);
    list_append(&mx->active, &m->le, m);
    if (was_idle) {
        uint64_t now = sb_clock_mono_ms();
        mx->next_ms = now + FRAME_MS;
        mx->next_check_ms = now + MEDIA_CHECK_MS;
        arm_ticker(mx, now);
    }
}

int sb_media_play(sb_media *m, const char *path, bool loop)
{
    const sb_prompt *p = prompt_get(m->mx, path);
    m->prompt = p;
    m->pos = 0;
    m->loop = loop;
    m->marker = true;
    return p != NULL ? 0 : SB_ENOTFOUND;
}

void sb_media_stop_play(sb_media *m)
{
    m->prompt = NULL;
    m->pos = 0;
}

void sb_media_free(sb_media *m)
{
    if (m == NULL)
        return;
    if (m->rec != NULL)
        rec_end(m, SB_VOICE_REC_HANGUP, false);
    sb_media_unbridge(m);
    if (m->started) {
        list_unlink(&m->le);
        if (list_isempty(&m->mx->active))
            tmr_cancel(&m->mx->ticker);
    }
    mem_deref(m->telev);
    mem_deref(m->rtp);
    mem_deref(m->sdp); /* owns sdpm */
    free(m->inband);
    free(m);
}

/* Sends one 20 ms frame of the prompt; returns true when it just ended. */
static bool send_frame(sb_media *m)
{
    sb_mediactx *mx = m->mx;
    bool ended = false;
    if (m->prompt != NULL) {
        struct mbuf *mb = mx->mb;
        mbuf_rewind(mb);
        mb->pos = mb->end = RTP_HEADER_SIZE;
        uint8_t frame[FRAME_SAMPLES];
        for (size_t i = 0; i < FRAME_SAMPLES; i++) {
            int16_t s = 0;
            if (m->pos < m->prompt->n)
                s = m->prompt->pcm[m->pos++];
            frame[i] = m->pt == 0 ? g711_pcm2ulaw(s) : g711_pcm2alaw(s);
        }
        (void)mbuf_write_mem(mb, frame, sizeof frame);
        mb->pos = RTP_HEADER_SIZE;
        if (m->can_send && rtp_send(m->rtp, &m->raddr, false, m->marker, (uint8_t)m->pt, m->ts, mb) == 0)
            atomic_fetch_add(&mx->cnt->rtp_packets_sent, 1);
        m->marker = false;
        if (m->pos >= m->prompt->n) {
            if (m->loop) {
                m->pos = 0;
            } else {
                m->prompt = NULL;
                ended = true;
            }
        }
    }
    m->ts += FRAME_SAMPLES;
    return ended;
}

static void ticker(void *arg)
{
    sb_mediactx *mx = arg;
    uint64_t now = sb_clock_mono_ms();
    /* averaged, so that one stall (a slow disk, a scheduler hiccup) does not
     * read as overload; a thread that stays behind does */
    mx->late_ms = (mx->late_ms * 7 + (now > mx->next_ms ? now - mx->next_ms : 0)) / 8;
    mx->late_at_ms = now;
    int frames = 0;
    while (mx->next_ms <= now && frames < MAX_CATCHUP) {
        struct le *le = list_head(&mx->active);
        while (le != NULL) {
            sb_media *m = le->data;
            le = le->next; /* the hook may end this call */
            if (send_frame(m))
                mx->hooks.play_done(m->owner, false);
        }
        mx->next_ms += FRAME_MS;
        frames++;
    }
    if (mx->next_ms + FRAME_MS * MAX_CATCHUP < now)
        mx->next_ms = now + FRAME_MS; /* far behind (a stall): do not burst */
    struct le *rle = list_head(&mx->active);
    while (rle != NULL) {
        sb_media *m = rle->data;
        rle = rle->next;
        if (m->rec != NULL)
            rec_tick(m, now); /* its report only queues an event */
    }
    if (mx->no_media_ms > 0 && now >= mx->next_check_ms) {
        mx->next_check_ms = now + MEDIA_CHECK_MS;
        /* A hook may free other media too (a bridged peer): look again from
         * the head after each one; a flag keeps each report to one. */
        for (;;) {
            sb_media *silent = NULL;
            for (struct le *le = list_head(&mx->active); le != NULL && silent == NULL; le = le->next) {
                sb_media *m = le->data;
                if (!m->no_media_reported && !m->unwatched &&
                    (m->expect_rx ? now - m->last_rx_ms > mx->no_media_ms : now - m->held_ms > HOLD_MAX_MS))
                    silent = m;
            }
            if (silent == NULL)
                break;
            silent->no_media_reported = true;
            atomic_fetch_add(&mx->cnt->no_media_hangups, 1);
            mx->hooks.no_media(silent->owner);
        }
    }
    if (!list_isempty(&mx->active))
        arm_ticker(mx, now);
}
