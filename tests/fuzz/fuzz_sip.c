/* fuzz_sip.c - libFuzzer target for the SIP/SDP glue of our own
 * (src/voice/glue.c): the input is decoded by libre as a SIP message, then
 * handed to what the voice thread does with one -- the INVITE's parties, the
 * SDP offer's codec choice, a SIP INFO DTMF body, a digest nonce -- and read
 * as an RTP packet's header. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "voice/voice_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_sdp(struct mbuf *body)
{
    struct sa laddr;
    sa_set_str(&laddr, "127.0.0.1", 0);
    struct sdp_session *sess = NULL;
    struct sdp_media *m = NULL;
    if (sdp_session_alloc(&sess, &laddr) != 0)
        return;
    if (sdp_media_add(&m, sess, "audio", 4000, "RTP/AVP") == 0 && sb_voice_sdp_formats(m) == 0 &&
        sdp_decode(sess, body, true) == 0) {
        int audio = -1, telev = -1;
        if (sb_voice_sdp_choose(m, true, &audio, &telev) == 0) {
            SB_ASSERT(audio == 0 || audio == 8);
            SB_ASSERT(telev == -1 || (telev >= 96 && telev <= 127));
            struct mbuf *answer = NULL;
            if (sdp_encode(&answer, sess, false) == 0)
                mem_deref(answer);
        }
    }
    mem_deref(sess);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A DTMF body and a nonce straight from the bytes. */
    char digit = 0;
    if (sb_voice_dtmf_relay_parse((const char *)data, size, true, &digit) == 0)
        SB_ASSERT(digit != 0 && strchr("0123456789*#ABCD", digit) != NULL);
    if (sb_voice_dtmf_relay_parse((const char *)data, size, false, &digit) == 0)
        SB_ASSERT(digit != 0);
    SB_ASSERT(sb_voice_nonce_check("fuzz-secret", (const char *)data, size, 0) != 0 || size == SB_VOICE_NONCE_LEN);
    char nonce[SB_VOICE_NONCE_LEN + 1], other[SB_VOICE_NONCE_LEN + 1];
    sb_voice_nonce_make("fuzz-secret", 1000, 7, nonce);
    sb_voice_nonce_make("fuzz-secret", 1000, 8, other);
    SB_ASSERT(strcmp(nonce, other) != 0); /* the same millisecond, two nonces */
    SB_ASSERT(sb_voice_nonce_check("fuzz-secret", nonce, SB_VOICE_NONCE_LEN, 999) == 0);
    SB_ASSERT(sb_voice_nonce_check("fuzz-secret", nonce, SB_VOICE_NONCE_LEN, 1001) == 1);

    /* The same bytes as an RTP packet: the payload stays inside them. */
    sb_rtp_pkt rtp;
    if (sb_voice_rtp_parse(data, size, &rtp) == 0)
        SB_ASSERT(rtp.off >= 12 && rtp.off <= size && rtp.len <= size - rtp.off && rtp.pt < 128);

    struct mbuf *mb = mbuf_alloc(size + 1);
    if (mb == NULL)
        return 0;
    (void)mbuf_write_mem(mb, data, size);
    mb->pos = 0;
    struct sip_msg *msg = NULL;
    if (sip_msg_decode(&msg, mb) == 0) {
        char from[SB_VOICE_EXT_MAX], to[SB_VOICE_EXT_MAX];
        if (sb_voice_invite_parties(msg, from, to) == 0)
            SB_ASSERT(sb_voice_user_valid(from, strlen(from)) && sb_voice_user_valid(to, strlen(to)));
        if (mbuf_get_left(msg->mb) > 0) {
            if (sb_voice_dtmf_relay_parse((const char *)mbuf_buf(msg->mb), mbuf_get_left(msg->mb), true, &digit) == 0)
                SB_ASSERT(digit != 0);
            check_sdp(msg->mb);
        }
        mem_deref(msg);
    }
    mem_deref(mb);
    return 0;
}
