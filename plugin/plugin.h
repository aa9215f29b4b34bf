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
#define PROC_CONTINUE "plug-in-ddpm-continue"
#define PROC_INTERPOLATE "plug-in-ddpm-interpolate"

/* Parasites: "ddpm-params" (key=value text of how a result was made) on
 * results, "ddpm-state" (a libddpm run state, ddpm_state_to_bytes) on every
 * kept intermediate step.  The state is a parasite rather than a 32-bit
 * float layer because the layer shows the sample scaled to the image and
 * clamped to the display range, while resuming needs the exact x_t at the
 * model's resolution (plus, for edits, the model-space input and mask); a
 * persistent parasite travels with the layer into XCF files and copies. */
#define PARASITE_PARAMS "ddpm-params"
#define PARASITE_STATE "ddpm-state"

/* ---- session.c: model, sampling with progress, previews ----------------- */

typedef enum { PREVIEW_X0, PREVIEW_XT, PREVIEW_BOTH } preview_kind;

/* One kept intermediate: x_t and x0 of every batch item, model space. */
typedef struct {
  int t, step;     /* after `step` steps of the run, at timestep t */
  float *x_t, *x0; /* [batch, C, S, S] */
  float *finishes; /* [batch, finishes, C, S, S] or NULL */
} preview_frame;

/* Layers made before the image is touched, inserted in one go (commit.c). */
typedef struct {
  GimpImage *image;
  GArray *layers;
} pending;

void pending_init(pending *pd, GimpImage *image);
/* parent NULL: top level; else a group added earlier. */
void pending_add(pending *pd, GimpLayer *layer, GimpLayer *parent);
/* Inserts everything in order; on failure removes what it inserted. */
bool pending_commit(pending *pd, GError **err);
/* Removes the inserted layers again (a later step failed). */
void pending_rollback(pending *pd);
/* Ends the list: deletes the layers that were never inserted. */
void pending_discard(pending *pd);

/* testhooks.c: the GIMP suite's failure switch (DDPM_PLUGIN_TEST_HOOKS). */
bool testhook_cancel(const char *phase, int step);
bool testhook_fail(const char *point, int pass);

typedef struct {
  ddpm_context *ctx;
  ddpm_model *model;
  ddpm_model_info info;
  char *model_path;
  int size;             /* the model's resolution */
  preview_kind keep;
  GPtrArray *previews;  /* preview_frame *, in step order */
  int finishes;         /* possible finishes made at each kept step */
  ddpm_sample_params run; /* the last session_sample run */
  int n_run;            /* its steps */
  const char *what;     /* "Generating", "Re-imagining", ... */
  gint64 started_us;
} session;

/* Opens the Vulkan device and the model named by the procedure's "model"
 * and "device" arguments (an empty "model" is fallback_model, when given,
 * else the default model). */
session *session_open(GimpProcedureConfig *config, const char *what,
                      const char *fallback_model, GError **err);
void session_free(session *s);

/* The procedure's failure values: GIMP_PDB_CANCEL for DDPM_ERROR_CANCELLED,
 * else an execution error with err's message.  Takes err. */
GimpValueArray *session_fail(GimpProcedure *procedure, GError *err);

/* ddpm_sample with GIMP progress, and previews kept when asked for by the
 * "preview-every", "preview-kind" and "preview-finishes" arguments.  p's
 * init and mask must stay alive until the previews are prepared. */
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
GimpValueArray *run_continue(GimpProcedure *procedure, GimpRunMode run_mode,
                             GimpImage *image, GimpDrawable **drawables,
                             GimpProcedureConfig *config, gpointer data);
GimpValueArray *run_edit(GimpProcedure *procedure, GimpRunMode run_mode,
                         GimpImage *image, GimpDrawable **drawables,
                         GimpProcedureConfig *config, gpointer data);

/* dialog.c: the procedure's dialog with model and device choosers; `note`
 * is an optional line shown above the settings.  FALSE when cancelled. */
gboolean dialog_run(GimpProcedure *procedure, GimpProcedureConfig *config,
                    const char *title, const char *note);

/* The hidden previews group of one batch item, added to `pd`: frames
 * scaled to w x h at offset (ox, oy), each with its run state. */
bool previews_prepare(session *s, GimpImage *image, pending *pd,
                      const char *group_name, int item, int w, int h, int ox,
                      int oy, GError **err);

/* The run state of batch item `item` at kept step f. */
ddpm_state *session_item_state(session *s, const preview_frame *f, int item,
                               GError **err);

#endif
