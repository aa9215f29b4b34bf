/* gimp-ddpm: Filters > Diffusion > Generate.  Samples a batch from noise and
 * adds each sample as a layer (scaled to the image), or makes a new image
 * at the model's resolution.  The image is only touched once sampling has
 * succeeded, inside one undo group. */
#include <string.h>

#include "plugin.h"

static GimpValueArray *fail(GimpProcedure *procedure, GError *err) {
  return gimp_procedure_new_return_values(procedure, GIMP_PDB_EXECUTION_ERROR, err);
}

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
  session *s = session_open(config, "Generating", &err);
  if (!s) return fail(procedure, err);
  int c = s->info.in_channels, size = s->size;
  float *out = g_try_new(float, (size_t)count * c * size * size);
  if (!out) {
    session_free(s);
    g_set_error(&err, DDPM_ERROR, DDPM_ERROR_OUT_OF_MEMORY, "out of memory");
    return fail(procedure, err);
  }
  if (!session_sample(s, config, &p, out, &err)) {
    g_free(out);
    session_free(s);
    return fail(procedure, err);
  }

  bool made_image = new_image || !image;
  if (made_image) {
    image = gimp_image_new(size, size, c == 1 ? GIMP_GRAY : GIMP_RGB);
    gimp_image_undo_disable(image);
  } else {
    gimp_image_undo_group_start(image);
  }
  int w = gimp_image_get_width(image), h = gimp_image_get_height(image);
  int lc = gimp_image_get_base_type(image) == GIMP_GRAY ? 1 : 3;
  if (gimp_image_get_base_type(image) == GIMP_INDEXED) {
    /* Layers of an indexed image are indexed: sample into a new image. */
    gimp_image_undo_group_end(image);
    image = gimp_image_new(size, size, c == 1 ? GIMP_GRAY : GIMP_RGB);
    gimp_image_undo_disable(image);
    made_image = true;
    w = h = size;
    lc = c == 1 ? 1 : 3;
  }
  char *label = session_sampler_label(&p);
  float *colour = g_new(float, (size_t)lc * w * h);
  size_t item = (size_t)c * size * size;
  for (int k = 0; k < count; k++) {
    uint64_t seed = p.seed + (uint64_t)k;
    char *group = g_strdup_printf("DDPM generate seed %" G_GUINT64_FORMAT " previews", seed);
    previews_add_layers(s, image, group, k, w, h, 0, 0);
    g_free(group);
    pixels_from_model(out + k * item, c, size, colour, lc, h, w);
    char *name = g_strdup_printf("DDPM sample %d (seed %" G_GUINT64_FORMAT ", %s)",
                           k + 1, seed, label);
    GimpLayer *layer = pixels_new_layer(image, name, w, h, colour, lc);
    g_free(name);
    char *text = session_params_text(s, &p, seed, NULL);
    GimpParasite *par = gimp_parasite_new("ddpm-params",
      GIMP_PARASITE_PERSISTENT | GIMP_PARASITE_UNDOABLE, strlen(text) + 1, text);
    gimp_item_attach_parasite(GIMP_ITEM(layer), par);
    gimp_parasite_free(par);
    g_free(text);
    gimp_image_insert_layer(image, layer, NULL, 0);
  }
  g_free(colour);
  g_free(label);
  g_free(out);
  session_free(s);

  if (made_image) {
    gimp_image_undo_enable(image);
    if (run_mode == GIMP_RUN_INTERACTIVE) gimp_display_new(image);
  } else {
    gimp_image_undo_group_end(image);
  }
  gimp_displays_flush();
  GimpValueArray *ret = gimp_procedure_new_return_values(procedure, GIMP_PDB_SUCCESS, NULL);
  GIMP_VALUES_SET_IMAGE(ret, 1, image);
  return ret;
}
