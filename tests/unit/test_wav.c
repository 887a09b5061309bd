/* test_wav.c - the recording helpers (src/voice/wav.c): G.711 decoding
 * against the standard's values and librem's tables, WAV files written
 * and read back (header fields, sample count, channel interleave, one
 * write a second, sizes patched at the end), injected I/O failures
 * (short writes, ENOSPC, fsync), and the silence detector. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <re.h>
#include <rem.h>

#include "base/sb.h"
#include "voice/wav.h"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sb-test-wav-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *p = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len == cap) {
            cap = cap ? cap * 2 : 65536;
            p = realloc(p, cap);
            assert_non_null(p);
        }
        size_t k = fread(p + *len, 1, cap - *len, f);
        if (k == 0)
            break;
        *len += k;
    }
    fclose(f);
    return p;
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* ---- G.711 ---- */

static void test_g711_known_values(void **state)
{
    (void)state;
    /* G.711 µ-law: the extremes, zero (twice), the quietest steps */
    assert_int_equal(sb_g711_ulaw_decode(0x00), -32124);
    assert_int_equal(sb_g711_ulaw_decode(0x80), 32124);
    assert_int_equal(sb_g711_ulaw_decode(0xff), 0);
    assert_int_equal(sb_g711_ulaw_decode(0x7f), 0);
    assert_int_equal(sb_g711_ulaw_decode(0x70), -120);
    assert_int_equal(sb_g711_ulaw_decode(0x7e), -8);
    assert_int_equal(sb_g711_ulaw_decode(0xfe), 8);
    assert_int_equal(sb_g711_ulaw_decode(0x0f), -16764);
    /* G.711 A-law (even bits inverted): 0xd5 is the idle pattern */
    assert_int_equal(sb_g711_alaw_decode(0xd5), 8);
    assert_int_equal(sb_g711_alaw_decode(0x55), -8);
    assert_int_equal(sb_g711_alaw_decode(0xaa), 32256);
    assert_int_equal(sb_g711_alaw_decode(0x2a), -32256);
    assert_int_equal(sb_g711_alaw_decode(0x00), -5504);
    assert_int_equal(sb_g711_alaw_decode(0x80), 5504);
    assert_int_equal(sb_g711_alaw_decode(0xd4), 24);
    /* every code, against librem's tables (the relay converts with them;
     * their µ-law zeros are -2 and +2, G.711 says 0), and symmetric around
     * the sign bit */
    for (int i = 0; i < 256; i++) {
        if (i != 0x7f && i != 0xff)
            assert_int_equal(sb_g711_ulaw_decode((uint8_t)i), g711_ulaw2pcm((uint8_t)i));
        assert_int_equal(sb_g711_alaw_decode((uint8_t)i), g711_alaw2pcm((uint8_t)i));
        assert_int_equal(sb_g711_ulaw_decode((uint8_t)i), -sb_g711_ulaw_decode((uint8_t)(i ^ 0x80)));
        assert_int_equal(sb_g711_alaw_decode((uint8_t)i), -sb_g711_alaw_decode((uint8_t)(i ^ 0x80)));
    }
    /* encoding what we decoded gives the code back (but µ-law's two zeros) */
    for (int i = 0; i < 256; i++) {
        if (i != 0x7f)
            assert_int_equal(g711_pcm2ulaw(sb_g711_ulaw_decode((uint8_t)i)), i);
        assert_int_equal(g711_pcm2alaw(sb_g711_alaw_decode((uint8_t)i)), i);
    }
    uint8_t in[3] = {0x80, 0xff, 0x00};
    int16_t out[3];
    sb_g711_decode(0, in, 3, out);
    assert_int_equal(out[0], 32124);
    assert_int_equal(out[1], 0);
    sb_g711_decode(8, in, 3, out);
    assert_int_equal(out[0], 5504);
    assert_int_equal(out[2], -5504);
}

/* ---- the writer, through counting (and failing) syscalls ---- */

static struct {
    int writes, pwrites, fsyncs;
    size_t max_write;  /* > 0: short writes of at most this */
    int fail_write_at; /* > 0: that write (1-based) fails ENOSPC */
    bool fail_fsync;
} io;

static ssize_t io_write(int fd, const void *p, size_t n)
{
    io.writes++;
    if (io.fail_write_at > 0 && io.writes == io.fail_write_at) {
        errno = ENOSPC;
        return -1;
    }
    if (io.max_write > 0 && n > io.max_write)
        n = io.max_write;
    return write(fd, p, n);
}

static ssize_t io_pwrite(int fd, const void *p, size_t n, off_t off)
{
    io.pwrites++;
    return pwrite(fd, p, n, off);
}

static int io_fsync(int fd)
{
    io.fsyncs++;
    if (io.fail_fsync) {
        errno = EIO;
        return -1;
    }
    return fsync(fd);
}

static const sb_wav_io counting = {io_write, io_pwrite, io_fsync};

static int16_t left_at(size_t k)
{
    return (int16_t)((k * 37) % 20000);
}

static int16_t right_at(size_t k)
{
    return (int16_t)(-(int)((k * 11) % 30000) - 1);
}

static void check_header(const uint8_t *p, size_t len, unsigned channels, uint32_t frames)
{
    uint32_t data = frames * channels * 2;
    assert_int_equal(len, SB_WAV_HEADER_BYTES + data);
    assert_memory_equal(p, "RIFF", 4);
    assert_int_equal(le32(p + 4), 36 + data);
    assert_memory_equal(p + 8, "WAVEfmt ", 8);
    assert_int_equal(le32(p + 16), 16);
    assert_int_equal(le16(p + 20), 1);
    assert_int_equal(le16(p + 22), channels);
    assert_int_equal(le32(p + 24), 8000);
    assert_int_equal(le32(p + 28), 8000 * channels * 2);
    assert_int_equal(le16(p + 32), channels * 2);
    assert_int_equal(le16(p + 34), 16);
    assert_memory_equal(p + 36, "data", 4);
    assert_int_equal(le32(p + 40), data);
}

static void test_stereo_round_trip(void **state)
{
    (void)state;
    memset(&io, 0, sizeof io);
    char path[128];
    snprintf(path, sizeof path, "%s/recordings/2026-01/1-2.wav", tmpdir);
    sb_wav_writer *w = NULL;
    assert_int_equal(sb_wav_open(&w, path, 2, &counting), 0);
    /* the directories were made, 0750 */
    char dir[128];
    snprintf(dir, sizeof dir, "%s/recordings/2026-01", tmpdir);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0750);
    /* 2.5 s in uneven pieces (a 20 ms frame, odd sizes): nothing reaches
     * the disk before a second is buffered, then one write a second */
    const size_t total = 20000;
    size_t done = 0, piece = 1;
    int16_t buf[2 * 700];
    while (done < total) {
        size_t n = piece % 700 + 1;
        if (n > total - done)
            n = total - done;
        for (size_t k = 0; k < n; k++) {
            buf[2 * k] = left_at(done + k);
            buf[2 * k + 1] = right_at(done + k);
        }
        assert_int_equal(sb_wav_write(w, buf, n), 0);
        done += n;
        piece = piece * 7 + 3;
        if (done < 7900)
            assert_int_equal(file_size(path), 0);
    }
    assert_int_equal(sb_wav_frames(w), total);
    assert_int_equal(sb_wav_bytes(w), 44 + total * 4);
    assert_int_equal(io.writes, 2);
    /* before the end the sizes say "unknown" (a crash leaves that) */
    size_t len = 0;
    uint8_t *p = slurp(path, &len);
    assert_true(len >= 44 + 32000);
    assert_int_equal(le32(p + 4), 0xffffffffu);
    assert_int_equal(le32(p + 40), 0xffffffffu);
    free(p);
    assert_int_equal(sb_wav_close(w, true), 0);
    assert_int_equal(io.writes, 3);
    assert_int_equal(io.pwrites, 2);
    assert_int_equal(io.fsyncs, 1);
    p = slurp(path, &len);
    check_header(p, len, 2, (uint32_t)total);
    for (size_t k = 0; k < total; k++) {
        assert_int_equal((int16_t)le16(p + 44 + 4 * k), left_at(k));
        assert_int_equal((int16_t)le16(p + 44 + 4 * k + 2), right_at(k));
    }
    free(p);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    /* an existing recording is never overwritten */
    assert_int_equal(sb_wav_open(&w, path, 2, NULL), SB_ECONFLICT);
    assert_null(w);
    assert_int_equal(sb_wav_open(&w, path, 3, NULL), SB_EINVAL);
    assert_int_equal(sb_wav_open(&w, "", 1, NULL), SB_EINVAL);
}

static void test_mono_short_writes_and_empty(void **state)
{
    (void)state;
    memset(&io, 0, sizeof io);
    io.max_write = 999; /* the kernel may take less than asked */
    char path[128];
    snprintf(path, sizeof path, "%s/mono.wav", tmpdir);
    sb_wav_writer *w = NULL;
    assert_int_equal(sb_wav_open(&w, path, 1, &counting), 0);
    int16_t frame[160];
    for (int i = 0; i < 160; i++)
        frame[i] = (int16_t)(i * 100 - 8000);
    for (int f = 0; f < 77; f++)
        assert_int_equal(sb_wav_write(w, frame, 160), 0);
    assert_int_equal(sb_wav_close(w, false), 0);
    assert_int_equal(io.fsyncs, 0);
    size_t len = 0;
    uint8_t *p = slurp(path, &len);
    check_header(p, len, 1, 77 * 160);
    for (size_t k = 0; k < 77 * 160; k++)
        assert_int_equal((int16_t)le16(p + 44 + 2 * k), frame[k % 160]);
    free(p);
    /* nothing written: a valid empty file */
    snprintf(path, sizeof path, "%s/empty.wav", tmpdir);
    assert_int_equal(sb_wav_open(&w, path, 1, NULL), 0);
    assert_int_equal(sb_wav_finish(w), 0);
    assert_int_equal(sb_wav_write(w, frame, 1), SB_EINVAL); /* finished */
    assert_int_equal(sb_wav_close(w, true), 0);
    p = slurp(path, &len);
    check_header(p, len, 1, 0);
    free(p);
}

static void test_write_failures_stick(void **state)
{
    (void)state;
    memset(&io, 0, sizeof io);
    io.fail_write_at = 2; /* the disk fills up during the second second */
    char path[128];
    snprintf(path, sizeof path, "%s/full.wav", tmpdir);
    sb_wav_writer *w = NULL;
    assert_int_equal(sb_wav_open(&w, path, 1, &counting), 0);
    int16_t frame[160] = {0};
    int rc = 0, f = 0;
    for (; f < 200 && rc == 0; f++)
        rc = sb_wav_write(w, frame, 160);
    assert_int_equal(rc, SB_EIO);
    assert_int_equal(f, 100); /* the 100th frame filled the second second: its write failed */
    assert_int_equal(sb_wav_write(w, frame, 160), SB_EIO);
    assert_int_equal(sb_wav_finish(w), SB_EIO);
    assert_int_equal(sb_wav_close(w, true), SB_EIO);
    assert_int_equal(io.fsyncs, 0);
    /* fsync failing is a failure too */
    memset(&io, 0, sizeof io);
    io.fail_fsync = true;
    snprintf(path, sizeof path, "%s/nosync.wav", tmpdir);
    assert_int_equal(sb_wav_open(&w, path, 2, &counting), 0);
    assert_int_equal(sb_wav_write(w, frame, 80), 0);
    assert_int_equal(sb_wav_close(w, true), SB_EIO);
    assert_int_equal(io.fsyncs, 1);
    /* a directory that cannot be made */
    snprintf(path, sizeof path, "%s/full.wav/sub/x.wav", tmpdir);
    assert_int_equal(sb_wav_open(&w, path, 1, NULL), SB_EIO);
    assert_null(w);
}

/* ---- silence ---- */

static void tone(int16_t *p, size_t n, double amplitude, size_t stride)
{
    for (size_t i = 0; i < n; i++)
        p[i * stride] = (int16_t)(amplitude * sin(2 * M_PI * 440.0 * (double)i / 8000.0));
}

static void test_silence_detector(void **state)
{
    (void)state;
    sb_wav_silence s;
    sb_wav_silence_init(&s, SB_WAV_SILENCE_RMS);
    static int16_t pcm[8000 * 2];
    memset(pcm, 0, sizeof pcm);
    /* a caller who never speaks: silent from the start */
    sb_wav_silence_feed(&s, pcm, 8000, 1);
    assert_int_equal(sb_wav_silence_ms(&s), 1000);
    assert_false(sb_wav_silence_heard_voice(&s));
    /* speech (a loud tone) resets it */
    tone(pcm, 4000, 6000, 1);
    sb_wav_silence_feed(&s, pcm, 4000, 1);
    assert_int_equal(sb_wav_silence_ms(&s), 0);
    assert_true(sb_wav_silence_heard_voice(&s));
    /* line noise well under the threshold counts as silence; a partial
     * frame counts once it is complete */
    for (int i = 0; i < 8000; i++)
        pcm[i] = (int16_t)((i * 7919) % 201 - 100);
    sb_wav_silence_feed(&s, pcm, 100, 1);
    assert_int_equal(sb_wav_silence_ms(&s), 0);
    sb_wav_silence_feed(&s, pcm + 100, 60, 1);
    assert_int_equal(sb_wav_silence_ms(&s), 20);
    sb_wav_silence_feed(&s, pcm + 160, 7840, 1);
    assert_int_equal(sb_wav_silence_ms(&s), 1000);
    /* the threshold is on the frame's RMS */
    sb_wav_silence_init(&s, 300);
    for (int i = 0; i < 160; i++)
        pcm[i] = (int16_t)(i % 2 ? 300 : -300);
    sb_wav_silence_feed(&s, pcm, 160, 1);
    assert_int_equal(sb_wav_silence_ms(&s), 20);
    for (int i = 0; i < 160; i++)
        pcm[i] = (int16_t)(i % 2 ? 301 : -301);
    sb_wav_silence_feed(&s, pcm, 160, 1);
    assert_int_equal(sb_wav_silence_ms(&s), 0);
    /* one channel of stereo: left silent, right talking */
    memset(pcm, 0, sizeof pcm);
    tone(pcm + 1, 8000, 8000, 2);
    sb_wav_silence_init(&s, SB_WAV_SILENCE_RMS);
    sb_wav_silence_feed(&s, pcm, 8000, 2);
    assert_int_equal(sb_wav_silence_ms(&s), 1000);
    sb_wav_silence_init(&s, SB_WAV_SILENCE_RMS);
    sb_wav_silence_feed(&s, pcm + 1, 8000, 2);
    assert_int_equal(sb_wav_silence_ms(&s), 0);
    assert_true(sb_wav_silence_heard_voice(&s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_g711_known_values),
        cmocka_unit_test_setup_teardown(test_stereo_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mono_short_writes_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failures_stick, setup, teardown),
        cmocka_unit_test(test_silence_detector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
