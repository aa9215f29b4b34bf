/* gimp-ddpm: Interpolate between two layers (Ho et al. 2020, Sec. 4.3).
 * Both layers are scaled to the model, noised to the same timestep with
 * the same noise, mixed for lambda = 0 .. 1 and each mix denoised by the
 * reverse process (ddpm_interpolate).  The frames become layers: in a new
 * group of the image (scaled to it), or in a new image at the model's size
 * named as GIMP's animation playback expects ("(100ms)"), first frame at
 * the bottom. */
#include "plugin.h"

typedef struct {
  const char *what;
  gint64 started_us;
} interp_progress;

static bool on_progress(const ddpm_progress *pr, void *user) {
  interp_progress *ip = user;
  double secs = (g_get_monotonic_time() - ip->started_us) / 1e6;
  double left = pr->step > 0 ? secs / pr->step * (pr->total - pr->step) : 0;
  gimp_progress_set_text_printf("%s: step %d of %d, %.0f s left", ip->what, pr->step,
                                pr->total, left);
  gimp_progress_update((double)pr->step / pr->total);
  return !testhook_cancel("step", pr->step);
}

GimpValueArray *run_interpolate(GimpProcedure *procedure, GimpRunMode run_mode,
                                GimpImage *image, GimpDrawable **drawables,
                                GimpProcedureConfig *config, gpointer data) {
  GError *err = NULL;
  GimpValueArray *bad = session_check_drawables(procedure, drawables, 2,
                                                "needs the two end layers selected");
  if (bad) return bad;
  if (run_mode == GIMP_RUN_INTERACTIVE &&
      !dialog_run(procedure, config, "Interpolate (DDPM)",
                  "From the lower selected layer (first frame) to the upper one."))
    return gimp_procedure_new_return_values(procedure, GIMP_PDB_CANCEL, NULL);

  /* The lower layer in the stack is the first frame. */
  GimpDrawable *a = drawables[0], *b = drawables[1];
  if (gimp_image_get_item_position(image, GIMP_ITEM(a)) <
      gimp_image_get_item_position(image, GIMP_ITEM(b)))
    a = drawables[1], b = drawables[0];

  ddpm_sample_params sp = ddpm_sample_default_params();
  session_read_sampler(config, &sp);
  int t = 500, frames = 8, delay = 100;
  gboolean spherical = FALSE, new_image = FALSE;
  g_object_get(config, "timestep", &t, "frames", &frames, "spherical", &spherical,
               "new-image", &new_image, "frame-delay", &delay, NULL);

  session *s = session_open(config, "Interpolating", NULL, &err);
  if (!s) return session_fail(procedure, err);
  int c = s->info.in_channels, size = s->size;
  size_t n = (size_t)c * size * size;
  float *xa = pixels_read_model(a, 0, 0, gimp_drawable_get_width(a),
                                gimp_drawable_get_height(a), c, size, &err);
  float *xb = xa ? pixels_read_model(b, 0, 0, gimp_drawable_get_width(b),
                                     gimp_drawable_get_height(b), c, size, &err)
                 : NULL;
  float *out = g_try_new(float, (size_t)frames * n);
  bool ok = xa && xb;
  if (ok && !out) {
    g_set_error(&err, DDPM_ERROR, DDPM_ERROR_OUT_OF_MEMORY, "out of memory for %d frames",
                frames);
    ok = false;
  }
  if (ok) {
    ddpm_interpolate_params ip = ddpm_interpolate_default_params();
    ip.t = t;
    ip.frames = frames;
    ip.spherical = spherical;
    ip.sampler = sp.sampler;
    ip.steps = sp.steps;
    ip.eta = sp.eta;
    ip.seed = sp.seed;
    interp_progress pr = {"Interpolating", g_get_monotonic_time()};
    ip.progress = on_progress;
    ip.user = &pr;
    ok = ddpm_interpolate(s->model, xa, xb, &ip, out, &err);
    gimp_progress_end();
  }
  g_free(xa);
  g_free(xb);

  GimpImage *target = image;
  if (ok && new_image) {
    target = gimp_image_new(size, size, c == 1 ? GIMP_GRAY : GIMP_RGB);
    gimp_image_undo_disable(target);
  }
  pending pd;
  pending_init(&pd, target);
  GimpLayer *group = NULL;
  int w = gimp_image_get_width(target), h = gimp_image_get_height(target);
  if (ok && !new_image) {
    char *name = g_strdup_printf("DDPM interpolation t=%d seed %" G_GUINT64_FORMAT, t,
                                 sp.seed);
    group = GIMP_LAYER(gimp_group_layer_new(target, name));
    g_free(name);
    pending_add(&pd, group, NULL);
  }
  /* Frame 0 first: inserted at the top each time, it ends at the bottom. */
  for (int i = 0; i < frames && ok; i++) {
    double lambda = (double)i / (frames - 1);
    char *name = new_image
      ? g_strdup_printf("Frame %d (lambda %.3f) (%dms) (replace)", i + 1, lambda, delay)
      : g_strdup_printf("lambda %.3f", lambda);
    GimpLayer *layer = pixels_new_layer(target, name, w, h, out + i * n, c, size, NULL);
    g_free(name);
    pending_add(&pd, layer, group);
    ok = !testhook_fail("prepare", i);
    if (!ok)
      g_set_error_literal(&err, DDPM_ERROR, DDPM_ERROR_IO,
                          "test hook: preparing the result layers failed");
  }
  if (ok) {
    if (!new_image) gimp_image_undo_group_start(target);
    ok = pending_commit(&pd, &err);
    if (!new_image) gimp_image_undo_group_end(target);
  }
  pending_discard(&pd);
  g_free(out);
  session_free(s);
  if (!ok) {
    if (target != image) gimp_image_delete(target);
    return session_fail(procedure, err);
  }
  if (new_image) {
    gimp_image_undo_enable(target);
    if (run_mode == GIMP_RUN_INTERACTIVE) gimp_display_new(target);
  }
  gimp_displays_flush();
  GimpValueArray *ret = gimp_procedure_new_return_values(procedure, GIMP_PDB_SUCCESS, NULL);
  GIMP_VALUES_SET_IMAGE(ret, 1, target);
  return ret;
}
