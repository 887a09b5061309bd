/* text.c - text tests for rules: Unicode case-insensitive word search,
 * PCRE2 regular expressions with bounded matching, language guess.
 *
 * Everything here is pure and thread-safe: the only shared state is the
 * language models, loaded once under pthread_once and read-only after. */
#include "engine/text.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>
#include <fingerprint.h>

#include "base/sb.h"

/* Where Debian's libexttextcat-data puts the n-gram models. */
#ifndef SB_TEXTCAT_DIR
#define SB_TEXTCAT_DIR "/usr/share/libexttextcat"
#endif

/* ---- Unicode helpers ---- */

/* Word characters are letters, marks and digits (any script). */
static bool is_word_cp(utf8proc_int32_t cp)
{
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return true;
    default: return false;
    }
}

static bool is_letter_cp(utf8proc_int32_t cp)
{
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return true;
    default: return false;
    }
}

/* Decodes the code point at s[*pos] of an already validated string and
 * advances *pos; returns -1 at the end. */
static utf8proc_int32_t next_cp(const char *s, size_t len, size_t *pos)
{
    if (*pos >= len)
        return -1;
    utf8proc_int32_t cp = -1;
    utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + *pos, (utf8proc_ssize_t)(len - *pos), &cp);
    if (n <= 0) {
        /* Cannot happen on validated input; step over the byte so callers
         * always make progress. */
        *pos += 1;
        return 0xFFFD;
    }
    *pos += (size_t)n;
    return cp;
}

static utf8proc_int32_t peek_cp(const char *s, size_t len, size_t pos)
{
    return next_cp(s, len, &pos);
}

/* NFC + full case folding of valid UTF-8, also dropping default-ignorable
 * code points (soft hyphen, zero-width space), which are invisible and so
 * must not split a word the reader sees as one. The apostrophes U+2019 and
 * U+02BC become ASCII "'" so that "м'ясо", "м’ясо" and "мʼясо" compare
 * equal. Returns a malloc()ed string or NULL on invalid input. */
static char *fold(const char *s, size_t len, size_t *len_out)
{
    utf8proc_uint8_t *f = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &f,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
    if (n < 0) {
        free(f);
        return NULL;
    }
    char *p = (char *)f;
    size_t w = 0;
    for (size_t r = 0; r < (size_t)n;) {
        if (r + 2 < (size_t)n && (unsigned char)p[r] == 0xE2 && (unsigned char)p[r + 1] == 0x80 &&
            (unsigned char)p[r + 2] == 0x99) {
            p[w++] = '\'';
            r += 3;
        } else if (r + 1 < (size_t)n && (unsigned char)p[r] == 0xCA && (unsigned char)p[r + 1] == 0xBC) {
            p[w++] = '\'';
            r += 2;
        } else {
            p[w++] = p[r++];
        }
    }
    p[w] = '\0';
    *len_out = w;
    return p;
}

/* Finds the next word of folded text at or after *pos: a run of word
 * characters, where an apostrophe between two word characters belongs to
 * the word ("don't", "п'ять"). Returns false when there is none. */
static bool next_word(const char *s, size_t len, size_t *pos, size_t *start, size_t *wlen)
{
    size_t i = *pos;
    /* Skip separators. A word never starts with an apostrophe. */
    for (;;) {
        size_t at = i;
        utf8proc_int32_t cp = next_cp(s, len, &i);
        if (cp < 0) {
            *pos = len;
            return false;
        }
        if (is_word_cp(cp)) {
            i = at;
            break;
        }
    }
    *start = i;
    for (;;) {
        size_t at = i;
        utf8proc_int32_t cp = next_cp(s, len, &i);
        if (cp < 0)
            break;
        if (is_word_cp(cp))
            continue;
        if (cp == '\'') {
            utf8proc_int32_t after = peek_cp(s, len, i);
            if (after >= 0 && is_word_cp(after))
                continue;
        }
        i = at;
        break;
    }
    *wlen = i - *start;
    *pos = i;
    return true;
}

/* ---- sb_text_contains ---- */

/* The phrase is folded and split into words once; the text is then scanned
 * word by word, trying the phrase at every word start. Separators between
 * the words of the text do not matter, only that the words are adjacent. */
bool sb_text_contains(const char *text, const char *phrase)
{
    bool found = false;
    char *ft = NULL, *fp = NULL;
    size_t tlen = 0, plen = 0;

    if (text == NULL || phrase == NULL)
        return false;
    size_t text_len = strlen(text), phrase_len = strlen(phrase);
    if (!sb_utf8_valid(text, text_len) || !sb_utf8_valid(phrase, phrase_len))
        return false;
    fp = fold(phrase, phrase_len, &plen);
    ft = fold(text, text_len, &tlen);
    if (fp == NULL || ft == NULL)
        goto done;

    size_t first_pos = 0, first_start, first_len;
    if (!next_word(fp, plen, &first_pos, &first_start, &first_len))
        goto done; /* empty phrase, or only punctuation */

    size_t tpos = 0, tstart, twlen;
    while (!found && next_word(ft, tlen, &tpos, &tstart, &twlen)) {
        if (twlen != first_len || memcmp(ft + tstart, fp + first_start, twlen) != 0)
            continue;
        /* First word matches: the rest of the phrase must follow word by word. */
        size_t pp = first_pos, tp = tpos;
        size_t ps, pl, ts, tl;
        found = true;
        while (next_word(fp, plen, &pp, &ps, &pl)) {
            if (!next_word(ft, tlen, &tp, &ts, &tl) || tl != pl || memcmp(ft + ts, fp + ps, tl) != 0) {
                found = false;
                break;
            }
        }
    }

done:
    free(ft);
    free(fp);
    return found;
}

/* ---- regular expressions ---- */

/* Limits that keep a pathological pattern from hanging a worker. The match
 * limit bounds backtracking steps (about 2 ms with JIT, 10 ms without);
 * the depth limit bounds nested backtracking frames and the heap limit
 * (KiB) their memory. A group repeated once per character, such as
 * "(?:ab\\s*)*", needs a frame per repetition, so the depth limit is well
 * above the length of a long message.
 * PCRE2 applies these limits afresh at every start position, so a pattern
 * doing linear work at each position of a long text is still quadratic:
 * "(?:ab|  )+x" over 64 KiB of "ab  " takes most of a second with JIT.
 * Callers bound the length of what they match. */
#define REGEX_MAX_PATTERN 1000
#define REGEX_MATCH_LIMIT 1000000u
#define REGEX_DEPTH_LIMIT 250000u
#define REGEX_HEAP_LIMIT  (32u * 1024u)

struct sb_regex {
    pcre2_code *code;
    pcre2_match_context *mctx;
    bool jit;
};

int sb_regex_compile(const char *pattern, sb_regex **out, char *err, size_t err_cap)
{
    int rc = SB_EINVAL;
    sb_regex *re = NULL;

    sb_errorf(err, err_cap, "%s", "");
    if (out == NULL)
        return SB_EINVAL;
    *out = NULL;
    if (pattern == NULL || pattern[0] == '\0') {
        sb_errorf(err, err_cap, "empty pattern");
        return SB_EINVAL;
    }
    size_t plen = strlen(pattern);
    if (plen > REGEX_MAX_PATTERN) {
        sb_errorf(err, err_cap, "pattern longer than %d bytes", REGEX_MAX_PATTERN);
        return SB_EINVAL;
    }

    re = sb_xcalloc(1, sizeof *re);
    int errcode = 0;
    PCRE2_SIZE erroffset = 0;
    /* MATCH_INVALID_UTF: subjects are checked before matching anyway, but
     * this keeps PCRE2 safe should that check ever be bypassed.
     * NEVER_BACKSLASH_C: \C matches one byte and could split a character. */
    re->code = pcre2_compile((PCRE2_SPTR)pattern, plen,
                             PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C,
                             &errcode, &erroffset, NULL);
    if (re->code == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(errcode, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", errcode);
        sb_errorf(err, err_cap, "%s at offset %zu", (const char *)msg, (size_t)erroffset);
        rc = SB_EINVAL;
        goto fail;
    }
    /* JIT is an optimisation only: without it (not built in, no executable
     * memory) the interpreter gives the same answers under the same limits. */
    re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;

    re->mctx = pcre2_match_context_create(NULL);
    if (re->mctx == NULL) {
        rc = SB_ENOMEM;
        sb_errorf(err, err_cap, "out of memory");
        goto fail;
    }
    pcre2_set_match_limit(re->mctx, REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(re->mctx, REGEX_DEPTH_LIMIT);
    pcre2_set_heap_limit(re->mctx, REGEX_HEAP_LIMIT);

    *out = re;
    return 0;

fail:
    sb_regex_free(re);
    return rc;
}

/* JIT matching runs on a 32 KiB stack by default, too small for a group
 * repeated once per character of a long text. Such a match is retried once
 * with a private JIT stack (the default one cannot be shared by threads,
 * and a pattern rarely needs this), then by the interpreter, which keeps
 * its frames on the heap under the limits above. */
#define REGEX_JIT_STACK_MAX (4u * 1024u * 1024u)

static int match_big_stack(const sb_regex *re, const char *text, size_t len, pcre2_match_data *md)
{
    int rc = PCRE2_ERROR_JIT_STACKLIMIT;
    pcre2_match_context *mctx = pcre2_match_context_copy(re->mctx);
    pcre2_jit_stack *stack = pcre2_jit_stack_create(32 * 1024, REGEX_JIT_STACK_MAX, NULL);
    if (mctx != NULL && stack != NULL) {
        pcre2_jit_stack_assign(mctx, NULL, stack);
        rc = pcre2_match(re->code, (PCRE2_SPTR)text, len, 0, 0, md, mctx);
    }
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re->code, (PCRE2_SPTR)text, len, 0, PCRE2_NO_JIT, md, re->mctx);
    return rc;
}

/* True only for a successful match: no match, invalid UTF-8 and any limit
 * being hit all read as "does not match". */
bool sb_regex_match(const sb_regex *re, const char *text)
{
    if (re == NULL || text == NULL)
        return false;
    size_t len = strlen(text);
    if (!sb_utf8_valid(text, len))
        return false;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (md == NULL)
        return false;
    int rc = pcre2_match(re->code, (PCRE2_SPTR)text, len, 0, 0, md, re->mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && re->jit)
        rc = match_big_stack(re, text, len, md);
    pcre2_match_data_free(md);
    return rc >= 0;
}

void sb_regex_free(sb_regex *re)
{
    if (re == NULL)
        return;
    pcre2_match_context_free(re->mctx);
    pcre2_code_free(re->code);
    free(re);
}

/* ---- language guess ----
 *
 * Customer messages are short, and n-gram models cannot tell Ukrainian from
 * Russian in a sentence (exttextcat's uk model loses to ru even on some
 * Ukrainian texts of a hundred characters). So letters and common words decide, and exttextcat
 * only adds a vote on longer texts. The rules, in order:
 *
 *  1. Invalid UTF-8, or fewer than 3 letters: NULL.
 *  2. Script: letters are counted as Cyrillic, Latin or other. More "other"
 *     than Cyrillic and Latin together: NULL. More Latin than Cyrillic:
 *     English branch (3), else Cyrillic branch (4).
 *  3. English: "en" when at least 2 words, and at least a quarter of all
 *     words, are common English words (a short list); else NULL, so
 *     transliterated Russian or other Latin-script languages are not "en".
 *     exttextcat is not asked: with only en among Latin models it would
 *     call every Latin text English.
 *  4. Cyrillic: every word adds points:
 *       Kazakh-only letter (ә ғ қ ң ө ұ ү һ)           kk +3
 *       Ukrainian-only letter (ї є ґ) or an apostrophe
 *       inside the word (Russian writes ъ)               uk +3
 *       і without any of the above (uk and kk use it)   uk +2 if the text
 *                                                        has no kk letter,
 *                                                        else kk +1
 *       Russian letter ы э ъ ё (Kazakh has them too,
 *       Ukrainian not)                                  ru +2
 *       a common word of a language (short lists of
 *       words spelt differently in the others:
 *       "когда"/"коли"/"қашан")                         that language +2
 *     With 20 letters or more and the models loaded, the model closest to
 *     the text among ru, uk, kk gets +2 when it is at least 5% closer than
 *     the runner-up.
 *     When at least a fifth of the words have letters of another Cyrillic
 *     language (Belarusian ў, Serbian ј, Tatar ҙ, ...): NULL.
 *     The language with the most points wins if it has at least 2 and
 *     strictly more than every other; a tie or no evidence is NULL.
 *  Only the first 4 KiB of a text are looked at. */

#define LANG_MAX_BYTES   4096
#define LANG_MIN_LETTERS 3
#define LANG_TEXTCAT_MIN 20

enum { LANG_RU, LANG_UK, LANG_KK, LANG_EN, LANG_N };

static const char *const lang_names[LANG_N] = {"ru", "uk", "kk", "en"};

/* Common words, case-folded; sorted at init for bsearch. Only words that
 * the other two Cyrillic languages spell differently. */
static const char *ru_words[] = {
    "большое",  "был",      "была",       "были",         "было",     "вернуть", "возврат",    "вчера",   "вы",
    "где",      "деньги",   "добрый",     "доброе",       "ждать",    "жду",     "заказ",      "заказа",  "заказе",
    "заказу",   "заказом",  "здравствуй", "здравствуйте", "ещё",      "еще",     "и",          "из",      "или",
    "когда",    "курьер",   "меня",       "мне",          "могу",     "можно",   "мой",        "надо",    "нужно",
    "он",       "она",      "они",        "оплатил",      "оплатила", "очень",   "пожалуйста", "получил", "получила",
    "получили", "помогите", "посылка",    "посылку",      "почему",   "пришел",  "пришёл",     "пришла",  "привет",
    "работает", "с",        "сегодня",    "сейчас",       "сколько",  "спасибо", "только",     "уже",     "хорошо",
    "что",      "чтобы",    "это",        "этот",
};

static const char *uk_words[] = {
    "або",    "але",        "буде",    "будь",    "був",        "була",     "були",    "було",     "ви",
    "вітаю",  "від",        "вже",     "гаразд",  "гроші",      "дякую",    "де",      "добре",    "доброго",
    "добрий", "допоможіть", "дуже",    "з",       "замовлення", "зараз",    "коли",    "кур'єр",   "ласка",
    "мене",   "мені",       "мій",     "можна",   "можу",       "посилка",  "посилку", "потрібно", "привіт",
    "працює", "прийшла",    "прийшло", "прийшов", "скільки",    "сьогодні", "також",   "тільки",   "це",
    "цей",    "чекаю",      "чи",      "чому",    "що",         "щоб",      "як",      "якщо",
};

/* Also the spellings of people typing Kazakh on a Russian keyboard
 * ("кашан" for "қашан"). */
static const char *kk_words[] = {
    "ақша",  "әлі",   "бар",        "бе",      "бердім", "біз",      "бірақ",      "бұл",    "бүгін",
    "ертең", "жақсы", "жаксы",      "жеткізу", "жок",    "жоқ",      "және",       "иә",     "кайда",
    "калай", "канша", "кашан",      "келді",   "келеді", "келмеді",  "керек",      "кеше",   "қайда",
    "қалай", "қанша", "қашан",      "ма",      "ме",     "мен",      "менің",      "рақмет", "рахмет",
    "салем", "сәлем", "сәлеметсіз", "сіз",     "сіздің", "тапсырыс", "тапсырысым", "үшін",
};

/* Common English words; few that other Latin-script languages share. */
static const char *en_words[] = {
    "a",      "about",   "am",     "an",    "and",    "any",      "are",    "arrived", "at",   "be",        "been",
    "but",    "by",      "can",    "can't", "cancel", "card",     "could",  "courier", "day",  "delivered", "delivery",
    "did",    "didn't",  "do",     "does",  "don't",  "for",      "from",   "get",     "good", "got",       "great",
    "has",    "have",    "hello",  "help",  "hi",     "how",      "i",      "i'm",     "if",   "is",        "it",
    "it's",   "item",    "me",     "money", "much",   "my",       "need",   "not",     "of",   "or",        "order",
    "our",    "package", "parcel", "pay",   "please", "received", "refund", "service", "so",   "still",     "thank",
    "thanks", "that",    "the",    "there", "they",   "this",     "to",     "want",    "was",  "we",        "what",
    "when",   "where",   "why",    "will",  "with",   "would",    "yet",    "you",     "your",
};

typedef struct lexicon {
    const char **words;
    size_t n;
} lexicon;

static const lexicon lexicons[LANG_N] = {
    [LANG_RU] = {ru_words, SB_ARRAY_LEN(ru_words)},
    [LANG_UK] = {uk_words, SB_ARRAY_LEN(uk_words)},
    [LANG_KK] = {kk_words, SB_ARRAY_LEN(kk_words)},
    [LANG_EN] = {en_words, SB_ARRAY_LEN(en_words)},
};

static pthread_once_t lang_once = PTHREAD_ONCE_INIT;
/* exttextcat fingerprints for ru, uk, kk; all NULL when they could not be
 * loaded, and then the letter rules decide alone. */
static void *lang_models[LANG_EN];

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* fp_Init + fp_Read load one model file directly; exttextcat's
 * textcat_Init would want a configuration file on disk and its classifier
 * keeps its result in the handle, so it could not be shared by threads.
 * The fingerprint API has neither problem. */
static void lang_init(void)
{
    void *models[LANG_EN] = {NULL};
    bool ok = true;

    for (size_t l = 0; l < LANG_N; l++)
        qsort(lexicons[l].words, lexicons[l].n, sizeof lexicons[l].words[0], cmp_str);

    for (size_t l = 0; l < LANG_EN && ok; l++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.lm", SB_TEXTCAT_DIR, lang_names[l]);
        models[l] = fp_Init(lang_names[l]);
        /* Checked first: exttextcat prints to stderr when it cannot open a file. */
        if (access(path, R_OK) != 0 || models[l] == NULL || fp_Read(models[l], path, 400) == 0)
            ok = false;
    }
    for (size_t l = 0; l < LANG_EN; l++) {
        if (ok)
            lang_models[l] = models[l];
        else if (models[l] != NULL)
            fp_Done(models[l]);
    }
}

static bool in_lexicon(const lexicon *lx, const char *word)
{
    return bsearch(&word, lx->words, lx->n, sizeof lx->words[0], cmp_str) != NULL;
}

/* Returns the index of the closest model if it beats the runner-up by 5%,
 * else -1. `words` is the folded text reduced to words and single spaces. */
static int textcat_vote(const char *words, size_t len)
{
    if (lang_models[0] == NULL || len == 0)
        return -1;
    void *unknown = fp_Init(NULL);
    if (unknown == NULL)
        return -1;
    int best = -1;
    if (fp_Create(unknown, words, (uint4)len, 400) != 0) {
        int32_t score[LANG_EN];
        for (int l = 0; l < LANG_EN; l++) {
            score[l] = fp_Compare(lang_models[l], unknown, INT32_MAX);
            if (best < 0 || score[l] < score[best])
                best = l;
        }
        for (int l = 0; l < LANG_EN && best >= 0; l++)
            if (l != best && (int64_t)score[best] * 105 > (int64_t)score[l] * 100)
                best = -1;
    }
    fp_Done(unknown);
    return best;
}

static bool cp_in(utf8proc_int32_t cp, const utf8proc_int32_t *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == cp)
            return true;
    return false;
}

/* Kazakh-only, Ukrainian-only and Russian-vs-Ukrainian letters, folded:
 * ә ғ қ ң ө ұ ү һ; ї є ґ; ы э ъ ё. */
static const utf8proc_int32_t kk_letters[] = {0x04D9, 0x0493, 0x049B, 0x04A3, 0x04E9, 0x04B1, 0x04AF, 0x04BB};
static const utf8proc_int32_t uk_letters[] = {0x0457, 0x0454, 0x0491};
static const utf8proc_int32_t ru_letters[] = {0x044B, 0x044D, 0x044A, 0x0451};
/* Letters of Cyrillic languages we do not tell apart (Belarusian ў, Serbian
 * and Macedonian ђ ѓ ѕ ј љ њ ћ ќ џ, Tatar and Bashkir ҙ ҡ ҫ җ, Uzbek ҳ). */
static const utf8proc_int32_t foreign_letters[] = {0x045E, 0x0452, 0x0453, 0x0455, 0x0458, 0x0459, 0x045A, 0x045B,
                                                   0x045C, 0x045F, 0x0499, 0x04A1, 0x04AB, 0x0497, 0x04B3};
#define CP_UK_I 0x0456

static bool is_cyrillic(utf8proc_int32_t cp)
{
    return (cp >= 0x0400 && cp <= 0x052F) || (cp >= 0x1C80 && cp <= 0x1C8F) || (cp >= 0x2DE0 && cp <= 0x2DFF) ||
           (cp >= 0xA640 && cp <= 0xA69F);
}

static bool is_latin(utf8proc_int32_t cp)
{
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           (cp >= 0x00C0 && cp <= 0x024F && cp != 0x00D7 && cp != 0x00F7) || (cp >= 0x1E00 && cp <= 0x1EFF);
}

typedef struct word_facts {
    bool kk, uk, i, ru, apostrophe, cyrillic, foreign;
} word_facts;

static word_facts word_letters(const char *w, size_t len)
{
    word_facts f = {false, false, false, false, false, false, false};
    size_t pos = 0;
    utf8proc_int32_t cp;
    while ((cp = next_cp(w, len, &pos)) >= 0) {
        if (cp_in(cp, kk_letters, SB_ARRAY_LEN(kk_letters)))
            f.kk = true;
        else if (cp_in(cp, uk_letters, SB_ARRAY_LEN(uk_letters)))
            f.uk = true;
        else if (cp_in(cp, ru_letters, SB_ARRAY_LEN(ru_letters)))
            f.ru = true;
        else if (cp == CP_UK_I)
            f.i = true;
        else if (cp_in(cp, foreign_letters, SB_ARRAY_LEN(foreign_letters)))
            f.foreign = true;
        else if (cp == '\'')
            f.apostrophe = true;
        if (is_cyrillic(cp))
            f.cyrillic = true;
    }
    return f;
}

const char *sb_text_language(const char *text)
{
    const char *result = NULL;
    char *folded = NULL;
    sb_buf words;
    sb_buf_init(&words);

    if (text == NULL)
        return NULL;
    pthread_once(&lang_once, lang_init);

    size_t len = strlen(text);
    if (!sb_utf8_valid(text, len))
        return NULL;
    if (len > LANG_MAX_BYTES) {
        /* Cut at a character boundary: back over continuation bytes. */
        len = LANG_MAX_BYTES;
        while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--;
    }

    size_t flen = 0;
    folded = fold(text, len, &flen);
    if (folded == NULL)
        goto done;

    /* Pass 1: letters by script. */
    size_t cyr = 0, lat = 0, other = 0;
    size_t pos = 0;
    utf8proc_int32_t cp;
    while ((cp = next_cp(folded, flen, &pos)) >= 0) {
        if (!is_letter_cp(cp))
            continue;
        if (is_cyrillic(cp))
            cyr++;
        else if (is_latin(cp))
            lat++;
        else
            other++;
    }
    size_t letters = cyr + lat + other;
    if (letters < LANG_MIN_LETTERS || other > cyr + lat)
        goto done;

    /* Pass 2: words. Digits are not language, so words with only digits
     * and marks are skipped. */
    int score[LANG_N] = {0};
    size_t nwords = 0, en_hits = 0, kk_letter_words = 0, i_words = 0, foreign_words = 0;
    size_t start, wlen;
    pos = 0;
    while (next_word(folded, flen, &pos, &start, &wlen)) {
        char w[128];
        size_t wp = start;
        bool has_letter = false;
        while (wp < start + wlen) {
            utf8proc_int32_t c = next_cp(folded, start + wlen, &wp);
            if (is_letter_cp(c))
                has_letter = true;
        }
        if (!has_letter)
            continue;
        nwords++;
        if (words.len > 0)
            sb_buf_append(&words, " ", 1);
        sb_buf_append(&words, folded + start, wlen);

        word_facts f = word_letters(folded + start, wlen);
        if (f.kk) {
            score[LANG_KK] += 3;
            kk_letter_words++;
        } else if (f.uk || (f.apostrophe && f.cyrillic)) {
            score[LANG_UK] += 3;
        } else if (f.i) {
            i_words++;
        }
        if (f.ru)
            score[LANG_RU] += 2;
        if (f.foreign)
            foreign_words++;

        if (wlen >= sizeof w)
            continue; /* longer than any lexicon word */
        memcpy(w, folded + start, wlen);
        w[wlen] = '\0';
        for (int l = 0; l < LANG_N; l++) {
            if (in_lexicon(&lexicons[l], w)) {
                if (l == LANG_EN)
                    en_hits++;
                else
                    score[l] += 2;
            }
        }
    }

    if (lat > cyr) {
        if (en_hits >= 2 && en_hits * 4 >= nwords)
            result = lang_names[LANG_EN];
        goto done;
    }

    if (foreign_words > 0 && foreign_words * 5 >= nwords)
        goto done;
    if (kk_letter_words == 0)
        score[LANG_UK] += 2 * (int)i_words;
    else
        score[LANG_KK] += (int)i_words;

    if (letters >= LANG_TEXTCAT_MIN) {
        int vote = textcat_vote(words.p, words.len);
        if (vote >= 0)
            score[vote] += 2;
    }

    int best = LANG_RU;
    for (int l = LANG_UK; l < LANG_EN; l++)
        if (score[l] > score[best])
            best = l;
    if (score[best] < 2)
        goto done;
    for (int l = LANG_RU; l < LANG_EN; l++)
        if (l != best && score[l] == score[best])
            goto done;
    result = lang_names[best];

done:
    sb_buf_free(&words);
    free(folded);
    return result;
}
