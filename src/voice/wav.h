/* wav.h - audio helpers for call recording, free of libre and of the
 * clock: G.711 (PCMU/PCMA) decoding to 16-bit linear, a streaming WAV
 * writer (8 kHz, 16-bit PCM, mono or stereo) and an energy-based silence
 * detector. The voice thread (media.c) drives them; tests/unit/test_wav.c
 * checks them, with the writer's syscalls behind an ops table so that
 * ENOSPC, short writes and fsync failures can be injected. */
#ifndef SB_WAV_H
#define SB_WAV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SB_WAV_RATE         8000
#define SB_WAV_HEADER_BYTES 44

/* ---- G.711 (ITU-T G.711, the tables every implementation shares) ---- */

int16_t sb_g711_ulaw_decode(uint8_t u);
int16_t sb_g711_alaw_decode(uint8_t a);
/* Decodes n bytes of RTP payload type `pt` (0 PCMU, anything else PCMA). */
void sb_g711_decode(int pt, const uint8_t *in, size_t n, int16_t *out);

/* ---- the WAV writer ---- */

/* The writer's syscalls; NULL members (or a NULL table) are the real ones. */
typedef struct sb_wav_io {
    ssize_t (*write)(int fd, const void *p, size_t n);
    ssize_t (*pwrite)(int fd, const void *p, size_t n, off_t off);
    int (*fsync)(int fd);
} sb_wav_io;

typedef struct sb_wav_writer sb_wav_writer;

/* Creates `path` (never over an existing file: SB_ECONFLICT) with its
 * missing parent directories (mode 0750), the file 0640, and writes a
 * header whose sizes are placeholders until sb_wav_finish. `channels` is
 * 1 or 2. 0, SB_EINVAL, SB_ECONFLICT or SB_EIO (errno says more). */
int sb_wav_open(sb_wav_writer **out, const char *path, unsigned channels, const sb_wav_io *io);
/* Appends `nframes` frames (`channels` interleaved samples each). Buffered:
 * the buffer goes to disk once it holds about a second of audio, so a
 * call costs one write a second. After a failed write every call returns
 * SB_EIO (the first error sticks). */
int sb_wav_write(sb_wav_writer *w, const int16_t *frames, size_t nframes);
/* 0, or SB_EIO once a write failed (and sb_wav_errno says why). */
int sb_wav_status(const sb_wav_writer *w);
int sb_wav_errno(const sb_wav_writer *w);
/* Frames accepted so far (written or buffered). */
uint64_t sb_wav_frames(const sb_wav_writer *w);
/* The file's size once finished: header + every frame accepted. */
uint64_t sb_wav_bytes(const sb_wav_writer *w);
/* Writes what is buffered and patches the header's sizes (no fsync, so it
 * is quick). Later writes are refused. 0 or the sticky SB_EIO. */
int sb_wav_finish(sb_wav_writer *w);
/* Finishes if needed, fsyncs when `sync`, closes and frees. 0 or SB_EIO
 * (any failure of the writer's life). NULL-safe. */
int sb_wav_close(sb_wav_writer *w, bool sync);

/* Creates the directories above `path` (mode 0750) that are missing. */
int sb_wav_mkdirs(const char *path);

/* ---- silence ---- */

/* A 20 ms frame whose RMS is at or under the threshold is silence; about
 * -40 dBFS, well over a phone line's idle noise, well under speech. */
#define SB_WAV_SILENCE_RMS 300

/* Feeds 20 ms frames of one channel; tells how long the audio has been
 * silent: since the last voiced frame, or since the start when there was
 * none. */
typedef struct sb_wav_silence {
    int threshold;     /* RMS */
    uint64_t run;      /* samples of silence since the last voiced frame (or the start) */
    uint64_t voiced;   /* samples in voiced frames so far */
    uint64_t energy;   /* sum of squares of the frame being filled */
    unsigned in_frame; /* samples in the frame being filled */
} sb_wav_silence;

void sb_wav_silence_init(sb_wav_silence *s, int threshold);
/* `n` samples taken every `stride` elements of `p` (1 for mono, 2 for one
 * channel of stereo). */
void sb_wav_silence_feed(sb_wav_silence *s, const int16_t *p, size_t n, size_t stride);
/* Milliseconds of silence so far (complete frames only). */
uint64_t sb_wav_silence_ms(const sb_wav_silence *s);
bool sb_wav_silence_heard_voice(const sb_wav_silence *s);

#endif
