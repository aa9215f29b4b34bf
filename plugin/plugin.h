/* gimp-ddpm: shared declarations of the plug-in's parts.  The plug-in talks
 * to the backend only through include/ddpm/ddpm.h. */
#ifndef GIMP_DDPM_PLUGIN_H
#define GIMP_DDPM_PLUGIN_H

#include <libgimp/gimp.h>

#include "ddpm/ddpm.h"

#define PLUG_IN_BINARY "gimp-ddpm"
#define PROC_GENERATE "plug-in-ddpm-generate"
#define PROC_REIMAGINE "plug-in-ddpm-reimagine"
#define PROC_DENOISE "plug-in-ddpm-denoise"

/* ---- session.c: model, sampling with progress, previews ----------------- */

typedef enum { PREVIEW_X0, PREVIEW_XT, PREVIEW_BOTH } preview_kind;

/* One kept intermediate: x_t and x0 of every batch item, model space. */
typedef struct {
  int t;
  float *x_t, *x0; /* [batch, C, S, S]; NULL when not kept */
} preview_frame;

typedef struct {
  ddpm_context *ctx;
  ddpm_model *model;
  ddpm_model_info info;
  char *model_path;
  int size;             /* the model's resolution */
  preview_kind keep;
  GPtrArray *previews;  /* preview_frame *, in step order */
  const char *what;     /* "Generating", "Re-imagining", ... */
  gint64 started_us;
} session;

/* Opens the Vulkan device and the model named by the procedure's "model"
 * and "device" arguments. */
session *session_open(GimpProcedureConfig *config, const char *what,
                      GError **err);
void session_free(session *s);

/* ddpm_sample with GIMP progress, and previews kept when asked for by the
 * "preview-every" and "preview-kind" arguments. */
bool session_sample(session *s, GimpProcedureConfig *config,
                    ddpm_sample_params *p, float *out, GError **err);

/* Sampler, steps, eta and seed from the config; the seed drawn at random
 * when "random-seed" is set. */
void session_read_sampler(GimpProcedureConfig *config, ddpm_sample_params *p);

/* "ddim 50" or "ddpm 1000" */
char *session_sampler_label(const ddpm_sample_params *p);

/* The key=value text of the ddpm-params parasite. */
char *session_params_text(const session *s, const ddpm_sample_params *p,
                          uint64_t seed, const char *extra);

/* ---- pixels.c: drawables <-> planar floats ----------------------------- */

typedef struct {
  int x, y, w, h;       /* drawable coordinates */
  int channels;         /* colour channels of the drawable: 1 or 3 */
  bool alpha;
  float *colour;        /* [channels, h, w] in [0, 1], non-linear */
  float *alpha_plane;   /* [h, w] or NULL */
} pixel_region;

/* Reads a rectangle of the drawable as planar floats in its own colour
 * space's non-linear encoding (what the model was trained on). */
bool pixels_read(GimpDrawable *drawable, int x, int y, int w, int h,
                 pixel_region *r, GError **err);
void pixels_clear(pixel_region *r);

/* The selection's coverage [h, w] in 0..1 over the rectangle (drawable
 * coordinates); all ones when nothing is selected. */
float *pixels_selection_mask(GimpImage *image, GimpDrawable *drawable, int x,
                             int y, int w, int h);

/* Writes colour (and the kept alpha) of r into `buffer` at r's rectangle. */
void pixels_write(GeglBuffer *buffer, GimpDrawable *drawable,
                  const pixel_region *r);

/* Model space [-1, 1] with mc channels at size x size <-> a region's
 * colour planes ([0, 1], rc channels, rh x rw). */
float *pixels_to_model(const float *colour, int rc, int rh, int rw, int mc,
                       int size);
void pixels_from_model(const float *x, int mc, int size, float *colour, int rc,
                       int rh, int rw);

/* A new layer of the image's type holding colour planes [c, h, w]. */
GimpLayer *pixels_new_layer(GimpImage *image, const char *name, int w, int h,
                            const float *colour, int c);

/* ---- procedures -------------------------------------------------------- */

GimpValueArray *run_generate(GimpProcedure *procedure, GimpRunMode run_mode,
                             GimpImage *image, GimpDrawable **drawables,
                             GimpProcedureConfig *config, gpointer data);
GimpValueArray *run_edit(GimpProcedure *procedure, GimpRunMode run_mode,
                         GimpImage *image, GimpDrawable **drawables,
                         GimpProcedureConfig *config, gpointer data);

/* dialog.c: the procedure's dialog with model and device choosers; `note`
 * is an optional line shown above the settings.  FALSE when cancelled. */
gboolean dialog_run(GimpProcedure *procedure, GimpProcedureConfig *config,
                    const char *title, const char *note);

/* Adds the hidden previews group for one batch item above `above` (or on
 * top); frames scaled to w x h at offset (ox, oy). */
void previews_add_layers(session *s, GimpImage *image, const char *group_name,
                         int item, int w, int h, int ox, int oy);

#endif
