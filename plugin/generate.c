/* gimp-ddpm: Filters > Diffusion > Generate.  Samples a batch from noise and
 * adds each sample as a layer (scaled to the image), or makes a new image
 * at the model's resolution.  The image is only touched once sampling has
 * succeeded, inside one undo group. */
#include "plugin.h"

GimpValueArray *run_generate(GimpProcedure *procedure, GimpRunMode run_mode,
                             GimpImage *image, GimpDrawable **drawables,
                             GimpProcedureConfig *config, gpointer data) {
  if (run_mode == GIMP_RUN_INTERACTIVE &&
      !dialog_run(procedure, config, "Generate (DDPM)", NULL))
    return gimp_procedure_new_return_values(procedure, GIMP_PDB_CANCEL, NULL);

  int count = 1;
  gboolean new_image = FALSE;
  g_object_get(config, "count", &count, "new-image", &new_image, NULL);
  ddpm_sample_params p = ddpm_sample_default_params();
  session_read_sampler(config, &p);
  p.batch = count;

  GError *err = NULL;
  session *s = session_open(config, "Generating", NULL, &err);
  if (!s) return session_fail(procedure, err);
  int c = s->info.in_channels, size = s->size;
  float *out = g_try_new(float, (size_t)count * c * size * size);
  if (!out) {
    session_free(s);
    g_set_error(&err, DDPM_ERROR, DDPM_ERROR_OUT_OF_MEMORY, "out of memory");
    return session_fail(procedure, err);
  }
  if (!session_sample(s, config, &p, out, &err)) {
    g_free(out);
    session_free(s);
    return session_fail(procedure, err);
  }

  /* Layers of an indexed image are indexed: sample into a new image. */
  bool made_image = new_image || !image ||
                    gimp_image_get_base_type(image) == GIMP_INDEXED;
  if (made_image) {
    image = gimp_image_new(size, size, c == 1 ? GIMP_GRAY : GIMP_RGB);
    gimp_image_undo_disable(image);
  }
  int w = gimp_image_get_width(image), h = gimp_image_get_height(image);
  char *label = session_sampler_label(&p);
  size_t item = (size_t)c * size * size;
  pending pd;
  pending_init(&pd, image);
  bool ok = true;
  for (int k = 0; k < count && ok; k++) {
    uint64_t seed = p.seed + (uint64_t)k;
    char *group = g_strdup_printf("DDPM generate seed %" G_GUINT64_FORMAT " previews", seed);
    ok = previews_prepare(s, image, &pd, group, k, w, h, 0, 0, &err);
    g_free(group);
    char *name = g_strdup_printf("DDPM sample %d (seed %" G_GUINT64_FORMAT ", %s)",
                           k + 1, seed, label);
    GimpLayer *layer = session_result_layer(s, image, name, w, h, out + k * item, NULL,
                                            &p, seed, NULL);
    g_free(name);
    pending_add(&pd, layer, NULL);
  }
  g_free(label);
  g_free(out);
  session_free(s);

  /* The image is touched only here, all results in one undo step. */
  if (ok) {
    if (!made_image) gimp_image_undo_group_start(image);
    ok = pending_commit(&pd, &err);
    if (!made_image) gimp_image_undo_group_end(image);
  }
  pending_discard(&pd);
  if (!ok) {
    if (made_image) gimp_image_delete(image);
    return session_fail(procedure, err);
  }
  if (made_image) {
    gimp_image_undo_enable(image);
    if (run_mode == GIMP_RUN_INTERACTIVE) gimp_display_new(image);
  }
  gimp_displays_flush();
  GimpValueArray *ret = gimp_procedure_new_return_values(procedure, GIMP_PDB_SUCCESS, NULL);
  GIMP_VALUES_SET_IMAGE(ret, 1, image);
  return ret;
}
