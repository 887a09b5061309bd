/* media.c - RTP for the voice thread's calls, on a thread of its own: one
 * RTP socket per call, G.711 (PCMU/PCMA) encoded on the fly from 8 kHz mono
 * 16-bit WAV prompts, RFC 4733 telephone-events in any payload type the
 * peer offered, and one shared 20 ms tick for every call (a timer per call
 * cost twice the CPU: libre keeps timers in a sorted list, DESIGN.md §5).
 * The same tick watches for calls whose media stopped. Prompts are read
 * once and kept in memory (restart to pick up regenerated files).
 *
 * Threads. The voice thread (libre's loop) owns SIP and makes every
 * decision; the *media thread* here owns the packets: its own epoll over
 * the calls' RTP sockets, the tick as epoll's timeout, plain recvfrom and
 * sendto (no libre loop, no mbuf per packet). At 80 calls/s a single voice
 * thread spent about two thirds of its time on RTP and sat at 98-99 % of a
 * core, so SIP datagrams were dropped; split, each side has a core's worth
 * (bench/voice.py). One mutex (`mu`) guards every sb_media and the context:
 * the voice thread takes it in each sb_media_* call, the media thread for
 * each batch of ready sockets and each tick. What the media thread has to
 * tell (a digit, a prompt done, no media, a recording ended) goes into an
 * outbox, and one mqueue message wakes the voice thread, which delivers the
 * hooks one at a time on its own thread (sb_media_* may be called from
 * them). sb_media_free takes the media's undelivered events out of the
 * outbox, closes its socket and leaves the memory to the media thread,
 * which frees it after the batch in hand (an epoll event may still name it).
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
 * timestamp gives it, and the tick moves the audio from the rings to the
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
#include <unistd.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "base/clock.h"
#include "base/log.h"
#include "voice/inband.h"
#include "voice/voice_internal.h"
#include "voice/wav.h"

#define FRAME_MS       20
#define FRAME_SAMPLES  160
#define RTP_HDR        12
#define RTP_PORT_MIN   10000
#define RTP_PORT_MAX   60000
#define RTP_BIND_TRIES 64
#define RTP_BUF        2048         /* the largest datagram we read; more is cut (and not G.711 20 ms anyway) */
#define MAX_EVENTS     256          /* sockets handled per epoll_wait */
#define TICK_BATCH     32           /* media served by the tick per hold of the lock */
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

/* A recording's file: the writer thread's (it creates, writes and closes
 * it, then frees this); the media thread only reads `err`. */
typedef struct rec_file {
    sb_wav_writer *wav;
    unsigned channels;
    char *path;
    atomic_int err; /* errno of a failed create or write; 0 */
} rec_file;

typedef struct sb_recorder {
    rec_file *f;
    int16_t *chunk; /* frames for the writer thread: a second's worth goes at once */
    size_t chunk_n;
    char *path;
    sb_voice_record_opts opt;
    unsigned channels;
    uint64_t start_ms; /* monotonic: sample 0 */
    uint64_t pos;      /* samples (per channel) handed to the file */
    sb_wav_silence silence;
    rec_chan ch[2];
} sb_recorder;

/* Work for the writer thread, in order, per recording: create the file,
 * append frames, and its end: the header's sizes, fsync, close. */
typedef enum rec_job_kind { JOB_OPEN, JOB_WRITE, JOB_CLOSE } rec_job_kind;

typedef struct rec_job {
    struct rec_job *next;
    rec_job_kind kind;
    rec_file *f;
    int16_t *frames; /* JOB_WRITE: channels interleaved */
    size_t n;
} rec_job;

/* What the media thread tells the voice thread (see "Threads"). */
typedef enum media_ev_kind { EV_DTMF, EV_PLAY_DONE, EV_NO_MEDIA, EV_RECORDING } media_ev_kind;

typedef struct media_ev {
    struct media_ev *next;
    sb_media *m;
    media_ev_kind kind;
    char digit;
    uint32_t play_gen; /* EV_PLAY_DONE: of which play */
    char *path;        /* EV_RECORDING */
    int64_t duration_ms;
    uint64_t bytes;
    sb_voice_rec_reason reason;
} media_ev;

struct sb_mediactx {
    sb_voice_counters *cnt;
    sb_media_hooks hooks;
    uint64_t no_media_ms;
    struct list prompts; /* voice thread only; a prompt's samples never change */
    /* the media thread */
    pthread_t thread;
    bool started;
    int epfd, wakefd;
    struct mqueue *mq;                        /* wakes the voice thread: the outbox has events */
    atomic_uint_fast64_t late_ms, late_at_ms; /* how late the ticks run (a moving average over ~8), when last */
    /* under mu */
    pthread_mutex_t mu;
    bool stop;
    struct list active; /* sb_media that started */
    uint64_t next_ms;
    uint64_t next_check_ms;
    media_ev *out_head, *out_tail;
    bool out_signalled;  /* an mqueue message is on its way */
    sb_media *graveyard; /* freed by the voice thread, released by the media thread */
    sb_media **snap;     /* the media thread's: the tick's list of media */
    size_t snap_cap;
    /* the writer thread: recordings' writes, fsyncs and closes */
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    pthread_t syncer;
    bool syncer_started, syncer_stop;
    rec_job *sync_head, *sync_tail;
};

struct sb_media {
    struct le le;
    sb_mediactx *mx;
    void *owner;    /* a call or an agent's leg (sip.c tells them by magic) */
    sb_media *peer; /* bridged: where our peer's audio goes */
    bool to_agent;  /* bridged: this side is the caller's */
    bool relay_marker;
    bool dead; /* freed by the voice thread: waits in the graveyard */
    sb_media *next_dead;
    struct sdp_session *sdp; /* voice thread only */
    struct sdp_media *sdpm;
    int fd;
    uint16_t lport;
    uint32_t ssrc;
    uint16_t seq;
    struct telev *telev;
    int pt, te_pt;
    struct sa raddr;
    bool started;
    uint32_t ts;
    bool marker;
    uint64_t last_rx_ms;
    const sb_prompt *prompt;
    size_t pos;
    uint32_t play_gen; /* counts plays and stops: a prompt's end reported after a newer play is stale */
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

static void *media_main(void *arg);
static void on_outbox(int id, void *data, void *arg);

int sb_mediactx_new(sb_mediactx **out, sb_voice_counters *counters, const sb_media_hooks *hooks,
                    unsigned no_media_seconds)
{
    *out = NULL;
    sb_mediactx *mx = sb_xcalloc(1, sizeof *mx);
    mx->cnt = counters;
    mx->hooks = *hooks;
    mx->no_media_ms = (uint64_t)no_media_seconds * 1000;
    list_init(&mx->active);
    list_init(&mx->prompts);
    pthread_mutex_init(&mx->mu, NULL);
    pthread_mutex_init(&mx->sync_mu, NULL);
    pthread_cond_init(&mx->sync_cv, NULL);
    mx->epfd = epoll_create1(EPOLL_CLOEXEC);
    mx->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    int rc = SB_EIO;
    if (mx->epfd < 0 || mx->wakefd < 0 || epoll_ctl(mx->epfd, EPOLL_CTL_ADD, mx->wakefd, &ev) != 0) {
        sb_log(SB_ERROR, "voice", "media thread: no epoll: %s", strerror(errno));
        goto fail;
    }
    if (mqueue_alloc(&mx->mq, on_outbox, mx) != 0) /* on the voice thread's loop */
        goto fail;
    if (pthread_create(&mx->thread, NULL, media_main, mx) != 0) {
        sb_log(SB_ERROR, "voice", "cannot start the media thread");
        goto fail;
    }
    mx->started = true;
    *out = mx;
    return 0;
fail:
    sb_mediactx_free(mx);
    return rc;
}

static void release_dead(sb_mediactx *mx);

void sb_mediactx_free(sb_mediactx *mx)
{
    if (mx == NULL)
        return;
    SB_ASSERT(list_isempty(&mx->active));
    if (mx->started) {
        pthread_mutex_lock(&mx->mu);
        mx->stop = true;
        pthread_mutex_unlock(&mx->mu);
        uint64_t one = 1;
        (void)!write(mx->wakefd, &one, sizeof one);
        pthread_join(mx->thread, NULL);
    }
    release_dead(mx);
    while (mx->out_head != NULL) { /* nobody is left to tell */
        media_ev *e = mx->out_head;
        mx->out_head = e->next;
        free(e->path);
        free(e);
    }
    mx->mq = mem_deref(mx->mq);
    free(mx->snap);
    if (mx->epfd >= 0)
        close(mx->epfd);
    if (mx->wakefd >= 0)
        close(mx->wakefd);
    if (mx->syncer_started) { /* it drains its queue first */
        pthread_mutex_lock(&mx->sync_mu);
        mx->syncer_stop = true;
        pthread_cond_signal(&mx->sync_cv);
        pthread_mutex_unlock(&mx->sync_mu);
        pthread_join(mx->syncer, NULL);
    }
    pthread_mutex_destroy(&mx->sync_mu);
    pthread_cond_destroy(&mx->sync_cv);
    pthread_mutex_destroy(&mx->mu);
    struct le *le = list_head(&mx->prompts);
    while (le != NULL) {
        sb_prompt *p = le->data;
        le = le->next;
        list_unlink(&p->le);
        free(p->path);
        free(p->pcm);
        free(p);
    }
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
        rec_job *j = mx->sync_head;
        if (j == NULL)
            break; /* stopping, and nothing left */
        mx->sync_head = j->next;
        if (mx->sync_head == NULL)
            mx->sync_tail = NULL;
        pthread_mutex_unlock(&mx->sync_mu);
        rec_file *f = j->f;
        if (j->kind == JOB_OPEN) {
            int rc = sb_wav_open(&f->wav, f->path, f->channels, NULL);
            if (rc != 0) {
                int err = errno != 0 ? errno : EIO;
                sb_log(SB_WARN, "voice", "cannot create recording %s rc=%d: %s", f->path, rc, strerror(err));
                atomic_store(&f->err, err);
            } else {
                atomic_fetch_add(&mx->cnt->recordings_started, 1); /* a file made */
            }
        } else if (j->kind == JOB_WRITE) {
            if (f->wav != NULL && sb_wav_status(f->wav) == 0 && sb_wav_write(f->wav, j->frames, j->n) != 0)
                atomic_store(&f->err, sb_wav_errno(f->wav) != 0 ? sb_wav_errno(f->wav) : EIO);
        } else {
            int err = f->wav != NULL && sb_wav_status(f->wav) != 0 ? sb_wav_errno(f->wav) : 0;
            if (f->wav != NULL && sb_wav_close(f->wav, true) != 0)
                sb_log(SB_WARN, "voice", "recording %s: a write, fsync or close failed: %s", f->path,
                       strerror(err != 0 ? err : errno));
            free(f->path);
            free(f);
        }
        free(j->frames);
        free(j);
        pthread_mutex_lock(&mx->sync_mu);
    }
    pthread_mutex_unlock(&mx->sync_mu);
    return NULL;
}

/* Voice thread: starts the writer thread (once). */
static int writer_start(sb_mediactx *mx)
{
    if (mx->syncer_started)
        return 0;
    if (pthread_create(&mx->syncer, NULL, syncer_main, mx) != 0)
        return SB_EIO;
    mx->syncer_started = true;
    return 0;
}

static void job_put(sb_mediactx *mx, rec_job *j)
{
    pthread_mutex_lock(&mx->sync_mu);
    if (mx->sync_tail != NULL)
        mx->sync_tail->next = j;
    else
        mx->sync_head = j;
    mx->sync_tail = j;
    pthread_cond_signal(&mx->sync_cv);
    pthread_mutex_unlock(&mx->sync_mu);
}

/* Hands the frames gathered to the writer thread. */
static void rec_ship(sb_mediactx *mx, sb_recorder *r)
{
    if (r->chunk_n == 0)
        return;
    rec_job *j = sb_xcalloc(1, sizeof *j);
    j->kind = JOB_WRITE;
    j->f = r->f;
    j->frames = r->chunk;
    j->n = r->chunk_n;
    job_put(mx, j);
    r->chunk = sb_xmalloc((size_t)SB_WAV_RATE * r->channels * sizeof(int16_t));
    r->chunk_n = 0;
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
 * rings to the file; what nobody sent is silence. A second's worth at a
 * time goes to the writer thread, so the disk never holds up the media
 * thread (a write blocked by the file system's journal or writeback once
 * stalled every call's media, and the SIP waiting on it). A failed write
 * stops the recording (the writer thread tells rec_check). */
static void rec_advance(sb_mediactx *mx, sb_recorder *r, uint64_t upto)
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
        memcpy(r->chunk + r->chunk_n * r->channels, frames, n * r->channels * sizeof(int16_t));
        r->chunk_n += n;
        if (r->chunk_n + FRAME_SAMPLES > SB_WAV_RATE)
            rec_ship(mx, r);
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
static void rec_put(sb_mediactx *mx, sb_recorder *r, unsigned k, int pt, uint32_t ts, const uint8_t *p, size_t n,
                    uint64_t now)
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
    if ((uint64_t)idx + n > r->pos + REC_RING) /* the tick fell behind: make room */
        rec_advance(mx, r, (uint64_t)idx + n - REC_RING);
    if ((uint64_t)idx + n > r->pos + REC_RING)
        return; /* past max_seconds: the recording ends at the next tick */
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
    if (atomic_load(&r->f->err) != 0)
        return SB_VOICE_REC_ERROR;
    if (r->pos >= rec_max_samples(r))
        return SB_VOICE_REC_MAX_LENGTH;
    if (r->opt.mode == SB_VOICE_REC_VOICEMAIL && r->opt.silence_seconds > 0 &&
        sb_wav_silence_ms(&r->silence) >= (uint64_t)r->opt.silence_seconds * 1000)
        return SB_VOICE_REC_SILENCE;
    return SB_VOICE_REC_NONE;
}

/* ---- the outbox: events for the voice thread ---- */

static media_ev *ev_new(sb_media *m, media_ev_kind kind)
{
    media_ev *e = sb_xcalloc(1, sizeof *e);
    e->m = m;
    e->kind = kind;
    return e;
}

/* Under mu. */
static void ev_put(sb_mediactx *mx, media_ev *e)
{
    if (mx->out_tail != NULL)
        mx->out_tail->next = e;
    else
        mx->out_head = e;
    mx->out_tail = e;
}

/* Under mu: takes out the first event of `m` (any media: NULL) whose kind
 * is `kind` (any: -1). */
static media_ev *ev_take(sb_mediactx *mx, const sb_media *m, int kind)
{
    media_ev *prev = NULL;
    for (media_ev *e = mx->out_head; e != NULL; prev = e, e = e->next) {
        if ((m != NULL && e->m != m) || (kind >= 0 && (int)e->kind != kind))
            continue;
        if (prev != NULL)
            prev->next = e->next;
        else
            mx->out_head = e->next;
        if (mx->out_tail == e)
            mx->out_tail = prev;
        e->next = NULL;
        return e;
    }
    return NULL;
}

/* Voice thread, mu not held: the hook of one event (its media is alive:
 * freeing a media takes its events out). */
static void ev_deliver(sb_mediactx *mx, media_ev *e, void *owner)
{
    switch (e->kind) {
    case EV_DTMF: mx->hooks.dtmf(owner, e->digit); break;
    case EV_PLAY_DONE: mx->hooks.play_done(owner, false); break;
    case EV_NO_MEDIA: mx->hooks.no_media(owner); break;
    case EV_RECORDING:
        atomic_fetch_add(e->reason == SB_VOICE_REC_ERROR ? &mx->cnt->recordings_failed : &mx->cnt->recordings_finished,
                         1);
        mx->hooks.recording_done(owner, e->path, e->duration_ms, e->bytes, e->reason);
        break;
    }
    free(e->path);
    free(e);
}

/* Voice thread: delivers the events of `m` (NULL: all) of `kind` (-1:
 * all), one at a time, so that a hook may free any media. */
static void deliver(sb_mediactx *mx, const sb_media *m, int kind)
{
    for (;;) {
        pthread_mutex_lock(&mx->mu);
        media_ev *e = ev_take(mx, m, kind);
        void *owner = e != NULL ? e->m->owner : NULL;
        bool stale = e != NULL && e->kind == EV_PLAY_DONE && e->play_gen != e->m->play_gen;
        pthread_mutex_unlock(&mx->mu);
        if (e == NULL)
            return;
        if (stale) { /* another prompt started (or none) since: this end is not the one playing */
            free(e);
            continue;
        }
        ev_deliver(mx, e, owner);
    }
}

static void on_outbox(int id, void *data, void *arg)
{
    (void)id;
    (void)data;
    sb_mediactx *mx = arg;
    pthread_mutex_lock(&mx->mu);
    mx->out_signalled = false;
    pthread_mutex_unlock(&mx->mu);
    deliver(mx, NULL, -1);
}

/* ---- recordings, cont. ---- */

/* Under mu: ends the recording. At a hangup what was received goes to the
 * file too; the writer thread then patches the header's sizes, fsyncs and
 * closes it. The report (unless `report` is false: freeing, nobody to
 * tell) joins the outbox; a write that fails after it is only logged. */
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
        rec_advance(m->mx, r, upto);
    }
    rec_ship(m->mx, r);
    int err = atomic_load(&r->f->err);
    if (err != 0)
        reason = SB_VOICE_REC_ERROR;
    int64_t duration_ms = (int64_t)(r->pos * 1000 / SB_WAV_RATE);
    uint64_t bytes = SB_WAV_HEADER_BYTES + r->pos * r->channels * 2;
    if (reason == SB_VOICE_REC_ERROR)
        sb_log(SB_WARN, "voice", "recording %s failed after %lld ms: %s", r->path, (long long)duration_ms,
               strerror(err != 0 ? err : EIO));
    else
        sb_log(SB_INFO, "voice", "recording %s done ms=%lld bytes=%llu reason=%s", r->path, (long long)duration_ms,
               (unsigned long long)bytes, sb_voice_rec_reason_name(reason));
    rec_job *j = sb_xcalloc(1, sizeof *j); /* after its frames: the queue keeps the order */
    j->kind = JOB_CLOSE;
    j->f = r->f;
    job_put(m->mx, j);
    free(r->chunk);
    if (report) {
        media_ev *e = ev_new(m, EV_RECORDING);
        e->path = r->path;
        e->duration_ms = duration_ms;
        e->bytes = bytes;
        e->reason = reason;
        ev_put(m->mx, e);
    } else {
        free(r->path);
    }
    free(r);
}

void sb_media_record(sb_media *m, const char *path, const sb_voice_record_opts *o)
{
    sb_mediactx *mx = m->mx;
    pthread_mutex_lock(&mx->mu);
    bool busy = m->rec != NULL;
    pthread_mutex_unlock(&mx->mu); /* only this thread starts recordings */
    if (busy || writer_start(mx) != 0) {
        sb_log(SB_WARN, "voice", "recording %s refused: %s", path,
               busy ? "another one is running" : "no writer thread");
        media_ev *e = ev_new(m, EV_RECORDING);
        e->path = sb_xstrdup(path);
        e->reason = SB_VOICE_REC_ERROR;
        ev_deliver(mx, e, m->owner);
        return;
    }
    unsigned channels = o->mode == SB_VOICE_REC_CALL ? 2 : 1;
    /* The file is made on the writer thread too: creating one waits for the
     * file system's journal as writing does. One it cannot make ends the
     * recording at the next tick, recording_done(error). */
    rec_file *f = sb_xcalloc(1, sizeof *f);
    f->channels = channels;
    f->path = sb_xstrdup(path);
    rec_job *j = sb_xcalloc(1, sizeof *j);
    j->kind = JOB_OPEN;
    j->f = f;
    job_put(mx, j);
    sb_recorder *r = sb_xcalloc(1, sizeof *r);
    r->f = f;
    r->chunk = sb_xmalloc((size_t)SB_WAV_RATE * channels * sizeof(int16_t));
    r->path = sb_xstrdup(path);
    r->opt = *o;
    r->channels = channels;
    r->start_ms = sb_clock_mono_ms();
    sb_wav_silence_init(&r->silence, SB_WAV_SILENCE_RMS);
    pthread_mutex_lock(&mx->mu);
    m->rec = r;
    pthread_mutex_unlock(&mx->mu);
}

void sb_media_record_stop(sb_media *m, sb_voice_rec_reason reason)
{
    if (m == NULL)
        return;
    sb_mediactx *mx = m->mx;
    pthread_mutex_lock(&mx->mu);
    if (m->rec != NULL)
        rec_end(m, reason, true);
    pthread_mutex_unlock(&mx->mu);
    /* now, with one the tick may have ended just before: it comes before
     * whatever the caller reports next (a hangup) */
    deliver(mx, m, EV_RECORDING);
}

/* The tick's part: the file catches up with the clock; a voicemail that
 * reached its length or its silence ends (the call goes on: the core
 * decides). */
static void rec_tick(sb_media *m, uint64_t now)
{
    sb_recorder *r = m->rec;
    uint64_t live = rec_live(r, now);
    if (live > REC_DELAY)
        rec_advance(m->mx, r, live - REC_DELAY);
    sb_voice_rec_reason reason = rec_check(r);
    if (reason != SB_VOICE_REC_NONE)
        rec_end(m, reason, true);
}

/* ---- per call: packets (media thread, under mu) ---- */

/* Sends one RTP packet whose payload is at `pkt + RTP_HDR` (the header is
 * written in front of it) from m's socket: our SSRC and sequence, the
 * timestamp given. */
static bool rtp_out(sb_media *m, uint8_t *pkt, size_t payload, bool marker, int pt, uint32_t ts)
{
    if (!m->can_send || m->fd < 0)
        return false;
    uint16_t seq = m->seq++;
    pkt[0] = 0x80;
    pkt[1] = (uint8_t)((marker ? 0x80 : 0) | (pt & 0x7f));
    pkt[2] = (uint8_t)(seq >> 8);
    pkt[3] = (uint8_t)seq;
    pkt[4] = (uint8_t)(ts >> 24);
    pkt[5] = (uint8_t)(ts >> 16);
    pkt[6] = (uint8_t)(ts >> 8);
    pkt[7] = (uint8_t)ts;
    pkt[8] = (uint8_t)(m->ssrc >> 24);
    pkt[9] = (uint8_t)(m->ssrc >> 16);
    pkt[10] = (uint8_t)(m->ssrc >> 8);
    pkt[11] = (uint8_t)m->ssrc;
    if (sendto(m->fd, pkt, RTP_HDR + payload, MSG_DONTWAIT, &m->raddr.u.sa, m->raddr.len) < 0)
        return false;
    atomic_fetch_add(&m->mx->cnt->rtp_packets_sent, 1);
    return true;
}

/* Sends one audio packet of `m` on by the bridged peer: untouched when both
 * use the same law, converted otherwise. The timestamp and marker follow
 * the sender's, so a jitter buffer at the far end sees the talker's own
 * timing. The payload is at pkt + RTP_HDR (converted in place). */
static void relay(sb_media *m, const sb_rtp_pkt *h, uint8_t *pkt)
{
    sb_media *to = m->peer;
    sb_mediactx *mx = m->mx;
    if (to->pt != m->pt) {
        uint8_t *p = pkt + RTP_HDR;
        for (size_t i = 0; i < h->len; i++)
            p[i] = m->pt == 0 ? g711_pcm2alaw(g711_ulaw2pcm(p[i])) : g711_pcm2ulaw(g711_alaw2pcm(p[i]));
        atomic_fetch_add(&mx->cnt->rtp_transcoded, 1);
    }
    bool marker = h->marker || to->relay_marker;
    to->relay_marker = false;
    if (rtp_out(to, pkt, h->len, marker, to->pt, h->ts))
        atomic_fetch_add(m->to_agent ? &mx->cnt->rtp_relayed_to_agent : &mx->cnt->rtp_relayed_to_caller, 1);
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
            media_ev *e = ev_new(m, EV_DTMF);
            e->digit = digits[i];
            ev_put(mx, e);
        }
        p += k;
        n -= k;
    }
}

/* One received packet; `pkt` has room for a header in front of the
 * payload (it is RTP_HDR bytes at least), which the relay reuses. */
static void rtp_in(sb_media *m, uint8_t *buf, size_t n)
{
    sb_mediactx *mx = m->mx;
    sb_rtp_pkt h;
    if (sb_voice_rtp_parse(buf, n, &h) != 0)
        return;
    atomic_fetch_add(&mx->cnt->rtp_packets_received, 1);
    m->last_rx_ms = sb_clock_mono_ms();
    uint8_t *payload = buf + h.off;
    uint8_t *pkt = payload - RTP_HDR; /* h.off >= RTP_HDR */
    if (h.pt == (uint8_t)m->pt) {     /* recorded before the relay converts it in place */
        if (m->rec != NULL)
            rec_put(mx, m->rec, 0, m->pt, h.ts, payload, h.len, m->last_rx_ms);
        else if (m->peer != NULL && !m->to_agent && m->peer->rec != NULL && m->peer->rec->channels == 2)
            rec_put(mx, m->peer->rec, 1, m->pt, h.ts, payload, h.len, m->last_rx_ms);
    }
    if (m->peer != NULL && h.pt == (uint8_t)m->pt) {
        relay(m, &h, pkt);
        return;
    }
    if (m->inband != NULL && h.pt == (uint8_t)m->pt) {
        inband_recv(m, payload, h.len);
        return;
    }
    if (m->te_pt < 0 || h.pt != (uint8_t)m->te_pt || m->telev == NULL)
        return;
    int event = -1;
    bool end = false;
    struct mbuf mb = {.buf = payload, .size = h.len, .pos = 0, .end = h.len};
    int err = telev_recv(m->telev, &mb, &event, &end);
    sb_media *to = m->peer;
    if (to != NULL && to->te_pt >= 0) {
        /* bridged: the key goes on to the other side as its own event
         * payload type (IVRs and voicemail beyond need it); our own
         * reading of it below still reaches the core */
        if (rtp_out(to, pkt, h.len, h.marker, to->te_pt, h.ts))
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
    media_ev *e = ev_new(m, EV_DTMF);
    e->digit = (char)digit;
    ev_put(mx, e);
}

/* Reads what one socket has (a few datagrams at most: the others wait for
 * the next round, level-triggered, so one busy peer cannot starve the rest). */
static void media_read(sb_media *m, uint8_t *buf)
{
    for (int i = 0; i < 4 && !m->dead; i++) {
        ssize_t n = recv(m->fd, buf + RTP_HDR, RTP_BUF - RTP_HDR, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0)
            return; /* EAGAIN, or an ICMP error from a peer gone: nothing to read */
        if ((size_t)n > RTP_BUF - RTP_HDR)
            continue; /* cut: not 20 ms of G.711, nor an event */
        rtp_in(m, buf + RTP_HDR, (size_t)n);
    }
}

/* Sends one 20 ms frame of the prompt; returns true when it just ended. */
static bool send_frame(sb_media *m)
{
    bool ended = false;
    if (m->prompt != NULL) {
        uint8_t pkt[RTP_HDR + FRAME_SAMPLES];
        uint8_t *frame = pkt + RTP_HDR;
        for (size_t i = 0; i < FRAME_SAMPLES; i++) {
            int16_t s = 0;
            if (m->pos < m->prompt->n)
                s = m->prompt->pcm[m->pos++];
            frame[i] = m->pt == 0 ? g711_pcm2ulaw(s) : g711_pcm2alaw(s);
        }
        rtp_out(m, pkt, FRAME_SAMPLES, m->marker, m->pt, m->ts);
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

/* The tick's work for one media (under mu): `frames` frames of its prompt,
 * its recording, and (`check`) the no-media watch. */
static void tick_one(sb_mediactx *mx, sb_media *m, int frames, uint64_t now, bool check)
{
    for (int f = 0; f < frames; f++) {
        if (send_frame(m)) {
            media_ev *e = ev_new(m, EV_PLAY_DONE);
            e->play_gen = m->play_gen;
            ev_put(mx, e);
        }
    }
    if (m->rec != NULL)
        rec_tick(m, now);
    if (check && !m->no_media_reported && !m->unwatched &&
        (m->expect_rx ? now - m->last_rx_ms > mx->no_media_ms : now - m->held_ms > HOLD_MAX_MS)) {
        m->no_media_reported = true;
        atomic_fetch_add(&mx->cnt->no_media_hangups, 1);
        ev_put(mx, ev_new(m, EV_NO_MEDIA));
    }
}

/* The 20 ms tick (mu not held). The media that started are listed once,
 * then served TICK_BATCH at a time, each batch under mu: the voice thread
 * never waits for a whole tick of a thousand calls, only for a batch. A
 * media freed meanwhile is skipped (its memory waits in the graveyard
 * until this round is over); one started meanwhile waits for the next. */
static void tick(sb_mediactx *mx)
{
    pthread_mutex_lock(&mx->mu);
    uint64_t now = sb_clock_mono_ms();
    if (list_isempty(&mx->active) || now < mx->next_ms) {
        pthread_mutex_unlock(&mx->mu);
        return;
    }
    /* averaged, so that one stall (a slow disk, a scheduler hiccup) does not
     * read as overload; a thread that stays behind does */
    uint64_t late = (atomic_load(&mx->late_ms) * 7 + (now - mx->next_ms)) / 8;
    atomic_store(&mx->late_ms, late);
    atomic_store(&mx->late_at_ms, now);
    int frames = 0;
    while (mx->next_ms <= now && frames < MAX_CATCHUP) {
        mx->next_ms += FRAME_MS;
        frames++;
    }
    if (mx->next_ms + FRAME_MS * MAX_CATCHUP < now)
        mx->next_ms = now + FRAME_MS; /* far behind (a stall): do not burst */
    bool check = mx->no_media_ms > 0 && now >= mx->next_check_ms;
    if (check)
        mx->next_check_ms = now + MEDIA_CHECK_MS;
    size_t n = 0;
    for (struct le *le = list_head(&mx->active); le != NULL; le = le->next) {
        if (n == mx->snap_cap) {
            mx->snap_cap = mx->snap_cap != 0 ? mx->snap_cap * 2 : 256;
            mx->snap = sb_xrealloc(mx->snap, mx->snap_cap * sizeof *mx->snap);
        }
        mx->snap[n++] = le->data;
    }
    pthread_mutex_unlock(&mx->mu);
    for (size_t i = 0; i < n; i += TICK_BATCH) {
        pthread_mutex_lock(&mx->mu);
        for (size_t k = i; k < n && k < i + TICK_BATCH; k++)
            if (!mx->snap[k]->dead)
                tick_one(mx, mx->snap[k], frames, now, check);
        pthread_mutex_unlock(&mx->mu);
    }
}

/* Under mu (or with the media thread stopped). */
static void release_dead(sb_mediactx *mx)
{
    while (mx->graveyard != NULL) {
        sb_media *m = mx->graveyard;
        mx->graveyard = m->next_dead;
        free(m);
    }
}

static void *media_main(void *arg)
{
    sb_mediactx *mx = arg;
    struct epoll_event evs[MAX_EVENTS];
    uint8_t buf[RTP_BUF];
    bool stop = false; /* media freed during a round stay in the graveyard until its end */
    while (!stop) {
        int timeout = -1;
        pthread_mutex_lock(&mx->mu);
        if (!list_isempty(&mx->active)) {
            uint64_t now = sb_clock_mono_ms();
            timeout = mx->next_ms > now ? (int)(mx->next_ms - now) : 0;
        }
        pthread_mutex_unlock(&mx->mu);
        int n = epoll_wait(mx->epfd, evs, MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno != EINTR) {
                sb_log(SB_ERROR, "voice", "media thread: epoll_wait: %s", strerror(errno));
                usleep(10000);
            }
            n = 0;
        }
        /* one socket at a time under mu (see tick) */
        for (int i = 0; i < n; i++) {
            sb_media *m = evs[i].data.ptr;
            if (m == NULL) {
                uint64_t v;
                (void)!read(mx->wakefd, &v, sizeof v);
                continue;
            }
            pthread_mutex_lock(&mx->mu);
            if (!m->dead)
                media_read(m, buf);
            pthread_mutex_unlock(&mx->mu);
        }
        tick(mx);
        pthread_mutex_lock(&mx->mu);
        stop = mx->stop;
        release_dead(mx); /* no event of this round names them any more */
        bool signal = mx->out_head != NULL && !mx->out_signalled && !stop;
        if (signal)
            mx->out_signalled = true;
        pthread_mutex_unlock(&mx->mu);
        if (signal && mqueue_push(mx->mq, 0, NULL) != 0) {
            pthread_mutex_lock(&mx->mu); /* the pipe is full: next round */
            mx->out_signalled = false;
            pthread_mutex_unlock(&mx->mu);
        }
    }
    return NULL;
}

/* ---- per call: set-up (voice thread) ---- */

static sb_media *media_alloc(sb_mediactx *mx, void *owner)
{
    sb_media *m = sb_xcalloc(1, sizeof *m);
    m->mx = mx;
    m->owner = owner;
    m->fd = -1;
    m->pt = -1;
    m->te_pt = -1;
    m->can_send = true;
    m->expect_rx = true;
    m->ssrc = rand_u32();
    m->seq = rand_u16();
    return m;
}

/* A UDP socket on `ip`, an even port in RTP_PORT_MIN..MAX picked at random,
 * watched by the media thread. */
static int media_socket(sb_media *m, const struct sa *ip)
{
    int fd = socket(sa_af(ip), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return SB_EIO;
    struct sa local = *ip;
    int err = EADDRINUSE;
    for (int i = 0; i < RTP_BIND_TRIES && err != 0; i++) {
        uint16_t port = (uint16_t)(RTP_PORT_MIN + (rand_u32() % ((RTP_PORT_MAX - RTP_PORT_MIN) / 2)) * 2);
        sa_set_port(&local, port);
        err = bind(fd, &local.u.sa, local.len) == 0 ? 0 : errno;
        if (err == 0)
            m->lport = port;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = m};
    if (err != 0 || epoll_ctl(m->mx->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        sb_log(SB_ERROR, "voice", "no RTP port: %s", strerror(err != 0 ? err : errno));
        close(fd);
        return SB_EIO;
    }
    m->fd = fd;
    return 0;
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

/* Under mu: the peer's side of the SDP just decoded: its address, and
 * which ways media may flow now (see "Hold, late offers" at the top). */
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

/* After sdp_decode (voice thread): the choice made, applied under mu. */
static int choose_remote(sb_media *m, bool need_addr)
{
    int pt = -1, te_pt = -1;
    if (sb_voice_sdp_choose(m->sdpm, need_addr, &pt, &te_pt) != 0)
        return SB_EINVAL;
    struct telev *telev = NULL;
    if (te_pt >= 0 && m->telev == NULL && telev_alloc(&telev, FRAME_MS) != 0)
        return SB_EIO;
    sb_inband *inband = NULL;
    if (te_pt < 0 && m->want_inband && m->inband == NULL) { /* listen for tones (see the top) */
        inband = sb_xmalloc(sizeof *inband);
        sb_inband_init(inband);
    }
    pthread_mutex_lock(&m->mx->mu);
    if (telev != NULL)
        m->telev = telev;
    if (inband != NULL)
        m->inband = inband;
    m->pt = pt;
    m->te_pt = te_pt;
    apply_remote(m);
    pthread_mutex_unlock(&m->mx->mu);
    return 0;
}

/* Frees what media_alloc and the set-up made, for a media whose set-up
 * failed: the socket is always the set-up's last step, so it has none and
 * the media thread never saw it. */
static void media_discard(sb_media *m)
{
    SB_ASSERT(m->fd < 0);
    mem_deref(m->telev);
    mem_deref(m->sdp);
    free(m->inband);
    free(m);
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
    if (media_socket(m, ip) != 0)
        goto fail;
    sdp_media_set_lport(m->sdpm, m->lport);
    *out = m;
    return 0;
fail:
    media_discard(m);
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
        err = media_socket(m, ip);
    if (err != 0) {
        sb_log(SB_ERROR, "voice", "cannot prepare an offer err=%d", err);
        media_discard(m);
        return SB_EIO;
    }
    sdp_media_set_lport(m->sdpm, m->lport);
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
    return m != NULL && m->late; /* voice thread only */
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
    uint64_t at = atomic_load(&mx->late_at_ms);
    if (at == 0 || sb_clock_mono_ms() - at >= 1000) /* no tick for a second: no media running */
        return 0;
    return atomic_load(&mx->late_ms);
}

void sb_media_watch(sb_media *m, bool on)
{
    pthread_mutex_lock(&m->mx->mu);
    if (on && m->unwatched)
        m->last_rx_ms = sb_clock_mono_ms();
    m->unwatched = !on;
    pthread_mutex_unlock(&m->mx->mu);
}

bool sb_media_held(const sb_media *m)
{
    /* written only by this (the voice) thread: no lock to read */
    return m != NULL && (!m->expect_rx || !m->can_send);
}

int sb_media_pt(const sb_media *m)
{
    return m->pt; /* written only by the voice thread */
}

void sb_media_bridge(sb_media *caller, sb_media *agent)
{
    pthread_mutex_lock(&caller->mx->mu);
    caller->prompt = NULL;
    caller->pos = 0;
    caller->play_gen++;
    caller->peer = agent;
    caller->to_agent = true;
    caller->relay_marker = true;
    agent->prompt = NULL;
    agent->play_gen++;
    agent->peer = caller;
    agent->to_agent = false;
    agent->relay_marker = true;
    pthread_mutex_unlock(&caller->mx->mu);
}

static void unbridge(sb_media *m)
{
    if (m->peer == NULL)
        return;
    m->peer->peer = NULL;
    m->peer = NULL;
}

void sb_media_unbridge(sb_media *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mx->mu);
    unbridge(m);
    pthread_mutex_unlock(&m->mx->mu);
}

int sb_media_answer_sdp(sb_media *m, struct mbuf **out)
{
    return sdp_encode(out, m->sdp, m->late) == 0 ? 0 : SB_EIO;
}

void sb_media_start(sb_media *m)
{
    sb_mediactx *mx = m->mx;
    pthread_mutex_lock(&mx->mu);
    bool wake = false;
    if (!m->started) {
        m->started = true;
        m->marker = true;
        m->ts = rand_u32();
        m->last_rx_ms = sb_clock_mono_ms();
        wake = list_isempty(&mx->active);
        list_append(&mx->active, &m->le, m);
        if (wake) {
            uint64_t now = sb_clock_mono_ms();
            mx->next_ms = now + FRAME_MS;
            mx->next_check_ms = now + MEDIA_CHECK_MS;
        }
    }
    pthread_mutex_unlock(&mx->mu);
    if (wake) { /* it may be waiting without a timeout */
        uint64_t one = 1;
        (void)!write(mx->wakefd, &one, sizeof one);
    }
}

int sb_media_play(sb_media *m, const char *path, bool loop)
{
    const sb_prompt *p = prompt_get(m->mx, path); /* the cache is this thread's; the disk outside the lock */
    pthread_mutex_lock(&m->mx->mu);
    m->prompt = p;
    m->pos = 0;
    m->loop = loop;
    m->marker = true;
    m->play_gen++;
    pthread_mutex_unlock(&m->mx->mu);
    return p != NULL ? 0 : SB_ENOTFOUND;
}

void sb_media_stop_play(sb_media *m)
{
    pthread_mutex_lock(&m->mx->mu);
    m->prompt = NULL;
    m->pos = 0;
    m->play_gen++;
    pthread_mutex_unlock(&m->mx->mu);
}

void sb_media_free(sb_media *m)
{
    if (m == NULL)
        return;
    sb_mediactx *mx = m->mx;
    pthread_mutex_lock(&mx->mu);
    if (m->rec != NULL)
        rec_end(m, SB_VOICE_REC_HANGUP, false);
    for (media_ev *e; (e = ev_take(mx, m, -1)) != NULL;) { /* undelivered: its owner goes too */
        free(e->path);
        free(e);
    }
    unbridge(m);
    if (m->started)
        list_unlink(&m->le);
    if (m->fd >= 0) {
        (void)epoll_ctl(mx->epfd, EPOLL_CTL_DEL, m->fd, NULL);
        close(m->fd);
        m->fd = -1;
    }
    struct telev *telev = m->telev;
    sb_inband *inband = m->inband;
    struct sdp_session *sdp = m->sdp; /* owns sdpm */
    m->dead = true;
    m->next_dead = mx->graveyard; /* an epoll event in the media thread's hands may name it */
    mx->graveyard = m;
    pthread_mutex_unlock(&mx->mu); /* m is the media thread's to free from here */
    mem_deref(telev);
    mem_deref(sdp);
    free(inband);
}
