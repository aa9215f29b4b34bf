/* json-glib for untrusted text.  json-glib 1.6 recurses once per nesting
 * level (100k '[' overflow the stack), wraps integers past 64 bits around
 * silently (2^64 + 1 parses as 1) and builds a node per value before anyone
 * can look at it; this checks the raw text first: valid UTF-8 without NUL
 * bytes and no \u0000 in strings (C strings would cut the name short),
 * nesting at most DDPM_JSON_MAX_DEPTH, numbers without leading zeros or
 * letters (json-glib takes 0x10), integer literals within int64, at most
 * DDPM_JSON_MAX_VALUES values. */
#ifndef DDPM_JSON_H
#define DDPM_JSON_H

#include <stddef.h>

#include <json-glib/json-glib.h>

#define DDPM_JSON_MAX_DEPTH 64
#define DDPM_JSON_MAX_VALUES 2000000

/* Checks, then parses.  Returns the parser (g_object_unref), or NULL with
 * *err (domain DDPM_ERROR, DDPM_ERROR_FORMAT) saying where and what, without
 * naming the source: callers prefix their file name. */
JsonParser *ddpm_json_parse(const char *text, size_t len, GError **err);

#endif
