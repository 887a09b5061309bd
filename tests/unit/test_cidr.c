/* test_cidr.c - address lists for the SIP trunk's allow-list. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "base/cidr.h"
#include "base/sb.h"

static bool match(const char *list, const char *ip)
{
    sb_cidr l[8];
    size_t n = 0;
    assert_int_equal(sb_cidr_parse_list(list, l, 8, &n), 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return sb_cidr_match(l, n, (struct sockaddr *)&ss);
}

static void test_parse(void **state)
{
    (void)state;
    sb_cidr l[3];
    size_t n = 99;
    assert_int_equal(sb_cidr_parse_list("", l, 3, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(sb_cidr_parse_list(" 10.0.0.0/8,192.0.2.7  2001:db8::/32 ", l, 3, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(l[0].bits, 8);
    assert_int_equal(l[1].bits, 32);
    assert_true(l[2].v6);
    assert_int_equal(l[2].bits, 32);
    /* every way an entry can be wrong */
    const char *bad[] = {"10.0.0.0/33", "10.1.2.3/8", "10.0.0.0/",  "10.0.0.0/x",  "example.org",
                         "10.0.0",      "::1/129",    "1.2.3.4/-1", "1.2.3.4/0008"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sb_cidr_parse_list(bad[i], l, 3, &n), SB_EINVAL);
    /* more entries than room */
    assert_int_equal(sb_cidr_parse_list("1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4", l, 3, &n), SB_EINVAL);
}

static void test_match(void **state)
{
    (void)state;
    assert_true(match("10.0.0.0/8", "10.200.1.1"));
    assert_false(match("10.0.0.0/8", "11.0.0.1"));
    assert_true(match("192.0.2.7", "192.0.2.7"));
    assert_false(match("192.0.2.7", "192.0.2.8"));
    assert_true(match("198.51.100.128/25", "198.51.100.200"));
    assert_false(match("198.51.100.128/25", "198.51.100.127"));
    assert_true(match("0.0.0.0/0", "203.0.113.1"));
    assert_false(match("0.0.0.0/0", "2001:db8::1")); /* an IPv4 entry is not an IPv6 one */
    assert_true(match("2001:db8::/32", "2001:db8:ffff::1"));
    assert_false(match("2001:db8::/32", "2001:db9::1"));
    assert_true(match("::1", "::1"));
    /* a dual-stack socket's IPv4 peer */
    assert_true(match("127.0.0.0/8", "::ffff:127.0.0.1"));
    assert_false(match("127.0.0.0/8", "::ffff:128.0.0.1"));
    assert_false(match("", "127.0.0.1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
