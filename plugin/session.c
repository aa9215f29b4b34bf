/* gimp-ddpm: opening the model, sampling with GIMP progress, and the
 * intermediate steps kept as layers. */
#include <string.h>

#include "plugin.h"

session *session_open(GimpProcedureConfig *config, const char *what,
                      const char *fallback_model, GError **err) {
  char *model = NULL, *device = NULL;
  g_object_get(config, "model", &model, "device", &device, NULL);
  if ((!model || !*model) && fallback_model) {
    g_free(model);
    model = g_strdup(fallback_model);
  }
  session *s = g_new0(session, 1);
  s->what = what;
  s->previews = g_ptr_array_new();
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(config), "preview-kind"))
    s->keep = (preview_kind)gimp_procedure_config_get_choice_id(config, "preview-kind");
  gimp_progress_init_printf("%s: loading the model", what);
  ddpm_context_params cp = ddpm_context_default_params();
  cp.device = device && *device ? device : NULL;
  bool ok = (s->model_path = ddpm_resolve_model(model, err)) &&
            (s->ctx = ddpm_context_new(&cp, err)) &&
            (s->model = ddpm_model_load(s->ctx, s->model_path, err));
  g_free(model);
  g_free(device);
  if (!ok) {
    session_free(s);
    return NULL;
  }
  ddpm_model_get_info(s->model, &s->info);
  s->size = s->info.sample_size > 0 ? s->info.sample_size : 32;
  return s;
}

GimpValueArray *session_fail(GimpProcedure *procedure, GError *err) {
  if (g_error_matches(err, DDPM_ERROR, DDPM_ERROR_CANCELLED)) {
    g_error_free(err); /* a cancel carries no error message */
    return gimp_procedure_new_return_values(procedure, GIMP_PDB_CANCEL, NULL);
  }
  return gimp_procedure_new_return_values(procedure, GIMP_PDB_EXECUTION_ERROR, err);
}

GimpValueArray *session_check_drawables(GimpProcedure *procedure,
                                        GimpDrawable **drawables, int want,
                                        const char *what) {
  int n = 0;
  while (drawables && drawables[n]) n++;
  if (n == want) return NULL;
  GError *err = g_error_new(DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                            "%s %s; %d layer(s) are selected",
                            gimp_procedure_get_name(procedure), what, n);
  return gimp_procedure_new_return_values(procedure, GIMP_PDB_CALLING_ERROR, err);
}

static void frame_free(gpointer p) {
  preview_frame *f = p;
  g_free(f->x_t);
  g_free(f->x0);
  g_free(f->finishes);
  g_free(f);
}

void session_free(session *s) {
  if (!s) return;
  g_ptr_array_set_free_func(s->previews, frame_free);
  g_ptr_array_free(s->previews, TRUE);
  ddpm_model_free(s->model);
  ddpm_context_free(s->ctx);
  g_free(s->model_path);
  g_free(s);
}

void session_read_sampler(GimpProcedureConfig *config, ddpm_sample_params *p) {
  int steps = 50, seed = 0;
  double eta = 0;
  gboolean random_seed = TRUE;
  g_object_get(config, "steps", &steps, "eta", &eta, "seed", &seed,
               "random-seed", &random_seed, NULL);
  p->sampler = (ddpm_sampler)gimp_procedure_config_get_choice_id(config, "sampler");
  if (random_seed) {
    /* Leave room for seed + batch - 1 in the int argument. */
    seed = g_random_int_range(0, G_MAXINT - 16);
    g_object_set(config, "seed", seed, NULL);
  }
  p->steps = steps;
  p->eta = (float)eta;
  p->seed = (uint64_t)seed;
}

char *session_sampler_label(const ddpm_sample_params *p) {
  return g_strdup_printf("%s %d", p->sampler == DDPM_SAMPLER_DDIM ? "ddim" : "ddpm",
                         p->steps);
}

char *session_params_text(const session *s, const ddpm_sample_params *p,
                          uint64_t seed, const char *extra) {
  return g_strdup_printf("model=%s\nsampler=%s\nsteps=%d\neta=%g\nseed=%" G_GUINT64_FORMAT
                         "\n%s",
                         s->model_path, p->sampler == DDPM_SAMPLER_DDIM ? "ddim" : "ddpm",
                         p->steps, p->eta, seed, extra ? extra : "");
}

typedef struct {
  session *s;
  size_t n; /* floats per batch */
} progress_ctx;

static bool on_progress(const ddpm_progress *pr, void *user) {
  progress_ctx *pc = user;
  session *s = pc->s;
  if (pr->x_t) {
    /* x_t is kept whatever is shown: the layers' run states need it. */
    preview_frame *f = g_new0(preview_frame, 1);
    f->t = pr->t;
    f->step = pr->step;
    f->x_t = g_memdup2(pr->x_t, pc->n * sizeof(float));
    f->x0 = g_memdup2(pr->x0_pred, pc->n * sizeof(float));
    g_ptr_array_add(s->previews, f);
  }
  double secs = (g_get_monotonic_time() - s->started_us) / 1e6;
  double left = pr->step > 0 ? secs / pr->step * (pr->total - pr->step) : 0;
  gimp_progress_set_text_printf("%s: step %d of %d (t = %d), %.0f s left",
                                s->what, pr->step, pr->total, pr->t, left);
  gimp_progress_update((double)pr->step / pr->total);
  /* Cancel in GIMP ends the plug-in process; nothing has touched the image
   * by then, so there is nothing to undo.  The test switch stops the same
   * way a cancelling caller of ddpm_sample does. */
  return !testhook_cancel("step", pr->step);
}

/* One batch item of the run as a run of its own: batch item b of a run
 * uses seed + b, so a batch-1 run with that seed is the same run. */
static ddpm_sample_params item_params(const session *s, int item) {
  ddpm_sample_params q = s->run;
  size_t n = (size_t)s->info.in_channels * s->size * s->size;
  q.batch = 1;
  q.seed = s->run.seed + (uint64_t)item;
  if (q.init) q.init += (size_t)item * n;
  q.progress = NULL;
  q.user = NULL;
  q.preview_every = 0;
  return q;
}

ddpm_state *session_item_state(session *s, const preview_frame *f, int item,
                               GError **err) {
  ddpm_sample_params q = item_params(s, item);
  size_t n = (size_t)s->info.in_channels * s->size * s->size;
  return ddpm_state_new(s->model, s->model_path, &q, f->step,
                        f->x_t + (size_t)item * n, err);
}

bool session_finish_params(session *s, const ddpm_state *st, int count,
                           ddpm_sample_params *q, float **xs, float **inits,
                           GError **err) {
  *xs = *inits = NULL;
  if (!ddpm_state_resume_params(st, s->model, q, err)) return false;
  size_t n = (size_t)st->channels * st->height * st->width;
  *xs = g_new(float, count * n);
  if (st->init) *inits = g_new(float, count * n);
  for (int j = 0; j < count; j++) {
    memcpy(*xs + j * n, st->x, n * sizeof(float));
    if (*inits) memcpy(*inits + j * n, st->init, n * sizeof(float));
  }
  q->batch = count;
  q->start_x = *xs;
  q->init = *inits;
  return true;
}

GimpLayer *session_result_layer(session *s, GimpImage *image, const char *name,
                                int w, int h, const float *planes,
                                const float *alpha, const ddpm_sample_params *p,
                                uint64_t seed, const char *extra) {
  GimpLayer *layer = pixels_new_layer(image, name, w, h, planes, s->info.in_channels,
                                      s->size, alpha);
  char *text = session_params_text(s, p, seed, extra);
  GimpParasite *par = gimp_parasite_new(PARASITE_PARAMS, GIMP_PARASITE_PERSISTENT,
                                        strlen(text) + 1, text);
  gimp_item_attach_parasite(GIMP_ITEM(layer), par);
  gimp_parasite_free(par);
  g_free(text);
  return layer;
}

typedef struct {
  session *s;
  int t, done, total; /* finishes made of total */
} finish_ctx;

static bool on_finish_progress(const ddpm_progress *pr, void *user) {
  finish_ctx *fc = user;
  gimp_progress_set_text_printf("%s: possible finishes from t = %d (%d of %d)",
                                fc->s->what, fc->t, fc->done + 1, fc->total);
  gimp_progress_update((fc->done + (double)pr->step / pr->total) / fc->total);
  return !testhook_cancel("finish", fc->done);
}

/* For each kept step before the end and each batch item, `finishes`
 * continuations of the run from that x_t with other seeds (the state's
 * seed + 1, + 2, ...): what is already decided at t (Ho et al. Fig. 7). */
static bool make_finishes(session *s, GError **err) {
  int count = s->finishes, batch = s->run.batch;
  size_t n = (size_t)s->info.in_channels * s->size * s->size;
  finish_ctx fc = {s, 0, 0, 0};
  for (guint i = 0; i < s->previews->len; i++)
    fc.total += ((preview_frame *)g_ptr_array_index(s->previews, i))->step < s->n_run
                  ? batch : 0;
  bool ok = true;
  for (guint i = 0; i < s->previews->len && ok; i++) {
    preview_frame *f = g_ptr_array_index(s->previews, i);
    if (f->step >= s->n_run) continue;
    f->finishes = g_new(float, (size_t)batch * count * n);
    fc.t = f->t;
    for (int b = 0; b < batch && ok; b++, fc.done++) {
      ddpm_state *st = session_item_state(s, f, b, err);
      ddpm_sample_params q;
      float *xs = NULL, *inits = NULL;
      ok = st && session_finish_params(s, st, count, &q, &xs, &inits, err);
      if (ok) {
        q.seed = st->seed + 1;
        q.progress = on_finish_progress;
        q.user = &fc;
        ok = ddpm_sample(s->model, &q, f->finishes + (size_t)b * count * n, err);
      }
      g_free(xs);
      g_free(inits);
      ddpm_state_free(st);
    }
  }
  return ok;
}

bool session_sample(session *s, GimpProcedureConfig *config,
                    ddpm_sample_params *p, float *out, GError **err) {
  int every = 0, finishes = 0;
  g_object_get(config, "preview-every", &every, NULL);
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(config), "preview-finishes"))
    g_object_get(config, "preview-finishes", &finishes, NULL);
  progress_ctx pc = {s, (size_t)p->batch * s->info.in_channels * s->size * s->size};
  p->progress = on_progress;
  p->user = &pc;
  p->preview_every = every;
  p->height = p->width = s->size;
  s->started_us = g_get_monotonic_time();
  s->n_run = ddpm_sample_steps_run(s->model, p, err);
  if (s->n_run < 0) return false;
  s->run = *p;
  s->finishes = every > 0 ? finishes : 0;
  gimp_progress_set_text_printf("%s: %d steps", s->what, s->n_run);
  bool ok = ddpm_sample(s->model, p, out, err) &&
            (s->finishes == 0 || make_finishes(s, err));
  gimp_progress_end();
  return ok;
}

/* The run state of frame f, item `item` as a parasite of `layer`. */
static bool attach_state(session *s, const preview_frame *f, int item,
                         GimpLayer *layer, GError **err) {
  if (f->step >= s->n_run) return true; /* the end: nothing to continue */
  ddpm_state *st = session_item_state(s, f, item, err);
  if (!st) return false;
  GBytes *b = ddpm_state_to_bytes(st);
  ddpm_state_free(st);
  gsize len = 0;
  const void *data = g_bytes_get_data(b, &len);
  GimpParasite *par = gimp_parasite_new(PARASITE_STATE, GIMP_PARASITE_PERSISTENT,
                                        (guint32)len, data);
  gboolean ok = gimp_item_attach_parasite(GIMP_ITEM(layer), par);
  gimp_parasite_free(par);
  g_bytes_unref(b);
  if (!ok)
    g_set_error_literal(err, DDPM_ERROR, DDPM_ERROR_IO,
                        "GIMP refused the run-state parasite of a kept step");
  return ok;
}

/* A hidden layer of model-space planes, added to the pending results. */
static GimpLayer *hidden_layer(session *s, GimpImage *image, pending *pd,
                               GimpLayer *group, const char *name,
                               const float *planes, int w, int h, int ox, int oy) {
  GimpLayer *layer = pixels_new_layer(image, name, w, h, planes, s->info.in_channels,
                                      s->size, NULL);
  gimp_layer_set_offsets(layer, ox, oy);
  gimp_item_set_visible(GIMP_ITEM(layer), FALSE);
  pending_add(pd, layer, group);
  return layer;
}

bool previews_prepare(session *s, GimpImage *image, pending *pd,
                      const char *group_name, int item, int w, int h, int ox,
                      int oy, GError **err) {
  if (s->previews->len == 0) return true;
  size_t n = (size_t)s->info.in_channels * s->size * s->size;
  GimpLayer *group = GIMP_LAYER(gimp_group_layer_new(image, group_name));
  gimp_item_set_visible(GIMP_ITEM(group), FALSE);
  pending_add(pd, group, NULL);
  bool ok = true;
  /* Oldest at the bottom, so the stack reads like the process. */
  for (guint i = 0; i < s->previews->len && ok; i++) {
    preview_frame *f = g_ptr_array_index(s->previews, i);
    const float *planes[2] = {s->keep != PREVIEW_X0 ? f->x_t : NULL,
                              s->keep != PREVIEW_XT ? f->x0 : NULL};
    const char *kinds[2] = {"x_t", "x0"};
    for (int k = 0; k < 2 && ok; k++) {
      if (!planes[k]) continue;
      char *name = g_strdup_printf("t=%d %s", f->t, kinds[k]);
      GimpLayer *layer = hidden_layer(s, image, pd, group, name, planes[k] + item * n,
                                      w, h, ox, oy);
      g_free(name);
      ok = !testhook_fail("prepare", (int)i) && attach_state(s, f, item, layer, err);
      if (!ok && err && !*err)
        g_set_error_literal(err, DDPM_ERROR, DDPM_ERROR_IO,
                            "test hook: preparing the result layers failed");
    }
    for (int j = 0; f->finishes && j < s->finishes && ok; j++) {
      char *name = g_strdup_printf("t=%d finish %d", f->t, j + 1);
      hidden_layer(s, image, pd, group, name,
                   f->finishes + ((size_t)item * s->finishes + j) * n, w, h, ox, oy);
      g_free(name);
    }
  }
  return ok;
}
