/* inband.h - an in-band DTMF detector, pure (no libre, no clock): 16-bit
 * linear samples at 8 kHz in, digits out. media.c feeds it a caller's
 * decoded G.711 audio, 20 ms at a time, when the call has no RFC 4733
 * telephone-event; tests/unit/test_inband.c checks it.
 *
 * How it decides (ITU-T Q.24 style): every 5 ms (40 samples) the last
 * 15 ms (120 samples: one bin is 67 Hz, narrow enough to tell 697 from 770
 * Hz, wide enough for a tone 1% off; phones are within 0.5%, and most
 * tones 1.5% off pass too) are analysed on the 8 DTMF frequencies with
 * Goertzel's algorithm. A window holds a digit when
 *  - the strongest row and column tones are each over -32 dBm0,
 *  - twist is in bounds: the row (low group) tone at most 8 dB over the
 *    column one ("normal" twist, what a line's high-frequency loss
 *    makes), the column at most 4 dB over the row ("reverse"),
 *  - each is 8 dB over every other tone of its group,
 *  - the two tones are at least 75% of the window's energy (speech, music
 *    and noise are not; nor are tones more than about 2% off), and
 *  - neither has a strong second harmonic (a voice or an instrument has).
 * Windows are 5 ms apart, so a tone's length is known to a few ms: a digit
 * is reported once, when windows of full strength have held it for about
 * 35 ms (a 38 ms tone always is a digit, a 32 ms one never), and the next
 * one, the same key or another, only after the first has been absent
 * about as long (a pause of 40 ms always separates two digits, a drop-out
 * of 32 ms never does). */
#ifndef SB_INBAND_H
#define SB_INBAND_H

#include <stddef.h>
#include <stdint.h>

#define SB_INBAND_RATE 8000
#define SB_INBAND_HOP  40 /* samples between analyses: 5 ms */
#define SB_INBAND_HOPS 3  /* hops in a window */
#define SB_INBAND_WIN  (SB_INBAND_HOP * SB_INBAND_HOPS)
#define SB_INBAND_RUN  8 /* a candidate's latest windows kept */

/* One detector per stream; plain data, no allocation (reset = init). */
typedef struct sb_inband {
    /* the last SB_INBAND_WIN samples (harmonics are measured on demand) */
    int16_t hist[SB_INBAND_WIN];
    unsigned hist_pos;
    unsigned in_hop; /* samples of the current hop so far */
    unsigned hops;   /* hops analysed since the start, up to SB_INBAND_HOPS */
    /* per hop of the window (oldest first): its energy and, per tone, the
     * Goertzel output (re, im) of its 40 samples */
    double energy[SB_INBAND_HOPS];
    float y[SB_INBAND_HOPS][8][2];
    /* the candidate: consecutive windows holding one digit, their tone power */
    char run_digit;
    unsigned run_n;
    float run_power[SB_INBAND_RUN];
    /* the digit reported last, until a pause ends it */
    char held;
    unsigned off; /* windows in a row without it */
} sb_inband;

void sb_inband_init(sb_inband *d);
/* Feeds `n` samples (any count: frames need not be 20 ms) and writes the
 * digits detected in them (0-9, *, #, A-D) to `out`; returns how many (at
 * most `cap`: with a pause between digits, one per 20 ms frame is the most
 * there can be). */
size_t sb_inband_feed(sb_inband *d, const int16_t *pcm, size_t n, char *out, size_t cap);

#endif
