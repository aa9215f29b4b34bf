/* gimp-ddpm: a test switch for the GIMP suite.  When the environment
 * variable DDPM_PLUGIN_TEST_HOOKS names a file, each run reads it once:
 * lines "cancel-at-step=N" (the progress callback asks the sampler to stop
 * after step N), "cancel-at-finish=N" (likewise while making possible
 * finishes, after N of them) and "fail-<point>=N" (the N-th pass, 0-based, through a
 * failure point such as "prepare" or "insert" fails).  The suite writes the
 * file between PDB calls.  Without the variable nothing is read. */
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

static GHashTable *hooks; /* key -> value, loaded once per process */

static void load(void) {
  if (hooks) return;
  hooks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  const char *path = g_getenv("DDPM_PLUGIN_TEST_HOOKS");
  char *text = NULL;
  if (!path || !g_file_get_contents(path, &text, NULL, NULL)) return;
  char **lines = g_strsplit(text, "\n", -1);
  for (char **l = lines; *l; l++) {
    char **kv = g_strsplit(g_strstrip(*l), "=", 2);
    if (kv[0] && kv[1]) g_hash_table_replace(hooks, g_strdup(kv[0]), g_strdup(kv[1]));
    g_strfreev(kv);
  }
  g_strfreev(lines);
  g_free(text);
}

static int value(const char *key) {
  load();
  const char *v = g_hash_table_lookup(hooks, key);
  return v ? atoi(v) : -1;
}

bool testhook_cancel(const char *phase, int step) {
  char *key = g_strconcat("cancel-at-", phase, NULL);
  int at = value(key);
  g_free(key);
  return at >= 0 && step >= at;
}

bool testhook_fail(const char *point, int pass) {
  char *key = g_strconcat("fail-", point, NULL);
  int at = value(key);
  g_free(key);
  return at >= 0 && pass == at;
}
