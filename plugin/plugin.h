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

/* NULL when exactly `want` drawables are given, else the calling-error
 * values: "<procedure> <what>; N layer(s) are selected". */
GimpValueArray *session_check_drawables(GimpProcedure *procedure,
                                        GimpDrawable **drawables, int want,
                                        const char *what);

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

/* ---- pixels.c: drawables <-> the model's planar floats ---------------- */

/* A rectangle of the drawable (its colour space's non-linear encoding, what
 * models are trained on) scaled to the model: [mc, size, size] in [-1, 1]
 * (area averaging when shrinking, bilinear when enlarging; grey and RGB
 * converted to mc channels).  Read a strip at a time. */
float *pixels_read_model(GimpDrawable *drawable, int x, int y, int w, int h,
                         int mc, int size, GError **err);

/* A rectangle at full resolution, planar [channels, h, w] in [0, 1]
 * (for small crops: the noise estimate). */
float *pixels_read_sample(GimpDrawable *drawable, int x, int y, int w, int h,
                          int *channels);

/* The selection's coverage over the rectangle (drawable coordinates)
 * scaled to [size, size] in 0..1; all ones when nothing is selected. */
float *pixels_selection_model(GimpImage *image, GimpDrawable *drawable, int x,
                              int y, int w, int h, int size);

/* Model planes [mc, size, size] in [-1, 1] scaled to w x h and written into
 * `buffer` (of `drawable`, or its shadow) at (x, y), a strip at a time.
 * Alpha, when the drawable has it: alpha_model [size, size] scaled up, or
 * else the drawable's own alpha kept. */
void pixels_write_model(GeglBuffer *buffer, GimpDrawable *drawable, int x,
                        int y, int w, int h, const float *model, int mc,
                        int size, const float *alpha_model);

/* A new layer of the image's base type holding model planes scaled to
 * w x h, with alpha from alpha_model when given. */
GimpLayer *pixels_new_layer(GimpImage *image, const char *name, int w, int h,
                            const float *model, int mc, int size,
                            const float *alpha_model);

/* ---- procedures -------------------------------------------------------- */

GimpValueArray *run_generate(GimpProcedure *procedure, GimpRunMode run_mode,
                             GimpImage *image, GimpDrawable **drawables,
                             GimpProcedureConfig *config, gpointer data);
GimpValueArray *run_continue(GimpProcedure *procedure, GimpRunMode run_mode,
                             GimpImage *image, GimpDrawable **drawables,
                             GimpProcedureConfig *config, gpointer data);
GimpValueArray *run_interpolate(GimpProcedure *procedure, GimpRunMode run_mode,
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

/* Parameters that finish run state `st` `count` times in one batch: its
 * sample (and input) replicated into *xs (and *inits), to g_free after
 * sampling; batch item j uses the parameters' seed + j. */
bool session_finish_params(session *s, const ddpm_state *st, int count,
                           ddpm_sample_params *q, float **xs, float **inits,
                           GError **err);

/* A result layer (model planes scaled to w x h, alpha from `alpha` model
 * planes when given) with the ddpm-params parasite of run p and seed. */
GimpLayer *session_result_layer(session *s, GimpImage *image, const char *name,
                                int w, int h, const float *planes,
                                const float *alpha, const ddpm_sample_params *p,
                                uint64_t seed, const char *extra);

/* The run state of batch item `item` at kept step f. */
ddpm_state *session_item_state(session *s, const preview_frame *f, int item,
                               GError **err);

#endif
