/* text.h - text tests for rules: Unicode case-insensitive word search,
 * regular expressions, language guess. Pure: no I/O after init. */
#ifndef SB_TEXT_H
#define SB_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* True if `text` contains `phrase` as whole words, ignoring case by full
 * Unicode case folding after NFC normalisation ("Срочно", "СРОЧНО" and
 * "срочно!" all contain "срочно"; "несрочно" does not). A phrase may have
 * several words; runs of whitespace/punctuation in the text and the phrase
 * are treated alike. Invalid UTF-8 never matches and never crashes. */
bool sb_text_contains(const char *text, const char *phrase);

typedef struct sb_regex sb_regex;

/* Compiles a PCRE2 pattern with UTF, UCP and caseless matching. On a bad
 * pattern returns SB_EINVAL with `err` holding the reason and the offset
 * ("missing closing parenthesis at offset 4"). Matching has bounded
 * backtracking and depth, so a pathological pattern fails to match instead
 * of hanging. */
int sb_regex_compile(const char *pattern, sb_regex **out, char *err, size_t err_cap);
bool sb_regex_match(const sb_regex *re, const char *text);
void sb_regex_free(sb_regex *re);

/* Best guess of the language of `text`: "ru", "uk", "kk", "en", or NULL
 * when the text is too short or unlike any of them. */
const char *sb_text_language(const char *text);

#endif
