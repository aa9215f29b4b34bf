/* Pre-checks untrusted JSON text before json-glib sees it (see json.h). */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ddpm/ddpm.h"
#include "model/json.h"

static bool fail(GError **err, size_t line, size_t col, const char *what) {
  g_set_error(err, DDPM_ERROR, DDPM_ERROR_FORMAT, "line %zu, column %zu: %s",
              line, col, what);
  return false;
}

static bool is_ident(char c) {
  return g_ascii_isalnum(c) || c == '_';
}

static bool scan(const char *s, size_t len, GError **err) {
  const char *bad_utf8 = NULL;
  if (!g_utf8_validate_len(s, len, &bad_utf8)) {
    size_t at = (size_t)(bad_utf8 - s), line = 1, col = 1;
    for (size_t i = 0; i < at; i++) {
      if (s[i] == '\n') line++, col = 1;
      else col++;
    }
    return fail(err, line, col, *bad_utf8 ? "not valid UTF-8" : "NUL byte");
  }
  size_t depth = 0, values = 0, line = 1, line_start = 0;
  for (size_t i = 0; i < len;) {
    char c = s[i];
    size_t col = i - line_start + 1;
    if (c == '\n') {
      line++;
      line_start = ++i;
    } else if (c == '"') { /* a string: skip it, escapes included */
      values++;
      for (i++; i < len && s[i] != '"'; i++) {
        if (s[i] == '\\' && i + 5 < len && !memcmp(s + i + 1, "u0000", 5))
          return fail(err, line, i - line_start + 1, "\\u0000 in a string");
        if (s[i] == '\\') i++;
        else if (s[i] == '\n') line++, line_start = i + 1;
      }
      i++;
    } else if (c == '[' || c == '{') {
      values++;
      if (++depth > DDPM_JSON_MAX_DEPTH)
        return fail(err, line, col, "nested deeper than "
                    G_STRINGIFY(DDPM_JSON_MAX_DEPTH) " levels");
      i++;
    } else if (c == ']' || c == '}') {
      if (depth) depth--;
      i++;
    } else if (c == '-' || g_ascii_isdigit(c)) { /* a number */
      values++;
      size_t j = i + (c == '-');
      uint64_t mag = 0;
      bool overflow = false, integer = true;
      if (j + 1 < len && s[j] == '0' && g_ascii_isdigit(s[j + 1]))
        return fail(err, line, col, "number with a leading zero");
      for (; j < len && g_ascii_isdigit(s[j]); j++) {
        unsigned d = (unsigned)(s[j] - '0');
        if (mag > (UINT64_MAX - d) / 10) overflow = true;
        else mag = mag * 10 + d;
      }
      if (j < len && s[j] == '.') {
        integer = false;
        for (j++; j < len && g_ascii_isdigit(s[j]); j++) {}
      }
      if (j < len && (s[j] == 'e' || s[j] == 'E')) {
        integer = false;
        j++;
        if (j < len && (s[j] == '+' || s[j] == '-')) j++;
        for (; j < len && g_ascii_isdigit(s[j]); j++) {}
      }
      if (j < len && (is_ident(s[j]) || s[j] == '.'))
        return fail(err, line, col, "malformed number");
      uint64_t limit = c == '-' ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
      if (integer && (overflow || mag > limit))
        return fail(err, line, col, "integer out of the 64-bit range");
      i = j;
    } else if (is_ident(c)) { /* true, false, null (json-glib judges) */
      values++;
      while (i < len && is_ident(s[i])) i++;
    } else {
      i++;
    }
    if (values > DDPM_JSON_MAX_VALUES)
      return fail(err, line, col, "more than "
                  G_STRINGIFY(DDPM_JSON_MAX_VALUES) " values");
  }
  return true;
}

JsonParser *ddpm_json_parse(const char *text, size_t len, GError **err) {
  if (!scan(text, len, err)) return NULL;
  JsonParser *parser = json_parser_new_immutable();
  GError *jerr = NULL;
  if (!json_parser_load_from_data(parser, len ? text : "", (gssize)len, &jerr)) {
    g_set_error_literal(err, DDPM_ERROR, DDPM_ERROR_FORMAT, jerr->message);
    g_error_free(jerr);
    g_object_unref(parser);
    return NULL;
  }
  return parser;
}
