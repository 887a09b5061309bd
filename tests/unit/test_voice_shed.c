/* test_voice_shed.c - load shedding: the voice thread refuses new calls
 * with 503 while the core loop lags behind its events.
 *
 * The test is the core: it runs the voice module (a real SIP stack on a
 * loopback port) and holds its own uv loop back, so the events the voice
 * thread posts wait, which is what an overloaded core looks like. INVITEs
 * are sent over UDP by hand and their final answers read back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/sb.h"
#include "voice/voice.h"

typedef struct core {
    sb_voice *v;
    int offered;
} core;

static void on_event(const sb_voice_event *ev, void *arg)
{
    core *c = arg;
    if (ev->kind == SB_VOICE_CALL_OFFERED) {
        c->offered++;
        assert_int_equal(sb_voice_reject(c->v, ev->call_id, 486), 0);
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int local_port(int fd)
{
    struct sockaddr_in me;
    socklen_t len = sizeof me;
    getsockname(fd, (struct sockaddr *)&me, &len);
    return ntohs(me.sin_port);
}

static void send_to(int fd, int port, const char *msg)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    assert_true(sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&to, sizeof to) > 0);
}

/* The final answer to INVITE number n (ACKed), or 0 when none comes
 * within the socket's timeout. Answers to other INVITEs (retransmitted
 * until their ACK arrives) are skipped. */
static int final_answer(int fd, int port, int n)
{
    char callid[32];
    snprintf(callid, sizeof callid, "Call-ID: shed-%d\r\n", n);
    for (;;) {
        char buf[4096];
        ssize_t k = recv(fd, buf, sizeof buf - 1, 0);
        if (k <= 0)
            return 0;
        buf[k] = '\0';
        int status = 0;
        if (sscanf(buf, "SIP/2.0 %d", &status) != 1 || status < 200 || strstr(buf, callid) == NULL)
            continue;
        char ack[1024];
        snprintf(ack, sizeof ack,
                 "ACK sip:100@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKshed%d\r\n"
                 "From: <sip:79990000000@127.0.0.1>;tag=shed%d\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: shed-%d\r\n"
                 "CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                 port, local_port(fd), n, n, n);
        send_to(fd, port, ack);
        return status;
    }
}

/* Sends INVITE number n; returns final_answer(). */
static int invite(int fd, int port, int n)
{
    int lport = local_port(fd);
    const char *sdp = "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                      "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    char msg[2048];
    snprintf(msg, sizeof msg,
             "INVITE sip:100@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKshed%d\r\n"
             "From: <sip:79990000000@127.0.0.1>;tag=shed%d\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: shed-%d\r\n"
             "CSeq: 1 INVITE\r\nContact: <sip:79990000000@127.0.0.1:%d>\r\nMax-Forwards: 70\r\n"
             "Content-Type: application/sdp\r\nContent-Length: %zu\r\n\r\n%s",
             port, lport, n, n, n, lport, strlen(sdp), sdp);
    send_to(fd, port, msg);
    return final_answer(fd, port, n);
}

/* Runs the loop until the voice thread's answer to `offered` calls went out. */
static void run_core(uv_loop_t *loop, core *c, int offered)
{
    for (int i = 0; i < 400 && c->offered < offered; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        sleep_ms(5);
    }
    assert_int_equal(c->offered, offered);
    for (int i = 0; i < 20; i++) { /* let the reject reach the voice thread */
        uv_run(loop, UV_RUN_NOWAIT);
        sleep_ms(5);
    }
}

static void stopped(void *arg)
{
    *(bool *)arg = true;
}

static void test_sheds_while_the_core_lags(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    core c = {0};
    sb_voice_options opt = {.host = "127.0.0.1",
                            .realm = "switchboard",
                            .no_media_seconds = 30,
                            .ring_timeout_seconds = 30,
                            .overload_lag_ms = 300};
    assert_int_equal(sb_voice_start(&c.v, &loop, &opt, on_event, &c), 0);
    int port = sb_voice_port(c.v);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in me = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &me.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof me), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    /* 1: a core that keeps up. The final answer follows the core's
     * decision, so the INVITE goes out, the core runs, then we read it. */
    struct timeval quick = {0, 20000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &quick, sizeof quick);
    assert_int_equal(invite(fd, port, 1), 0); /* nothing final yet: the core has not run */
    run_core(&loop, &c, 1);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int status = final_answer(fd, port, 1);
    assert_int_equal(status, 486);

    /* 2: the core stops taking events; a call offered now waits in the
     * queue, and once it has waited over overload_lag_ms new calls get 503 */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &quick, sizeof quick);
    assert_int_equal(invite(fd, port, 2), 0); /* offered; the core does not run */
    sleep_ms(450);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(invite(fd, port, 3), 503);
    assert_int_equal(invite(fd, port, 4), 503);
    assert_int_equal(c.offered, 1);

    /* 3: the core catches up (call 2 is decided) and takes calls again */
    run_core(&loop, &c, 2);
    sleep_ms(100);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &quick, sizeof quick);
    assert_int_equal(invite(fd, port, 5), 0); /* offered, not shed: it waits for the core */
    run_core(&loop, &c, 3);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(final_answer(fd, port, 5), 486);

    sb_buf m;
    sb_buf_init(&m);
    sb_voice_metrics_text(c.v, &m);
    assert_non_null(strstr(m.p, "switchboard_voice_invites_shed_total 2\n"));
    sb_buf_free(&m);

    bool done = false;
    sb_voice_stop(c.v, stopped, &done);
    for (int i = 0; i < 1000 && !done; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        sleep_ms(5);
    }
    assert_true(done);
    sb_voice_free(c.v);
    close(fd);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sheds_while_the_core_lags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
