/* inband.c - see inband.h.
 *
 * Cost: a hop's energy always (one multiply-add a sample); its eight
 * Goertzel filters only when it is louder than about -55 dBFS (so a silent
 * caller costs next to nothing), eight a sample then; a window's power per
 * tone is put together from its three hops' Goertzel outputs (a few
 * complex multiplies, no second pass over the samples); the two second
 * harmonics are measured only for a window that passed every other test. */
#include "voice/inband.h"

#include <string.h>

#define HOP  SB_INBAND_HOP
#define HOPS SB_INBAND_HOPS
#define WIN  SB_INBAND_WIN
#define RUN  SB_INBAND_RUN

/* Levels are tone energies over a window, sum of squares: a sine of
 * amplitude A holds WIN * A^2 / 2. A 0 dBm0 sine peaks at about 22,800
 * (G.711's full scale, +3.14 dBm0, decodes to about 32,300). */
#define TONE_MIN      (WIN * 573.0f * 573.0f / 2) /* -32 dBm0 */
#define HOP_FLOOR     (HOP * 50.0 * 50.0)         /* RMS 50: under -55 dBFS, nothing to find */
#define NORMAL_TWIST  6.31f                       /* 8 dB: row over column */
#define REVERSE_TWIST 2.51f                       /* 4 dB: column over row */
#define RELATIVE_PEAK 6.31f                       /* 8 dB over the rest of the group */
#define TO_TOTAL      0.75f                       /* the two tones' share of the energy */
/* Second harmonics: a row's (1394-1882 Hz) lies near the columns, which
 * leak into it (1336 Hz into 1394: -17 dB, -13 dB with reverse twist), so
 * only one within 6 dB of its tone counts; a column's (2418-3266 Hz) is
 * far from any DTMF tone. */
#define ROW_HARMONIC 0.25f /* -6 dB */
#define COL_HARMONIC 0.04f /* -14 dB */
/* Windows of full strength that make a digit, and windows without it that
 * end it (5 ms apart, 15 ms long; the durations they make are in inband.h,
 * tests/unit/test_inband.c holds them at every alignment). */
#define WINDOWS_ON  6
#define WINDOWS_OFF 9
_Static_assert(WINDOWS_ON <= RUN, "a run keeps enough windows to make a digit");
_Static_assert(HOP == 40 && WIN % HOP == 0, "COS_HOP and SIN_HOP are for 40-sample hops");

/* cos and sin of w = 2 pi f / 8000 and of HOP * w, for 697, 770, 852,
 * 941 Hz (rows) and 1209, 1336, 1477, 1633 Hz (columns). */
static const float COS_W[8] = {0.853868905f, 0.822640518f, 0.784343492f, 0.739102284f,
                               0.582052012f, 0.498185105f, 0.399309195f, 0.284266353f};
static const float SIN_W[8] = {0.520488130f, 0.568561851f, 0.620326758f, 0.673593211f,
                               0.813151558f, 0.867070701f, 0.916816321f, 0.958745347f};
static const float COS_HOP[8] = {-0.995561965f, 0.587785252f,  -0.062790520f, -0.278991106f,
                                 0.960293686f,  -0.425779292f, -0.750111070f, 0.509041416f};
static const float SIN_HOP[8] = {0.094108313f, -0.809016994f, 0.998026728f, -0.960293686f,
                                 0.278991106f, -0.904827052f, 0.661311865f, 0.860742027f};
static const char KEYS[4][4] = {{'1', '2', '3', 'A'}, {'4', '5', '6', 'B'}, {'7', '8', '9', 'C'}, {'*', '0', '#', 'D'}};

void sb_inband_init(sb_inband *d)
{
    memset(d, 0, sizeof *d);
}

/* Goertzel over `n` samples at the frequency whose 2 cos(w) is `coeff`:
 * the last two states. */
static void goertzel(const int16_t *p, size_t n, float coeff, float *s1, float *s2)
{
    float a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        float s = (float)p[i] + coeff * a - b;
        b = a;
        a = s;
    }
    *s1 = a;
    *s2 = b;
}

/* The window's energy at 2 w (w of tone `k`), on its samples in order. */
static float harmonic(const sb_inband *d, int k)
{
    float c2 = 2 * (2 * COS_W[k] * COS_W[k] - 1); /* 2 cos(2w) */
    float a = 0, b = 0;
    for (unsigned i = 0; i < WIN; i++) {
        float s = (float)d->hist[(d->hist_pos + i) % WIN] + c2 * a - b;
        b = a;
        a = s;
    }
    return 2 * (a * a + b * b - c2 * a * b) / WIN;
}

/* The hop that just ended: its energy and its Goertzel outputs
 * y = s1 - e^-jw s2 (= e^jw(HOP-1) times the hop's DFT at w). */
static void hop_done(sb_inband *d)
{
    memmove(&d->energy[0], &d->energy[1], sizeof d->energy[0] * (HOPS - 1));
    memmove(&d->y[0], &d->y[1], sizeof d->y[0] * (HOPS - 1));
    const int16_t *p = &d->hist[(d->hist_pos + WIN - HOP) % WIN]; /* hops never wrap */
    double e = 0;
    for (unsigned i = 0; i < HOP; i++)
        e += (double)p[i] * p[i];
    d->energy[HOPS - 1] = e;
    float(*y)[2] = d->y[HOPS - 1];
    for (int k = 0; k < 8; k++) {
        float s1 = 0, s2 = 0;
        if (e >= HOP_FLOOR)
            goertzel(p, HOP, 2 * COS_W[k], &s1, &s2);
        y[k][0] = s1 - COS_W[k] * s2;
        y[k][1] = SIN_W[k] * s2;
    }
    if (d->hops < HOPS)
        d->hops++;
}

/* The window's energy at tone k: the hops' outputs, each turned by
 * e^-jw HOP per hop of delay, summed (Horner, newest first); the common
 * rotation between a hop's y and its DFT does not change the power. */
static float tone_power(const sb_inband *d, int k)
{
    float re = d->y[HOPS - 1][k][0], im = d->y[HOPS - 1][k][1];
    for (int j = HOPS - 2; j >= 0; j--) {
        float r = re * COS_HOP[k] + im * SIN_HOP[k]; /* (re + j im) (cos - j sin) */
        float i = im * COS_HOP[k] - re * SIN_HOP[k];
        re = r + d->y[j][k][0];
        im = i + d->y[j][k][1];
    }
    return 2 * (re * re + im * im) / WIN;
}

/* The digit the current window holds (0: none) and its two tones' energy. */
static char window_digit(const sb_inband *d, float *power)
{
    double total = 0;
    for (int j = 0; j < HOPS; j++)
        total += d->energy[j];
    if (total < 2 * (double)TONE_MIN)
        return 0;
    float p[8];
    for (int k = 0; k < 8; k++)
        p[k] = tone_power(d, k);
    int row = 0, col = 4;
    for (int k = 1; k < 4; k++)
        if (p[k] > p[row])
            row = k;
    for (int k = 5; k < 8; k++)
        if (p[k] > p[col])
            col = k;
    float pr = p[row], pc = p[col];
    if (pr < TONE_MIN || pc < TONE_MIN)
        return 0;
    if (pr > pc * NORMAL_TWIST || pc > pr * REVERSE_TWIST)
        return 0;
    for (int k = 0; k < 8; k++) {
        if (k == row || k == col)
            continue;
        if (p[k] * RELATIVE_PEAK > (k < 4 ? pr : pc))
            return 0;
    }
    if ((double)(pr + pc) < TO_TOTAL * total)
        return 0;
    if (harmonic(d, row) > pr * ROW_HARMONIC || harmonic(d, col) > pc * COL_HARMONIC)
        return 0;
    *power = pr + pc;
    return KEYS[row][col - 4];
}

/* Windows of the candidate at full strength: at least half the strongest
 * one's energy. A tone's first and last windows hold only part of it (a
 * window 70% tone, 30% silence has half the energy): they do not count, so
 * the count measures the tone's length, not the window's. */
static unsigned full_windows(const sb_inband *d)
{
    float max = 0;
    for (unsigned i = 0; i < d->run_n; i++)
        if (d->run_power[i] > max)
            max = d->run_power[i];
    unsigned n = 0;
    for (unsigned i = 0; i < d->run_n; i++)
        if (d->run_power[i] * 2 >= max)
            n++;
    return n;
}

/* One window's verdict into the state: 0, or a digit to report. */
static char decide(sb_inband *d, char digit, float power)
{
    if (digit != 0 && digit == d->run_digit) {
        if (d->run_n == RUN) {
            memmove(&d->run_power[0], &d->run_power[1], sizeof d->run_power[0] * (RUN - 1));
            d->run_n--;
        }
        d->run_power[d->run_n++] = power;
    } else {
        d->run_digit = digit;
        d->run_n = 0;
        if (digit != 0)
            d->run_power[d->run_n++] = power;
    }
    if (d->held != 0) {
        if (digit == d->held)
            d->off = 0;
        else if (++d->off >= WINDOWS_OFF)
            d->held = 0;
    }
    if (d->held != 0 || d->run_digit == 0 || full_windows(d) < WINDOWS_ON)
        return 0;
    d->held = d->run_digit;
    d->off = 0;
    return d->held;
}

size_t sb_inband_feed(sb_inband *d, const int16_t *pcm, size_t n, char *out, size_t cap)
{
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        d->hist[d->hist_pos] = pcm[i];
        d->hist_pos = (d->hist_pos + 1) % WIN;
        if (++d->in_hop < HOP)
            continue;
        d->in_hop = 0;
        hop_done(d);
        if (d->hops < HOPS)
            continue;
        float power = 0;
        char digit = window_digit(d, &power);
        digit = decide(d, digit, power);
        if (digit != 0 && found < cap)
            out[found++] = digit;
    }
    return found;
}
