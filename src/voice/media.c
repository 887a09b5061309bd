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
 * (PCMU <-> PCMA) otherwise. The caller's RFC 4733 events are not relayed
 * yet (they still reach the core as digits). */
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "base/clock.h"
#include "base/log.h"
#include "voice/voice_internal.h"

#define FRAME_MS       20
#define FRAME_SAMPLES  160
#define RTP_PORT_MIN   10000
#define RTP_PORT_MAX   60000
#define PROMPT_MAX     (8000 * 600) /* samples: ten minutes */
#define MAX_CATCHUP    5            /* frames sent at once after a late tick */
#define MEDIA_CHECK_MS 1000

typedef struct sb_prompt {
    struct le le;
    char *path;
    int16_t *pcm;
    size_t n;
} sb_prompt;

struct sb_mediactx {
    sb_voice_counters *cnt;
    sb_media_hooks hooks;
    uint64_t no_media_ms;
    struct list active; /* sb_media that started */
    struct tmr ticker;
    uint64_t next_ms;
    uint64_t next_check_ms;
    struct list prompts;
    struct mbuf *mb;
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
    *out = mx;
    return 0;
}

void sb_mediactx_free(sb_mediactx *mx)
{
    if (mx == NULL)
        return;
    SB_ASSERT(list_isempty(&mx->active));
    tmr_cancel(&mx->ticker);
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
    if (rtp_send(to->rtp, &to->raddr, false, marker, (uint8_t)to->pt, hdr->ts, mb) == 0) {
        atomic_fetch_add(&mx->cnt->rtp_packets_sent, 1);
        atomic_fetch_add(m->to_agent ? &mx->cnt->rtp_relayed_to_agent : &mx->cnt->rtp_relayed_to_caller, 1);
    }
}

static void rtp_recv(const struct sa *src, const struct rtp_header *hdr, struct mbuf *mb, void *arg)
{
    sb_media *m = arg;
    sb_mediactx *mx = m->mx;
    atomic_fetch_add(&mx->cnt->rtp_packets_received, 1);
    m->last_rx_ms = sb_clock_mono_ms();
    if (m->peer != NULL && hdr->pt == (uint8_t)m->pt) {
        relay(m, hdr, mb);
        return;
    }
    if (m->te_pt < 0 || hdr->pt != (uint8_t)m->te_pt || m->telev == NULL)
        return;
    int event = -1;
    bool end = false;

    if (telev_recv(m->telev, mb, &event, &end) != 0)
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

int sb_media_new(sb_media **out, sb_mediactx *mx, void *owner, const struct sa *ip, const struct sip_msg *msg)
{
    *out = NULL;
    sb_media *m = sb_xcalloc(1, sizeof *m);
    m->mx = mx;
    m->owner = owner;
    m->pt = -1;
    m->te_pt = -1;
    int rc = SB_EIO;
    int err = sdp_session_alloc(&m->sdp, ip);
    if (err == 0)
        err = sdp_media_add(&m->sdpm, m->sdp, "audio", 0, "RTP/AVP");
    if (err != 0 || sb_voice_sdp_formats(m->sdpm) != 0)
        goto fail;
    if (mbuf_get_left(msg->mb) == 0 || msg_ctype_cmp(&msg->ctyp, "application", "sdp") == false) {
        rc = SB_EINVAL; /* no offer: late offers are not supported yet */
        goto fail;
    }
    err = sdp_decode(m->sdp, msg->mb, true);
    if (err != 0 || sb_voice_sdp_choose(m->sdpm, &m->pt, &m->te_pt) != 0) {
        rc = SB_EINVAL;
        goto fail;
    }
    m->raddr = *sdp_media_raddr(m->sdpm);
    err = rtp_listen(&m->rtp, IPPROTO_UDP, ip, RTP_PORT_MIN, RTP_PORT_MAX, false, rtp_recv, NULL, m);
    if (err != 0) {
        sb_log(SB_ERROR, "voice", "no RTP port err=%d", err);
        goto fail;
    }
    sdp_media_set_lport(m->sdpm, sa_port(rtp_local(m->rtp)));
    if (m->te_pt >= 0 && telev_alloc(&m->telev, FRAME_MS) != 0)
        goto fail;
    *out = m;
    return 0;
fail:
    sb_media_free(m);
    return rc;
}

int sb_media_new_offer(sb_media **out, sb_mediactx *mx, void *owner, const struct sa *ip, int pt)
{
    *out = NULL;
    sb_media *m = sb_xcalloc(1, sizeof *m);
    m->mx = mx;
    m->owner = owner;
    m->pt = -1;
    m->te_pt = -1;
    int err = sdp_session_alloc(&m->sdp, ip);
    if (err == 0)
        err = sdp_media_add(&m->sdpm, m->sdp, "audio", 0, "RTP/AVP");
    if (err == 0)
        err = sdp_format_add(NULL, m->sdpm, false, pt == 0 ? "0" : "8", pt == 0 ? "PCMU" : "PCMA", 8000, 1, NULL, NULL,
                             NULL, false, NULL);
    if (err == 0)
        err = sdp_format_add(NULL, m->sdpm, false, "101", telev_rtpfmt, 8000, 1, NULL, NULL, NULL, false, "0-15");
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
    if (sdp_decode(m->sdp, msg->mb, false) != 0 || sb_voice_sdp_choose(m->sdpm, &m->pt, &m->te_pt) != 0)
        return SB_EINVAL;
    m->raddr = *sdp_media_raddr(m->sdpm);
    if (m->te_pt >= 0 && m->telev == NULL && telev_alloc(&m->telev, FRAME_MS) != 0)
        return SB_EIO;
    return 0;
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
    return sdp_encode(out, m->sdp, false) == 0 ? 0 : SB_EIO;
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
    sb_media_unbridge(m);
    if (m->started) {
        list_unlink(&m->le);
        if (list_isempty(&m->mx->active))
            tmr_cancel(&m->mx->ticker);
    }
    mem_deref(m->telev);
    mem_deref(m->rtp);
    mem_deref(m->sdp); /* owns sdpm */
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
        if (rtp_send(m->rtp, &m->raddr, false, m->marker, (uint8_t)m->pt, m->ts, mb) == 0)
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
    if (mx->no_media_ms > 0 && now >= mx->next_check_ms) {
        mx->next_check_ms = now + MEDIA_CHECK_MS;
        /* A hook may free other media too (a bridged peer): look again from
         * the head after each one; a flag keeps each report to one. */
        for (;;) {
            sb_media *silent = NULL;
            for (struct le *le = list_head(&mx->active); le != NULL && silent == NULL; le = le->next) {
                sb_media *m = le->data;
                if (!m->no_media_reported && now - m->last_rx_ms > mx->no_media_ms)
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
