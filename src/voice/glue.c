/* glue.c - the few things of our own that read what peers send over SIP
 * and RTP: user parts, DTMF in SIP INFO bodies, digest nonces, the SDP
 * offer's codecs, RTP headers. Kept apart (and free of state) so tests/fuzz/fuzz_sip.c can
 * feed them anything. libre parses the SIP and SDP syntax itself. */
#include <stdio.h>
#include <string.h>

#include "base/crypto.h"
#include "voice/voice_internal.h"

bool sb_voice_user_valid(const char *p, size_t len)
{
    if (p == NULL || len == 0 || len >= SB_VOICE_EXT_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '+' || c == '*' ||
                  c == '#' || c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool sb_voice_user_copy(const struct pl *pl, char out[SB_VOICE_EXT_MAX])
{
    out[0] = '\0';
    if (pl == NULL || !sb_voice_user_valid(pl->p, pl->l))
        return false;
    memcpy(out, pl->p, pl->l);
    out[pl->l] = '\0';
    return true;
}

static char dtmf_digit(const char *p, size_t len)
{
    if (len == 1) {
        char c = p[0];
        if ((c >= '0' && c <= '9') || c == '*' || c == '#')
            return c;
        if (c >= 'A' && c <= 'D')
            return c;
        if (c >= 'a' && c <= 'd')
            return (char)(c - 'a' + 'A');
        return 0;
    }
    /* Some phones send RFC 4733 event codes: 10 = '*', 11 = '#', 12-15 = A-D. */
    if (len == 2 && p[0] == '1' && p[1] >= '0' && p[1] <= '5')
        return "*#ABCD"[p[1] - '0'];
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

int sb_voice_dtmf_relay_parse(const char *body, size_t len, bool relay, char *digit)
{
    *digit = 0;
    if (body == NULL || len == 0 || len > 1024)
        return SB_EINVAL;
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol != NULL ? eol : end;
        const char *a = p, *b = line_end;
        while (a < b && is_space(*a))
            a++;
        while (b > a && (is_space(b[-1]) || b[-1] == '\r'))
            b--;
        if (!relay) {
            if (b > a) {
                *digit = dtmf_digit(a, (size_t)(b - a));
                return *digit != 0 ? 0 : SB_EINVAL;
            }
        } else if (b - a > 6 && strncasecmp(a, "Signal", 6) == 0) {
            const char *v = a + 6;
            while (v < b && is_space(*v))
                v++;
            if (v >= b || *v != '=')
                return SB_EINVAL;
            v++;
            while (v < b && is_space(*v))
                v++;
            *digit = dtmf_digit(v, (size_t)(b - v));
            return *digit != 0 ? 0 : SB_EINVAL;
        }
        p = eol != NULL ? eol + 1 : end;
    }
    return SB_EINVAL;
}

static void nonce_mac(const char *secret, const char *head_hex, char out[65])
{
    sb_hmac_sha256_hex(secret, strlen(secret), head_hex, 32, out);
}

void sb_voice_nonce_make(const char *secret, uint64_t expires_ms, uint64_t seq, char out[SB_VOICE_NONCE_LEN + 1])
{
    char mac[65];
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)expires_ms, (unsigned long long)seq);
    nonce_mac(secret, out, mac);
    memcpy(out + 32, mac, 32);
    out[SB_VOICE_NONCE_LEN] = '\0';
}

int sb_voice_nonce_check(const char *secret, const char *nonce, size_t len, uint64_t now_ms)
{
    if (nonce == NULL || len != SB_VOICE_NONCE_LEN)
        return SB_EINVAL;
    char head[33], mac[65], given[33];
    uint64_t at = 0;
    for (size_t i = 0; i < 32; i++) {
        char c = nonce[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return SB_EINVAL;
        if (i < 16)
            at = at << 4 | (uint64_t)d;
        head[i] = c;
    }
    head[32] = '\0';
    nonce_mac(secret, head, mac);
    mac[32] = '\0';
    memcpy(given, nonce + 32, 32);
    given[32] = '\0';
    if (!sb_consttime_streq(mac, given))
        return SB_EINVAL;
    return now_ms > at ? 1 : 0;
}

int sb_voice_invite_parties(const struct sip_msg *msg, char from[SB_VOICE_EXT_MAX], char to[SB_VOICE_EXT_MAX])
{
    if (msg == NULL || !sb_voice_user_copy(&msg->uri.user, to))
        return SB_EINVAL;
    if (!sb_voice_user_copy(&msg->from.uri.user, from))
        return SB_EINVAL;
    return 0;
}

int sb_voice_sdp_formats(struct sdp_media *m)
{
    int err = sdp_format_add(NULL, m, false, "0", "PCMU", 8000, 1, NULL, NULL, NULL, false, NULL);
    if (err == 0)
        err = sdp_format_add(NULL, m, false, "8", "PCMA", 8000, 1, NULL, NULL, NULL, false, NULL);
    if (err == 0)
        err = sdp_format_add(NULL, m, false, NULL, telev_rtpfmt, 8000, 1, NULL, NULL, NULL, false, "0-15");
    return err == 0 ? 0 : SB_ENOMEM;
}

int sb_voice_sdp_choose(const struct sdp_media *m, bool need_addr, int *audio_pt, int *telev_pt)
{
    *audio_pt = -1;
    *telev_pt = -1;
    if (m == NULL || (need_addr && (sdp_media_rport(m) == 0 || !sa_isset(sdp_media_raddr(m), SA_ADDR))))
        return SB_EINVAL;
    const struct list *rl = sdp_media_format_lst(m, false);
    for (const struct le *le = list_head(rl); le != NULL; le = le->next) {
        const struct sdp_format *f = le->data;
        if (f == NULL)
            continue;
        /* Static types 0 and 8 may come without an rtpmap line. */
        if (*audio_pt < 0 && (f->pt == 0 || f->pt == 8)) {
            const char *want = f->pt == 0 ? "PCMU" : "PCMA";
            if (f->name == NULL || (str_casecmp(f->name, want) == 0 && (f->srate == 0 || f->srate == 8000)))
                *audio_pt = f->pt;
        }
        if (*telev_pt < 0 && f->name != NULL && str_casecmp(f->name, telev_rtpfmt) == 0 && f->pt >= 96 && f->pt <= 127)
            *telev_pt = f->pt;
    }
    return *audio_pt >= 0 ? 0 : SB_EINVAL;
}

int sb_voice_rtp_parse(const uint8_t *p, size_t n, sb_rtp_pkt *out)
{
    if (n < 12 || (p[0] >> 6) != 2)
        return SB_EINVAL;
    size_t off = 12 + 4u * (p[0] & 0x0fu);
    if (p[0] & 0x10u) { /* a header extension: 4 bytes, then its length in words */
        if (n < off + 4)
            return SB_EINVAL;
        off += 4 + 4u * (((size_t)p[off + 2] << 8) | p[off + 3]);
    }
    if (off > n)
        return SB_EINVAL;
    size_t end = n;
    if (p[0] & 0x20u) { /* padding: its count is the last byte */
        size_t pad = p[n - 1];
        if (pad == 0 || pad > n - off)
            return SB_EINVAL;
        end = n - pad;
    }
    out->marker = (p[1] & 0x80u) != 0;
    out->pt = p[1] & 0x7fu;
    out->seq = (uint16_t)((p[2] << 8) | p[3]);
    out->ts = ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) | ((uint32_t)p[6] << 8) | p[7];
    out->ssrc = ((uint32_t)p[8] << 24) | ((uint32_t)p[9] << 16) | ((uint32_t)p[10] << 8) | p[11];
    out->off = off;
    out->len = end - off;
    return 0;
}
