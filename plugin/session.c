/* gimp-ddpm: opening the model, sampling with GIMP progress, and the
 * intermediate steps kept as layers. */
#include <string.h>

#include "plugin.h"

session *session_open(GimpProcedureConfig *config, const char *what,
                      GError **err) {
  char *model = NULL, *device = NULL;
  g_object_get(config, "model", &model, "device", &device, NULL);
  session *s = g_new0(session, 1);
  s->what = what;
  s->previews = g_ptr_array_new();
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

static void frame_free(gpointer p) {
  preview_frame *f = p;
  g_free(f->x_t);
  g_free(f->x0);
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
    preview_frame *f = g_new0(preview_frame, 1);
    f->t = pr->t;
    if (s->keep != PREVIEW_X0) f->x_t = g_memdup2(pr->x_t, pc->n * sizeof(float));
    if (s->keep != PREVIEW_XT) f->x0 = g_memdup2(pr->x0_pred, pc->n * sizeof(float));
    g_ptr_array_add(s->previews, f);
  }
  double secs = (g_get_monotonic_time() - s->started_us) / 1e6;
  double left = pr->step > 0 ? secs / pr->step * (pr->total - pr->step) : 0;
  gimp_progress_set_text_printf("%s: step %d of %d (t = %d), %.0f s left",
                                s->what, pr->step, pr->total, pr->t, left);
  gimp_progress_update((double)pr->step / pr->total);
  /* Cancel in GIMP ends the plug-in process; nothing has touched the image
   * by then, so there is nothing to undo. */
  return true;
}

bool session_sample(session *s, GimpProcedureConfig *config,
                    ddpm_sample_params *p, float *out, GError **err) {
  int every = 0;
  g_object_get(config, "preview-every", &every, NULL);
  progress_ctx pc = {s, (size_t)p->batch * s->info.in_channels * s->size * s->size};
  p->progress = on_progress;
  p->user = &pc;
  p->preview_every = every;
  p->height = p->width = s->size;
  s->started_us = g_get_monotonic_time();
  int total = ddpm_sample_steps_run(s->model, p, err);
  if (total < 0) return false;
  gimp_progress_set_text_printf("%s: %d steps", s->what, total);
  bool ok = ddpm_sample(s->model, p, out, err);
  gimp_progress_end();
  return ok;
}

void previews_add_layers(session *s, GimpImage *image, const char *group_name,
                         int item, int w, int h, int ox, int oy) {
  if (s->previews->len == 0) return;
  int c = s->info.in_channels, size = s->size;
  int lc = gimp_image_get_base_type(image) == GIMP_GRAY ? 1 : 3;
  size_t n = (size_t)c * size * size;
  GimpLayer *group = GIMP_LAYER(gimp_group_layer_new(image, group_name));
  gimp_image_insert_layer(image, group, NULL, 0);
  gimp_item_set_visible(GIMP_ITEM(group), FALSE);
  float *colour = g_new(float, (size_t)lc * w * h);
  /* Oldest at the bottom, so the stack reads like the process. */
  for (guint i = 0; i < s->previews->len; i++) {
    preview_frame *f = g_ptr_array_index(s->previews, i);
    const float *planes[2] = {f->x_t, f->x0};
    const char *kinds[2] = {"x_t", "x0"};
    for (int k = 0; k < 2; k++) {
      if (!planes[k]) continue;
      pixels_from_model(planes[k] + (size_t)item * n, c, size, colour, lc, h, w);
      char *name = g_strdup_printf("t=%d %s", f->t, kinds[k]);
      GimpLayer *layer = pixels_new_layer(image, name, w, h, colour, lc);
      g_free(name);
      gimp_layer_set_offsets(layer, ox, oy);
      gimp_image_insert_layer(image, layer, group, 0);
      gimp_item_set_visible(GIMP_ITEM(layer), FALSE);
    }
  }
  g_free(colour);
}
