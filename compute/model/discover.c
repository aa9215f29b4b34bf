/* Finding model folders: the installed default and the Hugging Face cache
 * (huggingface_hub's layout: models--ORG--NAME/{refs/main,snapshots/REV/}). */
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "ddpm/ddpm.h"
#include "model/json.h"

#ifndef DDPM_MODEL_DATADIR
#define DDPM_MODEL_DATADIR "/usr/local/share/gimp-ddpm/models"
#endif

const char *ddpm_default_model_dir(void) {
  const char *env = g_getenv("DDPM_DEFAULT_MODEL");
  return env && *env ? env : DDPM_MODEL_DATADIR "/default";
}

static char *hub_cache_dir(void) {
  const char *v = g_getenv("HF_HUB_CACHE");
  if (v && *v) return g_strdup(v);
  v = g_getenv("HF_HOME");
  if (v && *v) return g_build_filename(v, "hub", NULL);
  return g_build_filename(g_get_user_cache_dir(), "huggingface", "hub", NULL);
}

/* True when folder/config.json declares a UNet2DModel.  The file is bounded
 * in size: a config is a few KiB, anything huge is not one. */
static bool is_unet_folder(const char *folder) {
  char *path = g_build_filename(folder, "config.json", NULL);
  char *text = NULL;
  gsize len = 0;
  bool ok = false;
  GStatBuf st;
  if (g_stat(path, &st) == 0 && st.st_size < (1 << 20) &&
      g_file_get_contents(path, &text, &len, NULL)) {
    JsonParser *parser = ddpm_json_parse(text, len, NULL);
    if (parser) {
      JsonNode *root = json_parser_get_root(parser);
      JsonNode *cls = root && JSON_NODE_HOLDS_OBJECT(root)
        ? json_object_get_member(json_node_get_object(root), "_class_name") : NULL;
      ok = cls && JSON_NODE_HOLDS_VALUE(cls) &&
           json_node_get_value_type(cls) == G_TYPE_STRING &&
           strcmp(json_node_get_string(cls), "UNet2DModel") == 0;
      g_object_unref(parser);
    }
  }
  g_free(text);
  g_free(path);
  return ok;
}

/* The loadable folder of a snapshot (itself or its unet/), or NULL. */
static char *unet_folder_of(const char *snapshot) {
  if (is_unet_folder(snapshot)) return g_strdup(snapshot);
  char *unet = g_build_filename(snapshot, "unet", NULL);
  if (is_unet_folder(unet)) return unet;
  g_free(unet);
  return NULL;
}

/* The snapshot refs/main points at, else the most recently modified one. */
static char *pick_snapshot(const char *repo_dir) {
  char *ref_path = g_build_filename(repo_dir, "refs", "main", NULL);
  char *ref = NULL;
  char *pick = NULL;
  if (g_file_get_contents(ref_path, &ref, NULL, NULL)) {
    g_strstrip(ref);
    if (*ref && !strchr(ref, '/') && strcmp(ref, "..") != 0) {
      pick = g_build_filename(repo_dir, "snapshots", ref, NULL);
      if (!g_file_test(pick, G_FILE_TEST_IS_DIR)) g_clear_pointer(&pick, g_free);
    }
  }
  g_free(ref);
  g_free(ref_path);
  if (pick) return pick;
  char *snaps = g_build_filename(repo_dir, "snapshots", NULL);
  GDir *d = g_dir_open(snaps, 0, NULL);
  gint64 newest = G_MININT64;
  for (const char *e; d && (e = g_dir_read_name(d));) {
    char *p = g_build_filename(snaps, e, NULL);
    GStatBuf st;
    if (g_stat(p, &st) == 0 && S_ISDIR(st.st_mode) && st.st_mtime > newest) {
      newest = st.st_mtime;
      g_free(pick);
      pick = p;
    } else {
      g_free(p);
    }
  }
  if (d) g_dir_close(d);
  g_free(snaps);
  return pick;
}

/* "models--google--ddpm-cifar10-32" -> "google/ddpm-cifar10-32" */
static char *repo_name(const char *entry) {
  char **parts = g_strsplit(entry + strlen("models--"), "--", -1);
  char *name = g_strjoinv("/", parts);
  g_strfreev(parts);
  return name;
}

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const ddpm_model_entry *)a)->name,
                ((const ddpm_model_entry *)b)->name);
}

ddpm_model_entry *ddpm_find_models(size_t *n) {
  GArray *out = g_array_new(FALSE, TRUE, sizeof(ddpm_model_entry));
  char *cache = hub_cache_dir();
  GDir *d = g_dir_open(cache, 0, NULL);
  for (const char *e; d && (e = g_dir_read_name(d));) {
    if (!g_str_has_prefix(e, "models--") || !e[strlen("models--")]) continue;
    char *repo = g_build_filename(cache, e, NULL);
    char *snap = pick_snapshot(repo);
    char *folder = snap ? unet_folder_of(snap) : NULL;
    if (folder) {
      ddpm_model_entry me = {repo_name(e), folder};
      g_array_append_val(out, me);
    }
    g_free(snap);
    g_free(repo);
  }
  if (d) g_dir_close(d);
  g_free(cache);
  if (out->len) /* an empty GArray's data is NULL, which qsort must not get */
    qsort(out->data, out->len, sizeof(ddpm_model_entry), cmp_entry);
  *n = out->len;
  return (ddpm_model_entry *)g_array_free(out, FALSE);
}

void ddpm_model_entries_free(ddpm_model_entry *entries, size_t n) {
  for (size_t i = 0; i < n; i++) {
    g_free(entries[i].name);
    g_free(entries[i].path);
  }
  g_free(entries);
}

char *ddpm_resolve_model(const char *spec, GError **err) {
  if (!spec || !*spec || strcmp(spec, "default") == 0) {
    const char *dir = ddpm_default_model_dir();
    if (g_file_test(dir, G_FILE_TEST_IS_DIR)) return g_strdup(dir);
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_IO,
                "the default model is not installed (looked in %s; set "
                "DDPM_DEFAULT_MODEL to a model folder)", dir);
    return NULL;
  }
  if (g_file_test(spec, G_FILE_TEST_IS_DIR)) return g_strdup(spec);
  size_t n = 0;
  ddpm_model_entry *e = ddpm_find_models(&n);
  char *path = NULL;
  for (size_t i = 0; i < n && !path; i++)
    if (strcmp(e[i].name, spec) == 0) path = g_strdup(e[i].path);
  ddpm_model_entries_free(e, n);
  if (!path) {
    char *cache = hub_cache_dir();
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_IO,
                "%s: no such model folder, and no UNet2DModel of that name "
                "in the Hugging Face cache (%s)", spec, cache);
    g_free(cache);
  }
  return path;
}
