/* test_voice_glue.c - what src/voice/glue.c reads from peers: the RTP
 * header reader of the media thread (sb_voice_rtp_parse: the fixed
 * header's fields, CSRCs, a header extension and padding skipped, every
 * malformed length refused) and the digest nonces (unique within a
 * millisecond, forged and expired ones told apart). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "voice/voice_internal.h"

static void test_plain_packet(void **state)
{
    (void)state;
    uint8_t p[12 + 160];
    memset(p, 0xd5, sizeof p);
    const uint8_t hdr[12] = {0x80, 0x88, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04};
    memcpy(p, hdr, sizeof hdr);
    sb_rtp_pkt h;
    assert_int_equal(sb_voice_rtp_parse(p, sizeof p, &h), 0);
    assert_true(h.marker);
    assert_int_equal(h.pt, 8);
    assert_int_equal(h.seq, 0x1234);
    assert_int_equal(h.ts, 0xdeadbeefu);
    assert_int_equal(h.ssrc, 0x01020304u);
    assert_int_equal(h.off, 12);
    assert_int_equal(h.len, 160);
    p[1] = 0x00;                                        /* PCMU, no marker */
    assert_int_equal(sb_voice_rtp_parse(p, 12, &h), 0); /* an empty payload is a packet */
    assert_false(h.marker);
    assert_int_equal(h.pt, 0);
    assert_int_equal(h.len, 0);
}

static void test_csrc_extension_padding(void **state)
{
    (void)state;
    uint8_t p[64] = {0};
    p[0] = 0x80 | 0x20 | 0x10 | 2; /* padding, extension, two CSRCs */
    p[1] = 101;
    /* 12 + 8 bytes of CSRCs; the extension: profile, length 1 word, 4 bytes */
    p[20] = 0xbe;
    p[21] = 0xde;
    p[22] = 0;
    p[23] = 1;
    size_t off = 12 + 8 + 4 + 4;
    memset(p + off, 0x0a, 4); /* an RFC 4733 event: 4 bytes */
    size_t n = off + 4 + 3;   /* and 3 bytes of padding */
    p[n - 1] = 3;
    sb_rtp_pkt h;
    assert_int_equal(sb_voice_rtp_parse(p, n, &h), 0);
    assert_int_equal(h.pt, 101);
    assert_int_equal(h.off, off);
    assert_int_equal(h.len, 4);
}

static void test_malformed(void **state)
{
    (void)state;
    uint8_t p[40] = {0};
    sb_rtp_pkt h;
    p[0] = 0x80;
    assert_int_equal(sb_voice_rtp_parse(p, 11, &h), SB_EINVAL); /* shorter than the fixed header */
    p[0] = 0x40;
    assert_int_equal(sb_voice_rtp_parse(p, 40, &h), SB_EINVAL); /* version 1 */
    p[0] = 0x80 | 15;
    assert_int_equal(sb_voice_rtp_parse(p, 40, &h), SB_EINVAL); /* 15 CSRCs do not fit */
    p[0] = 0x80 | 0x10;
    assert_int_equal(sb_voice_rtp_parse(p, 14, &h), SB_EINVAL); /* the extension's header cut */
    p[14] = 0;
    p[15] = 200;
    assert_int_equal(sb_voice_rtp_parse(p, 40, &h), SB_EINVAL); /* an extension longer than the packet */
    p[0] = 0x80 | 0x20;
    p[39] = 0;
    assert_int_equal(sb_voice_rtp_parse(p, 40, &h), SB_EINVAL); /* padding of 0 */
    p[39] = 29;
    assert_int_equal(sb_voice_rtp_parse(p, 40, &h), SB_EINVAL); /* more padding than payload */
    p[39] = 28;
    assert_int_equal(sb_voice_rtp_parse(p, 40, &h), 0); /* all of the payload is padding */
    assert_int_equal(h.len, 0);
}

static void test_nonces(void **state)
{
    (void)state;
    char a[SB_VOICE_NONCE_LEN + 1], b[SB_VOICE_NONCE_LEN + 1];
    sb_voice_nonce_make("k", 5000, 1, a);
    sb_voice_nonce_make("k", 5000, 2, b);
    assert_int_equal(strlen(a), SB_VOICE_NONCE_LEN);
    assert_string_not_equal(a, b); /* the same millisecond: still two nonces (replays are told by nonce) */
    assert_int_equal(sb_voice_nonce_check("k", a, strlen(a), 4999), 0);
    assert_int_equal(sb_voice_nonce_check("k", a, strlen(a), 5001), 1); /* stale */
    assert_int_equal(sb_voice_nonce_check("other key", a, strlen(a), 0), SB_EINVAL);
    a[20] = a[20] == '0' ? '1' : '0'; /* another sequence number under the same MAC */
    assert_int_equal(sb_voice_nonce_check("k", a, strlen(a), 0), SB_EINVAL);
    assert_int_equal(sb_voice_nonce_check("k", b, 48, 0), SB_EINVAL); /* the old length */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_packet),
        cmocka_unit_test(test_csrc_extension_padding),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_nonces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
