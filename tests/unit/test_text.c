/* test_text.c - word search with Unicode case folding, bounded regular
 * expressions and the language guess on realistic customer messages. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/sb.h"
#include "engine/text.h"

/* ---- sb_text_contains ---- */

static void test_contains_case_folding(void **state)
{
    assert_true(sb_text_contains("Срочно", "срочно"));
    assert_true(sb_text_contains("СРОЧНО", "срочно"));
    assert_true(sb_text_contains("срочно!", "срочно"));
    assert_true(sb_text_contains("Это срочно!!! Помогите", "СРОЧНО"));
    assert_true(sb_text_contains("Нужно СрОчНо", "срочно"));
    assert_true(sb_text_contains("URGENT: call me", "urgent"));
    assert_true(sb_text_contains("this is urgent", "URGENT"));
    /* Full folding: ß is "ss" both ways. */
    assert_true(sb_text_contains("STRASSE 5", "straße"));
    assert_true(sb_text_contains("Hauptstraße 5", "HAUPTSTRASSE"));
    /* Default (not Turkish) folding: I is i, dotted İ is i + combining dot,
     * dotless ı stays apart from i. */
    assert_true(sb_text_contains("ISTANBUL office", "istanbul"));
    assert_true(sb_text_contains("İSTANBUL", "İstanbul"));
    assert_false(sb_text_contains("ıstanbul", "istanbul"));
    /* Ukrainian and Kazakh capitals fold too. */
    assert_true(sb_text_contains("ЇЖАК і ҐАНОК", "їжак"));
    assert_true(sb_text_contains("ҚАШАН келеді?", "қашан"));
    /* ё and е are different letters. */
    assert_true(sb_text_contains("Всё хорошо", "всё"));
    assert_true(sb_text_contains("ВСЁ ХОРОШО", "всё"));
    assert_false(sb_text_contains("Все хорошо", "всё"));
    assert_false(sb_text_contains("Всё хорошо", "все"));
}

static void test_contains_normalisation(void **state)
{
    /* е + combining diaeresis is ё after NFC; й decomposed likewise. */
    assert_true(sb_text_contains("вс\xd0\xb5\xcc\x88 готово", "всё"));
    assert_true(sb_text_contains("Мои\xcc\x86 заказ", "мой"));
    /* An invisible soft hyphen or zero-width space does not split a word. */
    assert_true(sb_text_contains("сроч\xc2\xadно", "срочно"));
    assert_true(sb_text_contains("сроч\xe2\x80\x8bно", "срочно"));
    /* Apostrophes: ASCII, U+2019 and U+02BC are the same inside a word. */
    assert_true(sb_text_contains("Де моє м’ясо?", "м'ясо"));
    assert_true(sb_text_contains("мʼясо", "м’ясо"));
    assert_false(sb_text_contains("м'ясо", "м"));
    assert_true(sb_text_contains("I don't know", "don't"));
}

static void test_contains_whole_words(void **state)
{
    assert_false(sb_text_contains("несрочно", "срочно"));
    assert_false(sb_text_contains("срочность", "срочно"));
    assert_false(sb_text_contains("Это несрочно, спасибо", "срочно"));
    assert_true(sb_text_contains("несрочно, но срочно", "срочно"));
    assert_false(sb_text_contains("urgently", "urgent"));
    assert_false(sb_text_contains("заказ1234", "заказ"));
    assert_true(sb_text_contains("заказ-1234", "заказ"));
    assert_true(sb_text_contains("Номер 1234.", "1234"));
    assert_false(sb_text_contains("Номер 12345", "1234"));
    /* Punctuation, quotes and brackets are separators. */
    assert_true(sb_text_contains("«срочно»", "срочно"));
    assert_true(sb_text_contains("(срочно)", "срочно"));
    assert_true(sb_text_contains("'срочно'", "срочно"));
    assert_true(sb_text_contains("срочно\n", "срочно"));
    assert_true(sb_text_contains("\tсрочно", "срочно"));
    assert_true(sb_text_contains("срочно", "  срочно! "));
}

static void test_contains_phrases(void **state)
{
    assert_true(sb_text_contains("Где мой заказ?", "мой заказ"));
    assert_true(sb_text_contains("Где МОЙ   ЗАКАЗ?", "мой заказ"));
    assert_true(sb_text_contains("мой, заказ", "мой заказ"));
    assert_true(sb_text_contains("мой\n\n-- заказ", "мой заказ"));
    assert_true(sb_text_contains("мой заказ", "мой-заказ"));
    assert_true(sb_text_contains("вернуть деньги за заказ", "деньги за заказ"));
    assert_false(sb_text_contains("мой новый заказ", "мой заказ"));
    assert_false(sb_text_contains("заказ мой", "мой заказ"));
    assert_false(sb_text_contains("мой заказы", "мой заказ"));
    assert_false(sb_text_contains("мой", "мой заказ"));
    /* A first word that repeats does not hide a later match. */
    assert_true(sb_text_contains("мой мой заказ", "мой заказ"));
    assert_true(sb_text_contains("not delivered, never delivered yet", "delivered yet"));
}

static void test_contains_bad_input(void **state)
{
    assert_false(sb_text_contains("срочно", ""));
    assert_false(sb_text_contains("срочно", "   "));
    assert_false(sb_text_contains("срочно!", "!"));
    assert_false(sb_text_contains("", "срочно"));
    assert_false(sb_text_contains(NULL, "срочно"));
    assert_false(sb_text_contains("срочно", NULL));
    /* Invalid UTF-8 in either never matches: a stray byte, a truncated
     * sequence, an overlong "/", a surrogate. */
    assert_false(sb_text_contains("срочно \xff", "срочно"));
    assert_false(sb_text_contains("срочно \xd1", "срочно"));
    assert_false(sb_text_contains("срочно \xc0\xaf", "срочно"));
    assert_false(sb_text_contains("срочно \xed\xa0\x80", "срочно"));
    assert_false(sb_text_contains("срочно", "срочно\xff"));
}

/* ---- regular expressions ---- */

static bool re_matches(const char *pattern, const char *text)
{
    sb_regex *re = NULL;
    char err[256];
    int rc = sb_regex_compile(pattern, &re, err, sizeof err);
    if (rc != 0)
        fail_msg("compile \"%s\": %s", pattern, err);
    bool m = sb_regex_match(re, text);
    sb_regex_free(re);
    return m;
}

static void test_regex_unicode(void **state)
{
    assert_true(re_matches("сроч\\w*", "СРОЧНО"));
    assert_true(re_matches("сроч\\w*", "это срочно"));
    assert_true(re_matches("^срочно$", "СрОчНо"));
    assert_true(re_matches("\\bзаказ\\s*№?\\s*\\d+", "Заказ № 123"));
    assert_true(re_matches("\\bзаказ\\s*№?\\s*\\d+", "где мой заказ №4512?"));
    assert_true(re_matches("\\bзаказ\\s*№?\\s*\\d+", "ЗАКАЗ 77"));
    assert_false(re_matches("\\bзаказ\\s*№?\\s*\\d+", "перезаказ 123"));
    assert_false(re_matches("\\bзаказ\\s*№?\\s*\\d+", "заказ без номера"));
    /* \w and \b know Cyrillic letters (UCP): "ы" is a word character. */
    assert_true(re_matches("^\\w+$", "Қазақстан"));
    assert_true(re_matches("\\bвы\\b", "Вы где?"));
    assert_true(re_matches("ґанок", "ҐАНОК"));
    assert_true(re_matches("straße", "STRAßE"));
    assert_true(re_matches("срочно", "несрочно!")); /* a pattern is not a word search */
    assert_false(re_matches("^срочно", "несрочно"));
    /* Invalid UTF-8 in the text never matches and never crashes. */
    assert_false(re_matches("срочно", "срочно \xff"));
    assert_false(re_matches(".", "\xc0\xaf"));
    assert_false(re_matches("x", NULL));
    assert_false(sb_regex_match(NULL, "x"));
}

static void test_regex_errors(void **state)
{
    sb_regex *re = (sb_regex *)&re; /* must be reset to NULL on failure */
    char err[256];

    assert_int_equal(sb_regex_compile("(abc", &re, err, sizeof err), SB_EINVAL);
    assert_null(re);
    assert_string_equal(err, "missing closing parenthesis at offset 4");

    assert_int_equal(sb_regex_compile("abc)", &re, err, sizeof err), SB_EINVAL);
    assert_string_equal(err, "unmatched closing parenthesis at offset 3");

    assert_int_equal(sb_regex_compile("заказ[", &re, err, sizeof err), SB_EINVAL);
    assert_non_null(strstr(err, "missing terminating ]"));
    assert_non_null(strstr(err, "at offset 11")); /* bytes: 5 Cyrillic letters and "[" */

    assert_int_equal(sb_regex_compile("a{2,1}", &re, err, sizeof err), SB_EINVAL);
    assert_non_null(strstr(err, "at offset"));

    /* \C could match half a character. */
    assert_int_equal(sb_regex_compile("\\C", &re, err, sizeof err), SB_EINVAL);
    assert_non_null(strstr(err, "at offset"));

    /* The pattern must be valid UTF-8 itself. */
    assert_int_equal(sb_regex_compile("ab\xff", &re, err, sizeof err), SB_EINVAL);
    assert_non_null(strstr(err, "UTF-8"));
    assert_non_null(strstr(err, "at offset 2"));

    assert_int_equal(sb_regex_compile("", &re, err, sizeof err), SB_EINVAL);
    assert_string_equal(err, "empty pattern");
    assert_int_equal(sb_regex_compile(NULL, &re, err, sizeof err), SB_EINVAL);

    char big[1100];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(sb_regex_compile(big, &re, err, sizeof err), SB_EINVAL);
    assert_string_equal(err, "pattern longer than 1000 bytes");
    big[1000] = '\0'; /* exactly 1000 bytes is allowed */
    assert_int_equal(sb_regex_compile(big, &re, err, sizeof err), 0);
    sb_regex_free(re);

    /* A tiny error buffer is truncated, not overrun; no buffer is fine. */
    char tiny[8];
    assert_int_equal(sb_regex_compile("(", &re, tiny, sizeof tiny), SB_EINVAL);
    assert_string_equal(tiny, "missing");
    assert_int_equal(sb_regex_compile("(", &re, NULL, 0), SB_EINVAL);
    sb_regex_free(NULL);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Exponential backtracking stops at the match limit and reads as "no
 * match". With 64 'a's an unbounded matcher would need about 2^64 steps, so
 * finishing at all shows the limit works; the time bound is 1000 times what
 * the limit costs, loose enough for a loaded machine under sanitizers. */
static void test_regex_catastrophic(void **state)
{
    sb_regex *re = NULL;
    char err[256];
    assert_int_equal(sb_regex_compile("(a+)+$", &re, err, sizeof err), 0);

    char text[80];
    memset(text, 'a', 30);
    memcpy(text + 30, "!", 2);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_false(sb_regex_match(re, text));
    assert_true(seconds_since(&t0) < 1.0);

    memset(text, 'a', 64);
    memcpy(text + 64, "!", 2);
    assert_false(sb_regex_match(re, text));
    text[64] = '\0';
    assert_true(sb_regex_match(re, text)); /* the same pattern still matches where it should */
    sb_regex_free(re);

    assert_int_equal(sb_regex_compile("(x+x+)+y", &re, err, sizeof err), 0);
    memset(text, 'x', 64);
    text[64] = '\0';
    assert_false(sb_regex_match(re, text));
    sb_regex_free(re);
}

/* A group repeated once per character of a long text outgrows the default
 * JIT stack; the match must still be found. */
static void test_regex_long_text(void **state)
{
    size_t n = 64 * 1024;
    char *text = malloc(n + 64);
    assert_non_null(text);
    size_t i = 0;
    while (i + 4 <= n) {
        memcpy(text + i, "ab  ", 4);
        i += 4;
    }
    snprintf(text + i, 64, "заказ № 42");
    assert_true(re_matches("^(?:ab\\s*)*заказ", text));
    assert_true(re_matches("\\bзаказ\\s*№?\\s*\\d+", text));
    assert_false(re_matches("^(?:ab\\s*)*доставка", text));
    free(text);
}

/* One compiled pattern is shared by threads: matching must not write to it. */
typedef struct shared_re {
    sb_regex *re;
    int hits;
} shared_re;

static void *match_many(void *arg)
{
    shared_re *s = arg;
    for (int i = 0; i < 2000; i++)
        if (sb_regex_match(s->re, i % 2 ? "Заказ № 123" : "нет номера"))
            s->hits++;
    return NULL;
}

static void test_regex_threads(void **state)
{
    sb_regex *re = NULL;
    assert_int_equal(sb_regex_compile("\\bзаказ\\s*№?\\s*\\d+", &re, NULL, 0), 0);
    shared_re s[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (shared_re){re, 0};
        assert_int_equal(pthread_create(&th[i], NULL, match_many, &s[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(s[i].hits, 1000);
    }
    sb_regex_free(re);
}

/* ---- language ---- */

static void expect_lang(const char *want, const char *text)
{
    const char *got = sb_text_language(text);
    if (want == NULL && got == NULL)
        return;
    if (want == NULL || got == NULL || strcmp(want, got) != 0)
        fail_msg("language of \"%s\": want %s, got %s", text ? text : "(null)", want ? want : "NULL",
                 got ? got : "NULL");
}

/* The models load once, whichever thread asks first. */
static void *guess_many(void *arg)
{
    int *ok = arg;
    for (int i = 0; i < 200; i++) {
        const char *l = sb_text_language(i % 2 ? "Сәлеметсіз бе, тапсырысым қашан келеді?"
                                               : "Здравствуйте, у меня не работает доставка заказа");
        if (l != NULL && strcmp(l, i % 2 ? "kk" : "ru") == 0)
            (*ok)++;
    }
    return NULL;
}

static void test_language_threads(void **state)
{
    pthread_t th[4];
    int ok[4] = {0};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, guess_many, &ok[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ok[i], 200);
    }
}

static void test_language_ru(void **state)
{
    expect_lang("ru", "Здравствуйте, у меня не работает доставка заказа");
    expect_lang("ru", "Добрый день, когда будет доставка?");
    expect_lang("ru", "Подскажите, пожалуйста, где мой заказ? Жду уже неделю");
    expect_lang("ru", "Спасибо большое, всё получили");
    expect_lang("ru", "Хочу вернуть товар, он пришёл сломанный");
    expect_lang("ru", "Курьер не приехал, жду с утра");
    expect_lang("ru", "Не могу оплатить картой");
    expect_lang("ru", "ВЕРНИТЕ ДЕНЬГИ ЗА ЗАКАЗ 4512!!!");
    /* A Kazakh name does not make a Russian message Kazakh. */
    expect_lang("ru", "Здравствуйте, меня зовут Айгүл, мой заказ не пришёл");
    expect_lang("ru",
                "Здравствуйте, я заказала у вас платье неделю назад, но до сих пор не получила никакого "
                "уведомления об отправке. Подскажите, пожалуйста, что случилось с моим заказом и когда его ждать");
}

static void test_language_uk(void **state)
{
    expect_lang("uk", "Добрий день, коли буде доставка?");
    expect_lang("uk", "Доброго дня! Де моє замовлення?");
    expect_lang("uk", "Дякую, все отримали");
    expect_lang("uk", "Хочу повернути товар, він прийшов зламаний");
    expect_lang("uk", "Підкажіть, будь ласка, скільки коштує доставка до Києва");
    expect_lang("uk", "Кур'єр не приїхав, чекаю з ранку");
    expect_lang("uk", "Курʼєр не приїхав");
    expect_lang("uk", "Не можу оплатити карткою");
    expect_lang("uk", "Добрий день, мені прийшов не той розмір, хочу обміняти на більший, як це зробити і чи "
                      "потрібно платити за доставку");
}

static void test_language_kk(void **state)
{
    expect_lang("kk", "Сәлеметсіз бе, тапсырысым қашан келеді?");
    expect_lang("kk", "Сәлем! Менің тапсырысым әлі келген жоқ");
    expect_lang("kk", "Рахмет, бәрі жақсы");
    expect_lang("kk", "Тауарды қайтарғым келеді, ол сынған күйде келді");
    expect_lang("kk", "Жеткізу қанша тұрады?");
    expect_lang("kk", "Картамен төлей алмаймын");
    /* Typed on a Russian keyboard, without the Kazakh letters. */
    expect_lang("kk", "Салем, тапсырысым кайда?");
}

static void test_language_en(void **state)
{
    expect_lang("en", "Hello, my order has not arrived yet");
    expect_lang("en", "Hi, when will my package be delivered?");
    expect_lang("en", "Thank you so much, everything is fine");
    expect_lang("en", "I want to return the item, it arrived broken");
    expect_lang("en", "Can you tell me how much the delivery costs?");
    expect_lang("en", "PLEASE REFUND MY MONEY");
    /* Mostly Latin letters: the English rules decide. */
    expect_lang("en", "Привет, my order is late");
}

static void test_language_unknown(void **state)
{
    expect_lang(NULL, NULL);
    expect_lang(NULL, "");
    expect_lang(NULL, "Да");
    expect_lang(NULL, "Ok");
    expect_lang(NULL, "?!");
    expect_lang(NULL, "123 456");
    expect_lang(NULL, "😀😀😀");
    /* Nothing tells Russian, Ukrainian and Kazakh apart here. */
    expect_lang(NULL, "Доставка");
    expect_lang(NULL, "Так");
    expect_lang(NULL, "Оператор");
    /* Latin script but not English. */
    expect_lang(NULL, "Thanks");
    expect_lang(NULL, "Zdravstvuyte, zakaz ne prishel");
    expect_lang(NULL, "Hallo, meine Bestellung ist nicht angekommen");
    expect_lang(NULL, "Hola, mi pedido no ha llegado todavía");
    /* Other scripts and other Cyrillic languages. */
    expect_lang(NULL, "我的订单在哪里");
    expect_lang(NULL, "Добры дзень, калі будзе дастаўка?");
    expect_lang(NULL, "Добар дан, где је моја поруџбина?");
    /* Invalid UTF-8. */
    expect_lang(NULL, "Здравствуйте, где мой заказ \xff");
}

/* Random bytes and random valid text: no crash, no sanitizer report. The
 * generator is seeded, so a failure repeats. */
static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void test_random_input(void **state)
{
    /* The first ten pieces hold word characters, the rest do not. */
    static const char *const pieces[] = {"срочно",
                                         "СРОЧНО",
                                         "ё",
                                         "е\xcc\x88",
                                         "ß",
                                         "İ",
                                         "қ",
                                         "ї",
                                         "a",
                                         "1",
                                         " ",
                                         "!",
                                         "’",
                                         "'",
                                         "\xc2\xad",
                                         "\xe2\x80\x8b",
                                         "\xf0\x9f\x98\x80",
                                         "\xff",
                                         "\xd0",
                                         "\xc0\xaf"};
    uint32_t seed = 12345;
    sb_regex *re = NULL;
    assert_int_equal(sb_regex_compile("(сроч|a)+\\w*$", &re, NULL, 0), 0);
    for (int round = 0; round < 3000; round++) {
        char text[128], phrase[32];
        size_t n = 0, m = 0;
        bool has_word = false;
        int parts = (int)(rnd(&seed) % 12);
        for (int i = 0; i < parts; i++) {
            size_t k = rnd(&seed) % SB_ARRAY_LEN(pieces);
            size_t len = strlen(pieces[k]);
            if (n + len < sizeof text) {
                memcpy(text + n, pieces[k], len);
                n += len;
                has_word |= k < 10;
            }
        }
        text[n] = '\0';
        bool random_bytes = round % 3 == 0;
        if (random_bytes) {
            for (size_t i = 0; i < n; i++)
                text[i] = (char)rnd(&seed);
            text[n] = '\0'; /* stray NULs just shorten the string */
        }
        parts = (int)(rnd(&seed) % 4);
        for (int i = 0; i < parts; i++) {
            const char *p = pieces[rnd(&seed) % SB_ARRAY_LEN(pieces)];
            size_t len = strlen(p);
            if (m + len < sizeof phrase) {
                memcpy(phrase + m, p, len);
                m += len;
            }
        }
        phrase[m] = '\0';
        bool text_valid = sb_utf8_valid(text, strlen(text));
        bool valid = text_valid && sb_utf8_valid(phrase, strlen(phrase));
        if (sb_text_contains(text, phrase))
            assert_true(valid);
        if (sb_regex_match(re, text))
            assert_true(text_valid);
        if (sb_text_language(text) != NULL)
            assert_true(text_valid);
        /* Valid text with a word in it contains itself. */
        if (!random_bytes && text_valid)
            assert_int_equal(sb_text_contains(text, text), has_word);
    }
    sb_regex_free(re);
}

static void test_language_long_text(void **state)
{
    /* Only the head of a long text is read; cutting it mid-character is safe. */
    size_t n = 20000;
    char *text = malloc(n + 1);
    assert_non_null(text);
    const char *word = "Здравствуйте ";
    size_t wl = strlen(word), i = 0;
    text[i++] = 'x'; /* shifts every character so the cut falls inside one */
    while (i + wl <= n) {
        memcpy(text + i, word, wl);
        i += wl;
    }
    text[i] = '\0';
    expect_lang("ru", text);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contains_case_folding), cmocka_unit_test(test_contains_normalisation),
        cmocka_unit_test(test_contains_whole_words),  cmocka_unit_test(test_contains_phrases),
        cmocka_unit_test(test_contains_bad_input),    cmocka_unit_test(test_regex_unicode),
        cmocka_unit_test(test_regex_errors),          cmocka_unit_test(test_regex_catastrophic),
        cmocka_unit_test(test_regex_long_text),       cmocka_unit_test(test_regex_threads),
        cmocka_unit_test(test_language_threads),      cmocka_unit_test(test_language_ru),
        cmocka_unit_test(test_language_uk),           cmocka_unit_test(test_language_kk),
        cmocka_unit_test(test_language_en),           cmocka_unit_test(test_language_unknown),
        cmocka_unit_test(test_language_long_text),    cmocka_unit_test(test_random_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
