/* gimp-ddpm: Re-imagine Selection (masked SDEdit) and Denoise.
 *
 * The selection's bounding box plus a context margin, clipped to the layer,
 * is read as float a strip at a time, scaled to the model's resolution (area averaging when
 * shrinking, bilinear when enlarging; the box is stretched to a square) with
 * the selection's coverage as the mask, run through the reverse process,
 * scaled back and written to the shadow buffer; merging the shadow blends it
 * through the (feathered) selection, so pixels outside the selection are
 * bit-identical.  Regions much larger than the model come back as smooth
 * as the model's resolution allows.  Alpha is kept.  One undo step. */
#include <math.h>

#include "plugin.h"

/* Noise sigma (8-bit units) of the drawable inside the selection bounds;
 * from their central 1024 x 1024 pixels at most (noise is much the same
 * everywhere, and a huge selection should not cost a full float copy). */
static double estimate_sigma(GimpDrawable *drawable, int x, int y, int w, int h) {
  int cw = MIN(w, 1024), ch = MIN(h, 1024), c = 1;
  float *v = pixels_read_sample(drawable, x + (w - cw) / 2, y + (h - ch) / 2, cw, ch, &c);
  float sigma = ddpm_estimate_noise_sigma(v, c, ch, cw);
  g_free(v);
  return sigma * 255.0;
}

GimpValueArray *run_edit(GimpProcedure *procedure, GimpRunMode run_mode,
                         GimpImage *image, GimpDrawable **drawables,
                         GimpProcedureConfig *config, gpointer data) {
  bool denoise = g_strcmp0(data, PROC_DENOISE) == 0;
  GError *err = NULL;
  GimpValueArray *bad = session_check_drawables(procedure, drawables, 1,
                                                "works on one layer at a time");
  if (bad) return bad;
  GimpDrawable *drawable = drawables[0];
  if (gimp_drawable_is_indexed(drawable)) {
    g_set_error_literal(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                        "indexed images are not supported: convert the image "
                        "to RGB (Image > Mode > RGB) first");
    return session_fail(procedure, err);
  }
  int sx, sy, sw, sh;
  if (!gimp_drawable_mask_intersect(drawable, &sx, &sy, &sw, &sh)) {
    g_set_error_literal(&err, DDPM_ERROR, DDPM_ERROR_INVALID_ARG,
                        "the selection does not overlap the layer");
    return session_fail(procedure, err);
  }

  double estimate = denoise ? estimate_sigma(drawable, sx, sy, sw, sh) : 0;
  if (run_mode == GIMP_RUN_INTERACTIVE) {
    char *note = denoise ? g_strdup_printf("Estimated noise sigma: %.1f "
                                           "(8-bit units; sigma 0 uses it)", estimate)
                         : NULL;
    gboolean ok = dialog_run(procedure, config,
                             denoise ? "Denoise (DDPM)" : "Re-imagine Selection (DDPM)",
                             note);
    g_free(note);
    if (!ok) return gimp_procedure_new_return_values(procedure, GIMP_PDB_CANCEL, NULL);
  }

  int margin = 0;
  g_object_get(config, "context-margin", &margin, NULL);
  int dw = gimp_drawable_get_width(drawable), dh = gimp_drawable_get_height(drawable);
  int rx = MAX(0, sx - margin), ry = MAX(0, sy - margin);
  int rw = MIN(dw, sx + sw + margin) - rx, rh = MIN(dh, sy + sh + margin) - ry;

  ddpm_sample_params p = ddpm_sample_default_params();
  session_read_sampler(config, &p);
  double sigma = 0;
  if (denoise) {
    g_object_get(config, "sigma", &sigma, NULL);
    if (sigma <= 0) sigma = estimate;
  } else {
    double strength = 0.5;
    int harmonize = 1;
    g_object_get(config, "strength", &strength, "harmonize", &harmonize, NULL);
    p.strength = (float)strength;
    p.resample = harmonize;
  }

  session *s = session_open(config, denoise ? "Denoising" : "Re-imagining", NULL, &err);
  if (!s) return session_fail(procedure, err);
  int c = s->info.in_channels, size = s->size;
  float *init = pixels_read_model(drawable, rx, ry, rw, rh, c, size, &err);
  if (!init) {
    session_free(s);
    return session_fail(procedure, err);
  }
  float *mask = pixels_selection_model(image, drawable, rx, ry, rw, rh, size);
  p.init = init;
  p.mask = mask;
  if (denoise) {
    /* Shrinking averages the noise away by the square root of the pixels
     * per model pixel; model space spans 2 per 255 levels. */
    double per_pixel = (double)rw * rh / ((double)size * size);
    double scale = per_pixel > 1 ? sqrt(per_pixel) : 1;
    p.denoise_sigma = (float)fmax(sigma / 127.5 / scale, 1e-4);
  }
  float *out = g_new(float, (size_t)c * size * size);
  bool ok = session_sample(s, config, &p, out, &err);

  /* Everything is made before the image is touched: the previews (whose
   * run states hold init and mask), then the result in the shadow buffer. */
  pending pd;
  pending_init(&pd, image);
  int ox = 0, oy = 0;
  gimp_drawable_get_offsets(drawable, &ox, &oy);
  if (ok) {
    char *group = g_strdup_printf("DDPM %s seed %" G_GUINT64_FORMAT " previews",
                                  denoise ? "denoise" : "re-imagine", p.seed);
    ok = previews_prepare(s, image, &pd, group, 0, rw, rh, ox + rx, oy + ry, &err);
    g_free(group);
  }
  g_free(init);
  g_free(mask);
  if (ok) {
    GeglBuffer *shadow = gimp_drawable_get_shadow_buffer(drawable);
    pixels_write_model(shadow, drawable, rx, ry, rw, rh, out, c, size, NULL);
    g_object_unref(shadow);
    /* One undo step: the previews, then the pixels merged through the
     * selection. */
    gimp_image_undo_group_start(image);
    ok = pending_commit(&pd, &err);
    if (ok && (testhook_fail("merge", 0) || !gimp_drawable_merge_shadow(drawable, TRUE))) {
      g_set_error_literal(&err, DDPM_ERROR, DDPM_ERROR_IO,
                          "GIMP refused to merge the result into the layer; "
                          "the image was left as it was");
      pending_rollback(&pd);
      ok = false;
    }
    gimp_image_undo_group_end(image);
  }
  pending_discard(&pd);
  g_free(out);
  session_free(s);
  if (!ok) return session_fail(procedure, err);
  gimp_drawable_update(drawable, rx, ry, rw, rh);
  gimp_displays_flush();

  GimpValueArray *ret = gimp_procedure_new_return_values(procedure, GIMP_PDB_SUCCESS, NULL);
  if (denoise) GIMP_VALUES_SET_DOUBLE(ret, 1, sigma);
  return ret;
}
