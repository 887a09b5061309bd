/* wav.c - see wav.h. */
#include "voice/wav.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/sb.h"

#define SILENCE_FRAME 160 /* 20 ms at 8 kHz */
/* An unfinished file (the daemon died) keeps these: "read to the end". */
#define SIZE_UNKNOWN 0xffffffffu

/* ---- G.711 ---- */

int16_t sb_g711_ulaw_decode(uint8_t u)
{
    u = (uint8_t)~u;
    int t = ((u & 0x0f) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    return (int16_t)((u & 0x80) ? 0x84 - t : t - 0x84);
}

int16_t sb_g711_alaw_decode(uint8_t a)
{
    a ^= 0x55;
    int t = (a & 0x0f) << 4;
    int seg = (a & 0x70) >> 4;
    if (seg == 0)
        t += 8;
    else
        t = (t + 0x108) << (seg - 1);
    return (int16_t)((a & 0x80) ? t : -t);
}

void sb_g711_decode(int pt, const uint8_t *in, size_t n, int16_t *out)
{
    if (pt == 0) {
        for (size_t i = 0; i < n; i++)
            out[i] = sb_g711_ulaw_decode(in[i]);
    } else {
        for (size_t i = 0; i < n; i++)
            out[i] = sb_g711_alaw_decode(in[i]);
    }
}

/* ---- the writer ---- */

struct sb_wav_writer {
    int fd;
    unsigned channels;
    sb_wav_io io;
    uint8_t *buf;
    size_t len, cap; /* cap: one second of audio */
    uint64_t frames;
    bool finished;
    int err;       /* the first failure; sticks */
    int sys_errno; /* its errno */
};

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void header(uint8_t h[SB_WAV_HEADER_BYTES], unsigned channels, uint32_t riff_size, uint32_t data_size)
{
    memcpy(h, "RIFF", 4);
    put32(h + 4, riff_size);
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, 16);
    put16(h + 20, 1); /* PCM */
    put16(h + 22, (uint16_t)channels);
    put32(h + 24, SB_WAV_RATE);
    put32(h + 28, SB_WAV_RATE * channels * 2);
    put16(h + 32, (uint16_t)(channels * 2));
    put16(h + 34, 16);
    memcpy(h + 36, "data", 4);
    put32(h + 40, data_size);
}

/* Writes all of p, going on after short writes and EINTR. */
static int write_all(sb_wav_writer *w, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = w->io.write(w->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return SB_EIO;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int pwrite_all(sb_wav_writer *w, const uint8_t *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t k = w->io.pwrite(w->fd, p, n, off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return SB_EIO;
        }
        p += k;
        n -= (size_t)k;
        off += k;
    }
    return 0;
}

static int flush(sb_wav_writer *w)
{
    if (w->err != 0 || w->len == 0)
        return w->err;
    w->err = write_all(w, w->buf, w->len);
    if (w->err != 0)
        w->sys_errno = errno;
    w->len = 0;
    return w->err;
}

static int sys_fsync(int fd)
{
    return fsync(fd);
}

int sb_wav_mkdirs(const char *path)
{
    char *p = sb_xstrdup(path);
    int rc = 0;
    for (char *s = strchr(p + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0750) != 0 && errno != EEXIST) {
            rc = SB_EIO;
            break;
        }
        *s = '/';
    }
    free(p);
    return rc;
}

int sb_wav_open(sb_wav_writer **out, const char *path, unsigned channels, const sb_wav_io *io)
{
    *out = NULL;
    if (path == NULL || path[0] == '\0' || (channels != 1 && channels != 2))
        return SB_EINVAL;
    if (sb_wav_mkdirs(path) != 0)
        return SB_EIO;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
        return errno == EEXIST ? SB_ECONFLICT : SB_EIO;
    sb_wav_writer *w = sb_xcalloc(1, sizeof *w);
    w->fd = fd;
    w->channels = channels;
    w->io.write = io != NULL && io->write != NULL ? io->write : write;
    w->io.pwrite = io != NULL && io->pwrite != NULL ? io->pwrite : pwrite;
    w->io.fsync = io != NULL && io->fsync != NULL ? io->fsync : sys_fsync;
    w->cap = (size_t)SB_WAV_RATE * channels * 2;
    w->buf = sb_xmalloc(w->cap);
    uint8_t h[SB_WAV_HEADER_BYTES];
    header(h, channels, SIZE_UNKNOWN, SIZE_UNKNOWN);
    memcpy(w->buf, h, sizeof h); /* goes out with the first second of audio */
    w->len = sizeof h;
    *out = w;
    return 0;
}

int sb_wav_write(sb_wav_writer *w, const int16_t *frames, size_t nframes)
{
    if (w->finished)
        return SB_EINVAL;
    if (w->err != 0)
        return w->err;
    size_t n = nframes * w->channels;
    for (size_t i = 0; i < n; i++) {
        if (w->len + 2 > w->cap && flush(w) != 0)
            return w->err;
        put16(w->buf + w->len, (uint16_t)frames[i]);
        w->len += 2;
    }
    w->frames += nframes;
    return 0;
}

int sb_wav_status(const sb_wav_writer *w)
{
    return w->err;
}

int sb_wav_errno(const sb_wav_writer *w)
{
    return w->sys_errno;
}

uint64_t sb_wav_frames(const sb_wav_writer *w)
{
    return w->frames;
}

uint64_t sb_wav_bytes(const sb_wav_writer *w)
{
    return SB_WAV_HEADER_BYTES + w->frames * w->channels * 2;
}

int sb_wav_finish(sb_wav_writer *w)
{
    if (w->finished)
        return w->err;
    w->finished = true;
    if (flush(w) != 0)
        return w->err;
    uint64_t data = w->frames * w->channels * 2;
    uint32_t data32 = data > SIZE_UNKNOWN - 36 ? SIZE_UNKNOWN - 36 : (uint32_t)data;
    uint8_t size[4];
    put32(size, data32 + 36);
    w->err = pwrite_all(w, size, 4, 4);
    if (w->err == 0) {
        put32(size, data32);
        w->err = pwrite_all(w, size, 4, 40);
    }
    if (w->err != 0)
        w->sys_errno = errno;
    return w->err;
}

int sb_wav_close(sb_wav_writer *w, bool sync)
{
    if (w == NULL)
        return 0;
    int rc = sb_wav_finish(w);
    if (sync && rc == 0) {
        while (w->io.fsync(w->fd) != 0) {
            if (errno != EINTR) {
                rc = SB_EIO;
                break;
            }
        }
    }
    if (close(w->fd) != 0 && rc == 0 && errno != EINTR)
        rc = SB_EIO;
    free(w->buf);
    free(w);
    return rc;
}

/* ---- silence ---- */

void sb_wav_silence_init(sb_wav_silence *s, int threshold)
{
    memset(s, 0, sizeof *s);
    s->threshold = threshold;
}

void sb_wav_silence_feed(sb_wav_silence *s, const int16_t *p, size_t n, size_t stride)
{
    uint64_t limit = (uint64_t)s->threshold * (uint64_t)s->threshold * SILENCE_FRAME;
    for (size_t i = 0; i < n; i++) {
        int64_t v = p[i * stride];
        s->energy += (uint64_t)(v * v);
        if (++s->in_frame < SILENCE_FRAME)
            continue;
        if (s->energy > limit) {
            s->voiced += SILENCE_FRAME;
            s->run = 0;
        } else {
            s->run += SILENCE_FRAME;
        }
        s->energy = 0;
        s->in_frame = 0;
    }
}

uint64_t sb_wav_silence_ms(const sb_wav_silence *s)
{
    return s->run * 1000 / SB_WAV_RATE;
}

bool sb_wav_silence_heard_voice(const sb_wav_silence *s)
{
    return s->voiced > 0;
}
