/* gimp-ddpm: Continue Sampling from a kept step.  Every intermediate layer
 * that Generate, Re-imagine or Denoise keeps carries the run's state (the
 * "ddpm-state" parasite: exact x_t at the model's resolution, the step,
 * sampler, grid, seed and, for edits, the input and mask).  This procedure
 * runs the remaining steps: with the run's own seed it makes exactly the
 * image the uninterrupted run made; with other seeds it branches new
 * finishes from the same point.  Results are new layers at the kept
 * layer's place and size (edits: with the selection as alpha, so they sit
 * over the original as the edit would). */
#include "plugin.h"

/* The run state of a layer, or NULL with an error saying what to pick. */
static ddpm_state *layer_state(GimpDrawable *drawable, GError **err) {
  char *name = gimp_item_get_name(GIMP_ITEM(drawable));
  GimpParasite *par = gimp_item_get_parasite(GIMP_ITEM(drawable), PARASITE_STATE);
  ddpm_state *st = NULL;
  if (!par) {
    g_set_error(err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                "layer '%s' holds no DDPM run state: pick an intermediate "
                "layer kept by Generate, Re-imagine or Denoise (Keep every K "
                "steps) before the run's last step", name);
  } else {
    guint32 len = 0;
    const void *data = gimp_parasite_get_data(par, &len);
    st = ddpm_state_from_bytes(data, len, name, err);
    gimp_parasite_free(par);
  }
  g_free(name);
  return st;
}

GimpValueArray *run_continue(GimpProcedure *procedure, GimpRunMode run_mode,
                             GimpImage *image, GimpDrawable **drawables,
                             GimpProcedureConfig *config, gpointer data) {
  GError *err = NULL;
  GimpValueArray *bad = session_check_drawables(procedure, drawables, 1,
                                                "continues one kept layer at a time");
  if (bad) return bad;
  GimpDrawable *kept = drawables[0];
  ddpm_state *st = layer_state(kept, &err);
  if (!st) return session_fail(procedure, err);
  if (run_mode == GIMP_RUN_INTERACTIVE) {
    char *note = g_strdup_printf("Continues from t = %d, after step %d of a %s %d-step "
                                 "run with seed %" G_GUINT64_FORMAT ".", st->t, st->step,
                                 st->sampler == DDPM_SAMPLER_DDIM ? "DDIM" : "DDPM",
                                 st->steps, st->seed);
    gboolean go = dialog_run(procedure, config, "Continue Sampling (DDPM)", note);
    g_free(note);
    if (!go) {
      ddpm_state_free(st);
      return gimp_procedure_new_return_values(procedure, GIMP_PDB_CANCEL, NULL);
    }
  }
  int count = 1, seed = 0;
  gboolean keep_seed = TRUE, random_seed = FALSE;
  g_object_get(config, "count", &count, "keep-seed", &keep_seed, "seed", &seed,
               "random-seed", &random_seed, NULL);
  if (!keep_seed && random_seed) {
    seed = g_random_int_range(0, G_MAXINT - 16);
    g_object_set(config, "seed", seed, NULL);
  }

  session *s = session_open(config, "Continuing", st->model, &err);
  ddpm_sample_params q;
  float *xs = NULL, *inits = NULL;
  if (!s || !session_finish_params(s, st, count, &q, &xs, &inits, &err)) {
    session_free(s);
    ddpm_state_free(st);
    return session_fail(procedure, err);
  }
  if (!keep_seed) q.seed = (uint64_t)seed;
  size_t n = (size_t)s->info.in_channels * s->size * s->size;
  float *out = g_new(float, count * n);
  bool ok = session_sample(s, config, &q, out, &err);

  int w = gimp_drawable_get_width(kept), h = gimp_drawable_get_height(kept);
  int ox = 0, oy = 0;
  gimp_drawable_get_offsets(kept, &ox, &oy);
  char *label = session_sampler_label(&q);
  pending pd;
  pending_init(&pd, image);
  for (int j = 0; j < count && ok; j++) {
    uint64_t sd = q.seed + (uint64_t)j;
    char *group = g_strdup_printf("DDPM continue seed %" G_GUINT64_FORMAT " previews", sd);
    ok = previews_prepare(s, image, &pd, group, j, w, h, ox, oy, &err);
    g_free(group);
    char *name = g_strdup_printf("DDPM continued from t=%d (seed %" G_GUINT64_FORMAT
                                 ", %s)", st->t, sd, label);
    char *extra = g_strdup_printf("continued-from-t=%d\ncontinued-from-step=%d\n",
                                  st->t, st->step);
    GimpLayer *layer = session_result_layer(s, image, name, w, h, out + j * n, st->mask,
                                            &q, sd, extra);
    g_free(name);
    g_free(extra);
    gimp_layer_set_offsets(layer, ox, oy);
    pending_add(&pd, layer, NULL);
  }
  if (ok) {
    gimp_image_undo_group_start(image);
    ok = pending_commit(&pd, &err);
    gimp_image_undo_group_end(image);
  }
  pending_discard(&pd);
  g_free(label);
  g_free(out);
  g_free(xs);
  g_free(inits);
  session_free(s);
  ddpm_state_free(st);
  if (!ok) return session_fail(procedure, err);
  gimp_displays_flush();
  return gimp_procedure_new_return_values(procedure, GIMP_PDB_SUCCESS, NULL);
}
