/* test_template.c - template parsing (placeholders checked when saved,
 * errors that say which and where) and rendering. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sb.h"
#include "engine/template.h"

/* Values for the lookup: "name=value" pairs; a name not listed is NULL. */
typedef struct values {
    const char *const *pairs;
    int calls;
} values;

static const char *lookup(void *ctx, const char *name)
{
    values *v = ctx;
    v->calls++;
    size_t n = strlen(name);
    for (size_t i = 0; v->pairs[i] != NULL; i++)
        if (strncmp(v->pairs[i], name, n) == 0 && v->pairs[i][n] == '=')
            return v->pairs[i] + n + 1;
    return NULL;
}

static const char *const all_values[] = {
    "contact.name=Иван Петров",
    "contact.first_name=Иван",
    "contact.phone=+7 701 123 45 67",
    "contact.email=ivan@example.kz",
    "ticket.number=4512",
    "ticket.subject=Доставка",
    "ticket.status=открыт",
    "ticket.priority=высокий",
    "ticket.channel=telegram",
    "agent.name=Олена Коваленко",
    "agent.first_name=Олена",
    "team.name=Поддержка",
    "business_hours.next_open=завтра в 09:00",
    "csat.scale=1–5",
    "company.name=Switchboard",
    NULL,
};

/* Parses and renders, failing the test on a parse error. */
static char *render(const char *text, const char *const *pairs)
{
    sb_template *t = NULL;
    char err[256];
    int rc = sb_template_parse(text, &t, err, sizeof err);
    if (rc != 0)
        fail_msg("parse \"%s\": %s", text, err);
    values v = {pairs, 0};
    char *out = sb_template_render(t, lookup, &v);
    sb_template_free(t);
    return out;
}

static void expect_render(const char *text, const char *want)
{
    char *got = render(text, all_values);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void expect_error(const char *text, const char *want)
{
    sb_template *t = (sb_template *)&t; /* must be reset to NULL */
    char err[256];
    assert_int_equal(sb_template_parse(text, &t, err, sizeof err), SB_EINVAL);
    assert_null(t);
    assert_string_equal(err, want);
}

static void test_placeholder_list(void **state)
{
    const char *want[] = {"contact.name",
                          "contact.first_name",
                          "contact.phone",
                          "contact.email",
                          "ticket.number",
                          "ticket.subject",
                          "ticket.status",
                          "ticket.priority",
                          "ticket.channel",
                          "agent.name",
                          "agent.first_name",
                          "team.name",
                          "business_hours.next_open",
                          "csat.scale",
                          "company.name"};
    size_t n = 0;
    while (sb_template_placeholders[n] != NULL)
        n++;
    assert_int_equal(n, SB_ARRAY_LEN(want));
    for (size_t i = 0; i < n; i++)
        assert_string_equal(sb_template_placeholders[i], want[i]);
}

static void test_render_all(void **state)
{
    expect_render("Здравствуйте, {{contact.name}}! Ваш запрос №{{ticket.number}} принят.",
                  "Здравствуйте, Иван Петров! Ваш запрос №4512 принят.");

    /* Every placeholder once, in one template. */
    sb_buf text, want;
    sb_buf_init(&text);
    sb_buf_init(&want);
    for (size_t i = 0; sb_template_placeholders[i] != NULL; i++) {
        sb_buf_printf(&text, "%s={{%s}};", sb_template_placeholders[i], sb_template_placeholders[i]);
        sb_buf_printf(&want, "%s;", all_values[i]);
    }
    char *got = render(text.p, all_values);
    assert_string_equal(got, want.p);
    free(got);
    sb_buf_free(&text);
    sb_buf_free(&want);

    /* Adjacent placeholders, placeholders only, repeats. */
    expect_render("{{contact.first_name}}{{agent.first_name}}", "ИванОлена");
    expect_render("{{ticket.number}}", "4512");
    expect_render("{{ticket.number}}/{{ticket.number}}", "4512/4512");
    expect_render("Оцените нас по шкале {{csat.scale}}. {{company.name}}", "Оцените нас по шкале 1–5. Switchboard");
}

static void test_render_plain(void **state)
{
    expect_render("", "");
    expect_render("Просто текст без подстановок", "Просто текст без подстановок");
    /* Lone braces and backslashes are text. */
    expect_render("{ } }} {x} \\ \\n {", "{ } }} {x} \\ \\n {");
    expect_render("a}}b", "a}}b");
}

static void test_spaces_in_braces(void **state)
{
    expect_render("Привет, {{ contact.first_name }}!", "Привет, Иван!");
    expect_render("Привет, {{contact.first_name   }}!", "Привет, Иван!");
    expect_render("Привет, {{\tcontact.first_name\t}}!", "Привет, Иван!");
    expect_render("{{  agent.name}}", "Олена Коваленко");
}

static void test_escaped_braces(void **state)
{
    expect_render("Шаблон: \\{{contact.name}}", "Шаблон: {{contact.name}}");
    expect_render("\\{{", "{{");
    expect_render("\\{{ не плейсхолдер }} и {{contact.first_name}}", "{{ не плейсхолдер }} и Иван");
    expect_render("\\{{unknown.thing}}", "{{unknown.thing}}");
    /* Only the backslash right before "{{" escapes. */
    expect_render("\\\\{{ticket.number}}", "\\{{ticket.number}}");
    expect_render("\\{ {{ticket.number}}", "\\{ 4512");
}

static void test_missing_values(void **state)
{
    static const char *const some[] = {"contact.first_name=Айгүл", NULL};
    char *got = render("Сәлем, {{contact.first_name}}! Оператор: {{agent.name}}.", some);
    assert_string_equal(got, "Сәлем, Айгүл! Оператор: .");
    free(got);

    /* No lookup at all: every placeholder is empty. */
    sb_template *t = NULL;
    assert_int_equal(sb_template_parse("[{{team.name}}]", &t, NULL, 0), 0);
    got = sb_template_render(t, NULL, NULL);
    assert_string_equal(got, "[]");
    free(got);
    sb_template_free(t);

    assert_null(sb_template_render(NULL, lookup, NULL));
    sb_template_free(NULL);
}

/* Values are inserted as they are: a value that looks like a placeholder
 * is not expanded again. */
static void test_values_not_reparsed(void **state)
{
    static const char *const tricky[] = {"contact.name={{agent.name}} \\{{", "agent.name=Олена", NULL};
    char *got = render("{{contact.name}} / {{agent.name}}", tricky);
    assert_string_equal(got, "{{agent.name}} \\{{ / Олена");
    free(got);
}

/* The lookup is asked with the canonical name, once per placeholder. */
static void test_lookup_calls(void **state)
{
    sb_template *t = NULL;
    assert_int_equal(sb_template_parse("{{ ticket.number }}-{{ticket.number}}-x", &t, NULL, 0), 0);
    values v = {all_values, 0};
    char *got = sb_template_render(t, lookup, &v);
    assert_string_equal(got, "4512-4512-x");
    assert_int_equal(v.calls, 2);
    free(got);
    /* A parsed template renders any number of times. */
    got = sb_template_render(t, lookup, &v);
    assert_string_equal(got, "4512-4512-x");
    free(got);
    sb_template_free(t);
}

static void test_errors(void **state)
{
    expect_error("Hello {{contact.nmae}}", "unknown placeholder {{contact.nmae}} at offset 6");
    /* Offsets are in bytes: "Здравствуйте, " is 26. */
    expect_error("Здравствуйте, {{contact.nmae}}!", "unknown placeholder {{contact.nmae}} at offset 26");
    expect_error("{{ Contact.Name }}", "unknown placeholder {{Contact.Name}} at offset 0");
    expect_error("{{ticket}}", "unknown placeholder {{ticket}} at offset 0");
    expect_error("{{contact.name}} {{ticket.number }", "unclosed {{ at offset 17");
    expect_error("Привет, {{contact.name", "unclosed {{ at offset 14");
    expect_error("{{", "unclosed {{ at offset 0");
    expect_error("{{contact.name\n}}", "unclosed {{ at offset 0");
    /* A second "{{" before any "}}": the first was left open. */
    expect_error("a {{ oops {{contact.name}}", "unclosed {{ at offset 2");
    expect_error("{{}}", "empty placeholder name at offset 0");
    expect_error("x {{   }} y", "empty placeholder name at offset 2");
    /* An escaped "{{" is skipped, the next one counts. */
    expect_error("\\{{ {{nope}}", "unknown placeholder {{nope}} at offset 4");
    /* A very long name is quoted in part. */
    char name[200];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    char text[256];
    snprintf(text, sizeof text, "{{%s}}", name);
    char want[128];
    snprintf(want, sizeof want, "unknown placeholder {{%.64s...}} at offset 0", name);
    expect_error(text, want);
    expect_error(NULL, "no template text");
}

static void test_size_limit(void **state)
{
    char *text = malloc(10002);
    assert_non_null(text);
    memset(text, 'a', 10001);
    text[10001] = '\0';
    expect_error(text, "template longer than 10000 bytes");
    text[10000] = '\0'; /* exactly 10,000 bytes is allowed */
    char *got = render(text, all_values);
    assert_int_equal(strlen(got), 10000);
    free(got);
    free(text);
}

static void test_invalid_utf8(void **state)
{
    expect_error("Привет\xff {{contact.name}}", "invalid UTF-8 at offset 12");
    expect_error("ok \xd0", "invalid UTF-8 at offset 3");
    expect_error("\xc0\xaf", "invalid UTF-8 at offset 0");         /* overlong "/" */
    expect_error("ab\xed\xa0\x80", "invalid UTF-8 at offset 2");   /* surrogate */
    expect_error("\xf4\x90\x80\x80", "invalid UTF-8 at offset 0"); /* above U+10FFFF */
}

/* A short error buffer never ends inside a UTF-8 character. */
static void test_error_truncation(void **state)
{
    sb_template *t = NULL;
    char err[31];
    assert_int_equal(sb_template_parse("{{контакт.имя}}", &t, err, sizeof err), SB_EINVAL);
    /* "unknown placeholder {{" is 22 bytes, then 4 letters of 2 bytes fit. */
    assert_string_equal(err, "unknown placeholder {{конт");
    assert_true(sb_utf8_valid(err, strlen(err)));
    char err2[30];
    assert_int_equal(sb_template_parse("{{контакт.имя}}", &t, err2, sizeof err2), SB_EINVAL);
    assert_string_equal(err2, "unknown placeholder {{кон");
    assert_true(sb_utf8_valid(err2, strlen(err2)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placeholder_list),
        cmocka_unit_test(test_render_all),
        cmocka_unit_test(test_render_plain),
        cmocka_unit_test(test_spaces_in_braces),
        cmocka_unit_test(test_escaped_braces),
        cmocka_unit_test(test_missing_values),
        cmocka_unit_test(test_values_not_reparsed),
        cmocka_unit_test(test_lookup_calls),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_error_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
