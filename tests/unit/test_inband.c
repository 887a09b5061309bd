/* test_inband.c - the in-band DTMF detector (src/voice/inband.c) on
 * synthesized audio fed in 20 ms frames: every digit at -5 to -25 dBm0,
 * twist inside and outside the limits, tones of 30 ms (never a digit) and
 * 40-50 ms (always one) at every alignment with the frames, pauses that
 * separate digits and drop-outs that do not, noise, sweeps and a
 * speech-like signal (no digit at all), and tones through G.711 (an
 * encoder here, the daemon's decoder). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "voice/inband.h"
#include "voice/wav.h"

#define RATE  8000
#define FRAME 160
#define MAXS  (RATE * 30) /* samples in one signal */

static const char DIGITS[] = "123A456B789C*0#D";
static const double ROWS[4] = {697, 770, 852, 941};
static const double COLS[4] = {1209, 1336, 1477, 1633};

/* ---- building signals ---- */

typedef struct sig {
    int16_t *s;
    size_t n;
    double phase_r, phase_c; /* tones go on in phase across pieces */
} sig;

static sig *sig_new(void)
{
    sig *g = calloc(1, sizeof *g);
    assert_non_null(g);
    g->s = calloc(MAXS, sizeof(int16_t));
    assert_non_null(g->s);
    return g;
}

static void sig_free(sig *g)
{
    free(g->s);
    free(g);
}

/* The peak of a sine at `dbm0` (a 0 dBm0 sine peaks at about 22,800:
 * G.711's full scale is +3.14 dBm0). */
static double amp(double dbm0)
{
    return 22800.0 * pow(10.0, dbm0 / 20.0);
}

static int16_t clip(double v)
{
    if (v > 32767)
        return 32767;
    if (v < -32768)
        return -32768;
    return (int16_t)lrint(v);
}

static void silence(sig *g, double ms)
{
    size_t n = (size_t)lrint(ms * RATE / 1000);
    assert_true(g->n + n <= MAXS);
    memset(g->s + g->n, 0, n * sizeof(int16_t));
    g->n += n;
}

/* Samples of silence (for alignments finer than a millisecond). */
static void silence_samples(sig *g, size_t n)
{
    assert_true(g->n + n <= MAXS);
    memset(g->s + g->n, 0, n * sizeof(int16_t));
    g->n += n;
}

/* Two sines, `fr` at `dr` dBm0 and `fc` at `dc` dBm0, for `ms`. */
static void tones(sig *g, double fr, double dr, double fc, double dc, double ms)
{
    size_t n = (size_t)lrint(ms * RATE / 1000);
    assert_true(g->n + n <= MAXS);
    double ar = amp(dr), ac = amp(dc);
    for (size_t i = 0; i < n; i++) {
        g->s[g->n + i] = clip(ar * sin(g->phase_r) + ac * sin(g->phase_c));
        g->phase_r += 2 * M_PI * fr / RATE;
        g->phase_c += 2 * M_PI * fc / RATE;
    }
    g->n += n;
}

static void digit_at(sig *g, char digit, double dr, double dc, double ms)
{
    const char *p = strchr(DIGITS, digit);
    assert_non_null(p);
    int i = (int)(p - DIGITS);
    tones(g, ROWS[i / 4], dr, COLS[i % 4], dc, ms);
}

static void digit(sig *g, char d, double dbm0, double ms)
{
    digit_at(g, d, dbm0, dbm0, ms);
}

/* A fixed pseudo-random sequence (the same every run). */
static uint32_t lcg = 12345;

static double uniform(void)
{
    lcg = lcg * 1103515245u + 12345u;
    return (double)(lcg >> 8) / (double)(1u << 24) * 2 - 1;
}

/* Adds white noise of RMS `rms` to the whole signal. */
static void add_noise(sig *g, double rms)
{
    for (size_t i = 0; i < g->n; i++)
        g->s[i] = clip(g->s[i] + rms * sqrt(3.0) * uniform());
}

/* ---- feeding the detector ---- */

/* Runs a fresh detector over the signal in chunks of `chunk` samples;
 * the digits found, as a string. */
static const char *detect_chunked(const sig *g, size_t chunk)
{
    static char found[256];
    size_t nfound = 0;
    sb_inband d;
    sb_inband_init(&d);
    for (size_t at = 0; at < g->n; at += chunk) {
        size_t n = g->n - at < chunk ? g->n - at : chunk;
        char out[8];
        size_t k = sb_inband_feed(&d, g->s + at, n, out, sizeof out);
        for (size_t i = 0; i < k && nfound + 1 < sizeof found; i++)
            found[nfound++] = out[i];
    }
    found[nfound] = '\0';
    return found;
}

static const char *detect(const sig *g)
{
    return detect_chunked(g, FRAME);
}

/* ---- G.711 encoders (ITU-T G.711; the daemon only decodes) ---- */

static uint8_t ulaw_encode(int16_t pcm)
{
    int sign = pcm < 0 ? 0x80 : 0;
    int v = pcm < 0 ? -(int)pcm : pcm;
    if (v > 32635)
        v = 32635;
    v += 0x84;
    int exp = 7;
    for (int mask = 0x4000; (v & mask) == 0 && exp > 0; mask >>= 1)
        exp--;
    int mant = (v >> (exp + 3)) & 0x0f;
    return (uint8_t) ~(sign | exp << 4 | mant);
}

static uint8_t alaw_encode(int16_t pcm)
{
    static const int seg_end[8] = {0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff};
    int v = pcm >> 3; /* 13 bits */
    int mask = 0xd5;
    if (v < 0) {
        mask = 0x55;
        v = -v - 1;
    }
    int seg = 0;
    while (seg < 8 && v > seg_end[seg])
        seg++;
    if (seg >= 8)
        return (uint8_t)(0x7f ^ mask);
    int aval = seg << 4;
    aval |= seg < 2 ? (v >> 1) & 0x0f : (v >> seg) & 0x0f;
    return (uint8_t)(aval ^ mask);
}

/* The signal as a G.711 call carries it: encoded, then decoded by the
 * daemon's decoder (pt 0 µ-law, 8 A-law). */
static void through_g711(sig *g, int pt)
{
    for (size_t i = 0; i < g->n; i++) {
        uint8_t b = pt == 0 ? ulaw_encode(g->s[i]) : alaw_encode(g->s[i]);
        sb_g711_decode(pt, &b, 1, &g->s[i]);
    }
}

/* ---- tests ---- */

static void test_every_digit_every_level(void **state)
{
    (void)state;
    static const double levels[] = {-5, -10, -15, -20, -25};
    for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
        for (const char *p = DIGITS; *p != '\0'; p++) {
            sig *g = sig_new();
            silence(g, 100);
            digit(g, *p, levels[l], 60);
            silence(g, 100);
            char want[2] = {*p, '\0'};
            const char *got = detect(g);
            if (strcmp(got, want) != 0)
                fail_msg("digit %c at %.0f dBm0: got \"%s\"", *p, levels[l], got);
            sig_free(g);
        }
    }
    /* a key held down for a second is one digit */
    sig *g = sig_new();
    silence(g, 50);
    digit(g, '5', -10, 1000);
    silence(g, 50);
    assert_string_equal(detect(g), "5");
    sig_free(g);
    /* too quiet (-40 dBm0), or one tone alone, is nothing */
    g = sig_new();
    digit(g, '5', -40, 200);
    silence(g, 100);
    tones(g, 770, -10, 770, -90, 200);
    silence(g, 100);
    tones(g, 1336, -10, 1336, -90, 200);
    silence(g, 100);
    assert_string_equal(detect(g), "");
    sig_free(g);
}

static void test_twist(void **state)
{
    (void)state;
    for (const char *p = DIGITS; *p != '\0'; p++) {
        char want[2] = {*p, '\0'};
        struct {
            double row, col;
            bool detected;
        } cases[] = {
            {-10, -16, true},  /* normal twist 6 dB (row louder): within 8 */
            {-8, -18, false},  /* 10 dB */
            {-14, -12, true},  /* reverse twist 2 dB (column louder): within 4 */
            {-16, -10, false}, /* 6 dB */
            {-25, -31, true},  /* 6 dB normal near the floor */
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            sig *g = sig_new();
            silence(g, 60);
            digit_at(g, *p, cases[i].row, cases[i].col, 80);
            silence(g, 60);
            const char *got = detect(g);
            if (strcmp(got, cases[i].detected ? want : "") != 0)
                fail_msg("digit %c row %.0f col %.0f dBm0: got \"%s\"", *p, cases[i].row, cases[i].col, got);
            sig_free(g);
        }
    }
}

/* A digit's tones at -10 dBm0 with a third sine at `f` (dBm0 `db`). */
static const char *digit_plus(char d, double f, double db)
{
    sig *g = sig_new();
    silence(g, 60);
    size_t at = g->n;
    digit(g, d, -10, 80);
    double a = amp(db), ph = 0;
    for (size_t i = at; i < g->n; i++) {
        g->s[i] = clip(g->s[i] + a * sin(ph));
        ph += 2 * M_PI * f / RATE;
    }
    silence(g, 60);
    const char *got = detect(g);
    sig_free(g);
    return got;
}

static void test_harmonics_and_third_tones(void **state)
{
    (void)state;
    for (int i = 0; i < 16; i++) {
        char d = DIGITS[i], want[2] = {d, '\0'};
        double fr = ROWS[i / 4], fc = COLS[i % 4];
        struct {
            double f, db;
            bool detected;
        } cases[] = {
            {2 * fr, -15, false},                /* the row's second harmonic 5 dB under it: a voice, not a key */
            {2 * fr, -24, true},                 /* 14 dB under: a key with some distortion */
            {2 * fc, -20, false},                /* the column's, 10 dB under */
            {2 * fc, -30, true},                 /* 20 dB under */
            {500, -10, false},                   /* another sound as loud: the tones are not most of it */
            {500, -25, true},                    /* 15 dB under: they are */
            {fr == 697 ? 852 : 697, -15, false}, /* a second row tone 5 dB under: no peak */
        };
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            const char *got = digit_plus(d, cases[k].f, cases[k].db);
            if (strcmp(got, cases[k].detected ? want : "") != 0)
                fail_msg("%c with %.0f Hz at %.0f dBm0: got \"%s\"", d, cases[k].f, cases[k].db, got);
        }
    }
}

/* A tone of `ms` after `lead` samples of silence, for every alignment
 * with the 20 ms frames and the detector's 5 ms hops. */
static void check_duration(double ms, bool detected, double dbm0, int pt)
{
    for (const char *p = DIGITS; *p != '\0'; p++) {
        for (size_t lead = 0; lead < FRAME; lead += 3) {
            sig *g = sig_new();
            silence_samples(g, 200 + lead);
            digit(g, *p, dbm0, ms);
            silence(g, 100);
            if (pt >= 0)
                through_g711(g, pt);
            char want[2] = {*p, '\0'};
            const char *got = detect(g);
            if (strcmp(got, detected ? want : "") != 0)
                fail_msg("%c for %.0f ms at %.0f dBm0 (lead %zu, pt %d): got \"%s\"", *p, ms, dbm0, lead, pt, got);
            sig_free(g);
        }
    }
}

static void test_durations(void **state)
{
    (void)state;
    check_duration(30, false, -5, -1);
    check_duration(30, false, -25, -1);
    check_duration(50, true, -5, -1);
    check_duration(50, true, -25, -1);
    check_duration(40, true, -10, -1); /* the shortest a digit lasts (ITU-T Q.24) */
    check_duration(25, false, -10, -1);
}

static void test_pauses(void **state)
{
    (void)state;
    /* 50 ms apart: two digits, the same one too */
    sig *g = sig_new();
    silence(g, 50);
    digit(g, '7', -12, 60);
    silence(g, 50);
    digit(g, '7', -12, 60);
    silence(g, 50);
    digit(g, '8', -12, 60);
    silence(g, 50);
    assert_string_equal(detect(g), "778");
    sig_free(g);
    /* a drop-out of 20 ms (or 25) inside a tone is one digit, at every
     * alignment */
    for (size_t lead = 0; lead < FRAME; lead += 5) {
        for (double gap = 10; gap <= 25; gap += 5) {
            g = sig_new();
            silence_samples(g, 200 + lead);
            digit(g, '3', -15, 80);
            silence(g, gap);
            digit(g, '3', -15, 80);
            silence(g, 50);
            const char *got = detect(g);
            if (strcmp(got, "3") != 0)
                fail_msg("gap %.0f ms, lead %zu: got \"%s\"", gap, lead, got);
            sig_free(g);
        }
    }
    /* 40 ms or more apart: two, at every alignment */
    for (size_t lead = 0; lead < FRAME; lead += 5) {
        g = sig_new();
        silence_samples(g, 200 + lead);
        digit(g, '#', -15, 50);
        silence(g, 40);
        digit(g, '#', -15, 50);
        silence(g, 50);
        const char *got = detect(g);
        if (strcmp(got, "##") != 0)
            fail_msg("40 ms pause, lead %zu: got \"%s\"", lead, got);
        sig_free(g);
    }
    /* a whole number dialled fast: 50 ms on, 50 ms off */
    g = sig_new();
    for (const char *p = "0123456789*#ABCD"; *p != '\0'; p++) {
        digit(g, *p, -10, 50);
        silence(g, 50);
    }
    assert_string_equal(detect(g), "0123456789*#ABCD");
    sig_free(g);
    /* one key straight after another, no pause: both, once each */
    g = sig_new();
    digit(g, '1', -10, 100);
    digit(g, '2', -10, 100);
    silence(g, 50);
    assert_string_equal(detect(g), "12");
    sig_free(g);
}

static void test_chunks_do_not_matter(void **state)
{
    (void)state;
    sig *g = sig_new();
    for (const char *p = "159D"; *p != '\0'; p++) {
        silence(g, 47);
        digit(g, *p, -18, 55);
    }
    silence(g, 60);
    static const size_t chunks[] = {1, 7, 40, 80, 160, 240, 1000, MAXS};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++)
        assert_string_equal(detect_chunked(g, chunks[i]), "159D");
    sig_free(g);
}

static void test_noise_and_tones(void **state)
{
    (void)state;
    /* digits in white noise 15 dB under each tone are still found */
    sig *g = sig_new();
    for (const char *p = DIGITS; *p != '\0'; p++) {
        silence(g, 60);
        digit(g, *p, -15, 70);
    }
    silence(g, 60);
    add_noise(g, amp(-30) / sqrt(2.0));
    assert_string_equal(detect(g), DIGITS);
    sig_free(g);
    /* white noise alone, loud and soft: nothing */
    lcg = 99;
    g = sig_new();
    silence(g, 20000);
    add_noise(g, amp(-10));
    assert_string_equal(detect(g), "");
    for (size_t i = 0; i < g->n; i++)
        g->s[i] = (int16_t)(g->s[i] / 30);
    assert_string_equal(detect(g), "");
    sig_free(g);
}

/* A voice-like sound: the harmonics of a pitch that moves the way a
 * voice's does (a few times a second, around `f0` Hz), shaped by two
 * formants that wander on their own, in syllables, at about -12 dBm0. */
static void voice(sig *g, double secs, double f0, double seed)
{
    double ph[64] = {0};
    double peak = amp(-12);
    size_t n = (size_t)(secs * RATE);
    assert_true(n <= MAXS);
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / RATE;
        double pitch = f0 * (1 + 0.25 * sin(2 * M_PI * 3.1 * t + seed) + 0.2 * sin(2 * M_PI * 0.7 * t));
        double f1 = 600 + 250 * sin(2 * M_PI * 2.3 * t + 1 + seed);
        double f2 = 1600 + 700 * sin(2 * M_PI * 1.7 * t + 2 * seed);
        double syllable = 0.3 + 0.7 * fabs(sin(2 * M_PI * 2.0 * t));
        double v = 0, norm = 0;
        for (int k = 1; k < 64 && k * pitch < 3600; k++) {
            double f = k * pitch;
            double a =
                exp(-(f - f1) * (f - f1) / (2 * 120.0 * 120)) + 0.7 * exp(-(f - f2) * (f - f2) / (2 * 180.0 * 180));
            a += 0.05; /* the glottal spectrum under the formants */
            ph[k] += 2 * M_PI * f / RATE;
            v += a * sin(ph[k]);
            norm += a;
        }
        g->s[i] = clip(peak * 2 * syllable * v / norm);
    }
    g->n = n;
}

/* Two sines, the second at `ratio` times the first (a musical interval),
 * gliding from 650 to 1000 Hz and back in `secs`. */
static void interval(sig *g, double secs, double ratio)
{
    double a = 0, b = 0;
    size_t n = (size_t)(secs * RATE);
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / RATE;
        double f = 650 + 350 * (0.5 - 0.5 * cos(2 * M_PI * t / secs));
        a += 2 * M_PI * f / RATE;
        b += 2 * M_PI * f * ratio / RATE;
        g->s[i] = clip(amp(-10) * (sin(a) + sin(b)));
    }
    g->n = n;
}

static void test_speech_and_music(void **state)
{
    (void)state;
    sig *g = sig_new();
    /* a low voice, a high one, a child's; and the high one through A-law */
    voice(g, 25, 110, 0);
    assert_string_equal(detect(g), "");
    voice(g, 25, 210, 1);
    assert_string_equal(detect(g), "");
    voice(g, 25, 320, 2);
    assert_string_equal(detect(g), "");
    voice(g, 25, 210, 3);
    through_g711(g, 8);
    assert_string_equal(detect(g), "");
    /* a sine sweeping 300-3400 Hz and back over 10 s: it passes every DTMF
     * frequency, one at a time */
    double a = 0;
    for (size_t i = 0; i < 10 * RATE; i++) {
        double t = (double)i / RATE;
        double f = 300 + 3100 * (0.5 - 0.5 * cos(2 * M_PI * t / 5));
        a += 2 * M_PI * f / RATE;
        g->s[i] = clip(amp(-10) * sin(a));
    }
    g->n = 10 * RATE;
    assert_string_equal(detect(g), "");
    /* two notes gliding over the rows at intervals at least 5% from every
     * column/row ratio (1.285, 1.42, 1.57, 1.73, 1.92, 2.12, 2.34): each
     * passes near row and column pairs (a fifth over 852 Hz is 1278), but
     * never within 2.5% of both. (An octave is only 4.3% from 1336/697:
     * its glide passes 2.1% from both, where Q.24 lets a detector go
     * either way, and this one says "2".) The same glide at the ratio of
     * 1209 to 697 Hz (also 1336/770, 1477/852, 1633/941) is DTMF each time
     * it passes a row, up and down. */
    static const double ratios[] = {1.2, 1.5, 1.65, 1.82, 2.02, 2.5};
    for (size_t i = 0; i < sizeof ratios / sizeof ratios[0]; i++) {
        interval(g, 10, ratios[i]);
        const char *got = detect(g);
        if (strcmp(got, "") != 0)
            fail_msg("interval %.2f: got \"%s\"", ratios[i], got);
    }
    interval(g, 10, 1209.0 / 697);
    assert_string_equal(detect(g), "159DD951");
    sig_free(g);
}

static void test_g711_round_trip(void **state)
{
    (void)state;
    /* the encoders are G.711's: every code comes back (but µ-law's two
     * zeros, 0x7f and 0xff, which both decode to 0) */
    for (int i = 0; i < 256; i++) {
        if (i != 0x7f)
            assert_int_equal(ulaw_encode(sb_g711_ulaw_decode((uint8_t)i)), i);
        assert_int_equal(alaw_encode(sb_g711_alaw_decode((uint8_t)i)), i);
    }
    for (int pt = 0; pt <= 8; pt += 8) {
        static const double levels[] = {-5, -15, -25};
        for (size_t l = 0; l < 3; l++) {
            sig *g = sig_new();
            for (const char *p = DIGITS; *p != '\0'; p++) {
                silence(g, 60);
                digit(g, *p, levels[l], 60);
            }
            silence(g, 60);
            through_g711(g, pt);
            const char *got = detect(g);
            if (strcmp(got, DIGITS) != 0)
                fail_msg("pt %d at %.0f dBm0: got \"%s\"", pt, levels[l], got);
            sig_free(g);
        }
        check_duration(30, false, -10, pt);
        check_duration(50, true, -20, pt);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_digit_every_level),
        cmocka_unit_test(test_twist),
        cmocka_unit_test(test_harmonics_and_third_tones),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_pauses),
        cmocka_unit_test(test_chunks_do_not_matter),
        cmocka_unit_test(test_noise_and_tones),
        cmocka_unit_test(test_speech_and_music),
        cmocka_unit_test(test_g711_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
