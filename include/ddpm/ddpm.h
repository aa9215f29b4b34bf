/* libddpm — DDPM U-Net inference on Vulkan compute.
 *
 * The only door into the backend: the GIMP plug-in and the `ddpm` CLI talk to
 * this header alone.  Objects are opaque; errors are reported through GError
 * (domain DDPM_ERROR) with a message naming the file, field or value at fault.
 *
 * Typical use:
 *
 *   ddpm_context_params cp = ddpm_context_default_params();
 *   ddpm_context *ctx = ddpm_context_new(&cp, &err);
 *   ddpm_model *m = ddpm_model_load(ctx, "google/ddpm-cifar10-32", &err);
 *   ddpm_model_forward(m, x, t, batch, h, w, eps, &err);
 *   ddpm_model_free(m);
 *   ddpm_context_free(ctx);
 */
#ifndef DDPM_DDPM_H
#define DDPM_DDPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

G_BEGIN_DECLS

/* ---- errors ------------------------------------------------------------ */

#define DDPM_ERROR (ddpm_error_quark())
GQuark ddpm_error_quark(void);

typedef enum {
  DDPM_ERROR_IO,            /* a file could not be opened or read */
  DDPM_ERROR_FORMAT,        /* a file is malformed (bad JSON, bad safetensors) */
  DDPM_ERROR_UNSUPPORTED,   /* a valid value this build does not implement */
  DDPM_ERROR_WEIGHTS,       /* missing, unexpected or mis-shaped tensors */
  DDPM_ERROR_INVALID_ARG,   /* a caller passed an invalid argument */
  DDPM_ERROR_NO_DEVICE,     /* no (matching) Vulkan device */
  DDPM_ERROR_VULKAN,        /* a Vulkan call failed */
  DDPM_ERROR_OUT_OF_MEMORY, /* host or device memory exhausted */
  DDPM_ERROR_CANCELLED,     /* the caller asked to stop; not a failure */
  DDPM_ERROR_NUMERIC,       /* NaN or Inf in an input or in the model's output */
} DdpmErrorCode;

/* ---- devices and context ---------------------------------------------- */

typedef enum {
  DDPM_DEVICE_OTHER = 0,
  DDPM_DEVICE_INTEGRATED_GPU = 1,
  DDPM_DEVICE_DISCRETE_GPU = 2,
  DDPM_DEVICE_VIRTUAL_GPU = 3,
  DDPM_DEVICE_CPU = 4,
} ddpm_device_type;

typedef struct {
  char name[256];
  ddpm_device_type type;
  uint32_t vendor_id, device_id;
  uint32_t api_version;        /* VK_MAKE_API_VERSION packed */
  uint64_t device_local_bytes; /* size of the largest device-local heap; for
                                  the context's device, the budget the
                                  library allocates within (see
                                  DDPM_DEVICE_MEMORY_LIMIT) */
  bool fp16_storage;           /* storageBuffer16BitAccess */
  uint32_t subgroup_size;
} ddpm_device_info;

/* Lists the Vulkan devices.  Returns a newly allocated array (g_free) and its
 * length in *n_out, or NULL with *err set when Vulkan itself is unusable. */
ddpm_device_info *ddpm_list_devices(size_t *n_out, GError **err);

/* Human-readable name of a device type ("discrete GPU", "CPU", ...). */
const char *ddpm_device_type_name(ddpm_device_type type);

typedef struct {
  /* Which device: a decimal index into ddpm_list_devices(), or a
   * case-insensitive substring of its name.  NULL: the environment variable
   * DDPM_DEVICE, else the first discrete GPU, else integrated, else any. */
  const char *device;
  /* Enable VK_LAYER_KHRONOS_validation and count its messages (see
   * ddpm_context_validation_messages).  Also enabled by DDPM_VALIDATION=1. */
  bool validation;
  /* Store the convolution weights (nearly all of a U-Net's) as IEEE
   * halves, rounded to nearest even, and convert them to float32 in the
   * shaders; arithmetic stays float32.  Halves the weights' device memory,
   * works on every device (no 16-bit storage feature needed); a weight
   * with values beyond the half range stays float32.  The U-Net's output
   * then differs from float32 weights by about 1e-3 relative (README, The
   * CLI, --fp16-weights); models stored in float16 lose nothing.  Also enabled by
   * DDPM_FP16_WEIGHTS=1.  Default false: float32, within 3e-6 of diffusers. */
  bool fp16_weights;
} ddpm_context_params;

typedef struct ddpm_context ddpm_context;

ddpm_context_params ddpm_context_default_params(void);

/* Creates a Vulkan instance, picks a device and a compute queue.
 *
 * The environment variable DDPM_DEVICE_MEMORY_LIMIT=BYTES (a K, M or G
 * suffix multiplies by 1024, 1024^2, 1024^3), read here, makes the context
 * behave like a device with that much device-local memory: its
 * ddpm_device_info.device_local_bytes reports it and device allocations
 * beyond it fail as out of memory (for tests; an unparsable value fails
 * with DDPM_ERROR_INVALID_ARG naming it).
 *
 * Out of memory: a batch (of ddpm_sample, ddpm_nll's chunks and
 * ddpm_model_forward) that does not fit the device's free memory is run in
 * smaller groups, with the same result bit for bit; the group is chosen
 * from the estimate before anything is allocated, and halved again if
 * allocating still fails.  When not even one image fits, or the weights do
 * not, the error (DDPM_ERROR_OUT_OF_MEMORY) names the memory needed and
 * the memory available in MiB. */
ddpm_context *ddpm_context_new(const ddpm_context_params *params, GError **err);
void ddpm_context_free(ddpm_context *ctx);

/* The chosen device. */
const ddpm_device_info *ddpm_context_device(const ddpm_context *ctx);

/* Number of validation-layer messages of severity warning or error seen so
 * far (0 when validation is off).  Tests require this to stay 0. */
unsigned ddpm_context_validation_messages(const ddpm_context *ctx);

/* ---- models ------------------------------------------------------------ */

typedef struct ddpm_model ddpm_model;

typedef struct {
  int in_channels, out_channels;
  int sample_size;          /* the resolution the model was trained at */
  int n_levels;             /* len(block_out_channels) */
  int block_out_channels[8];
  int layers_per_block;
  uint64_t n_params;        /* parameters loaded */
  const char *weight_dtype; /* dtype of the file: "F32", "F16", "BF16" or "mixed" */
  uint64_t weight_bytes;    /* bytes the weights take on the device */
  size_t n_nodes;           /* kernels dispatched per forward */
  double forward_flops;     /* of convolutions, attention and linear layers,
                               for one image at sample_size (2 per MAC) */
} ddpm_model_info;

/* Loads a diffusers UNet2DModel folder: config.json and
 * diffusion_pytorch_model.safetensors (a `unet/` subfolder is looked into
 * when the folder itself holds no config.json).  Every tensor is checked
 * against the configuration; all problems are reported in one error. */
ddpm_model *ddpm_model_load(ddpm_context *ctx, const char *dir, GError **err);
void ddpm_model_free(ddpm_model *model);

void ddpm_model_get_info(const ddpm_model *model, ddpm_model_info *info);

/* Device memory a forward at this batch and size needs, weights included
 * (bytes); 0 with *err set when the size is not allowed.  It may exceed the
 * device: a forward then runs in smaller groups (see ddpm_context_new). */
uint64_t ddpm_model_memory_estimate(ddpm_model *model, int batch, int height,
                                    int width, GError **err);

/* One U-Net evaluation: eps = UNet(x, t).
 * x and eps are float32 [batch, channels, height, width] (eps may not alias
 * x); t holds one timestep per batch item.  height and width must be
 * multiples of 2^(n_levels-1); the model's sample_size is the natural one.
 * An output holding NaN or Inf (non-finite weights, overflow) fails with
 * DDPM_ERROR_NUMERIC. */
bool ddpm_model_forward(ddpm_model *model, const float *x, const int64_t *t,
                        int batch, int height, int width, float *eps,
                        GError **err);

/* Peak device memory allocated by this model so far (weights + activations
 * + staging), in bytes. */
uint64_t ddpm_model_peak_device_bytes(const ddpm_model *model);

/* ---- sampling ---------------------------------------------------------- */

typedef enum {
  DDPM_SAMPLER_DDPM = 0, /* ancestral sampling (Ho et al.), diffusers DDPMScheduler */
  DDPM_SAMPLER_DDIM = 1, /* DDIM (Song et al.), diffusers DDIMScheduler, eta in [0, 1] */
} ddpm_sampler;

/* What the progress callback sees after each step. */
typedef struct {
  int step, total;      /* steps done (1-based) of total */
  int t;                /* the timestep just denoised */
  const float *x_t;     /* sample after the step [batch, C, H, W]; NULL unless
                           this step was asked for as a preview */
  const float *x0_pred; /* the model's x0 prediction at this step (idem) */
} ddpm_progress;

/* Return false to stop: ddpm_sample then fails with DDPM_ERROR_CANCELLED. */
typedef bool (*ddpm_progress_fn)(const ddpm_progress *progress, void *user);

typedef struct {
  ddpm_sampler sampler;
  int steps;    /* grid size: set_timesteps(steps) of the scheduler, 1 ..
                   num_train_timesteps (more is refused, as diffusers does) */
  float eta;    /* DDIM only, 0 .. 1 (ignored by DDPM) */
  uint64_t seed; /* batch item b uses seed + b, so an image does not depend
                    on its position in the batch */
  /* Every batch item uses `seed` itself for all its noise (start, steps,
   * SDEdit known region, resampling): the items share one noise
   * realisation, and item b is what a batch-1 run with `seed` would make
   * from its own input.  ddpm_interpolate uses it to keep the reverse
   * noise fixed across frames. */
  bool shared_noise;
  int batch, height, width; /* height/width 0: the model's sample_size */

  /* SDEdit / inpainting: start from `init` [batch, C, H, W] in [-1, 1]
   * noised to t0 (or strength * num_train_timesteps when t0 < 0), keep
   * `mask` [H, W] == 0 pixels (1 = regenerate, fractions blend; values in
   * [0, 1], else DDPM_ERROR_INVALID_ARG): mask-0 pixels of the result are
   * init's values exactly.  NULL init: plain generation from noise.
   * strength is in (0, 1]: 0 (which would leave the image as it is, and is
   * also the value of a strength never set) is refused with
   * DDPM_ERROR_INVALID_ARG; t0 = 0 runs the last step only.  NaN or Inf in
   * init, mask or start_x fail with DDPM_ERROR_NUMERIC naming which. */
  const float *init;
  const float *mask;
  int t0;
  float strength;
  /* RePaint-style harmonizing (Lugmayr et al. 2022): each step is redone
   * `resample` times, jumping back one step with forward noise in between;
   * 1 (or 0) is plain SDEdit. */
  int resample;
  /* Denoising: when > 0, `init` is a noisy image y = x0 + sigma * n (sigma in
   * the model's [-1, 1] units); it is taken as the intermediate x_t whose
   * noise level matches (sqrt(abar_t) * y) and the reverse process runs from
   * there without adding noise first.  With a mask, the result is blended
   * with `init` through it. */
  float denoise_sigma;

  /* Injected noise instead of the generator (for replaying references):
   * start noise [batch, C, H, W] (x_T, or the SDEdit init noise), per-step
   * noise [steps_run, batch, C, H, W], SDEdit known-region noise likewise. */
  const float *noise_start;
  const float *noise_steps;
  const float *noise_known;

  /* Stopping and resuming (the CLI's state files).  `start_step` > 0 skips
   * the run's first start_step steps and takes `start_x` [batch, C, H, W] as
   * the sample after them (start_x with start_step 0 replaces the starting
   * sample).  The noise a step adds depends only on the seed, the step's
   * index in the run and the value's index, so resuming with the seed of
   * the interrupted run reproduces the uninterrupted run bit for bit; another
   * seed branches from there.  `stop_step` > 0 stops after that many steps of
   * the run (skipped ones included) and returns that intermediate sample in
   * `out`; 0 runs to the end. */
  int start_step;
  const float *start_x;
  int stop_step;

  ddpm_progress_fn progress;
  void *user;
  int preview_every; /* 0: no previews; k: x_t and x0_pred every k steps and at the end */
  float *trajectory; /* optional [steps_run, batch, C, H, W]: sample after every step */
} ddpm_sample_params;

ddpm_sample_params ddpm_sample_default_params(void);

/* Number of reverse steps a run with these parameters takes (all of them:
 * start_step and stop_step do not change it). */
int ddpm_sample_steps_run(ddpm_model *model, const ddpm_sample_params *p,
                          GError **err);

/* The timesteps of the scheduler's `steps`-step grid in the order a run
 * denoises them, into ts[steps]; false with *err set when steps is out of
 * range. */
bool ddpm_sample_timesteps(ddpm_model *model, int steps, int *ts, GError **err);

/* Runs the reverse process; out receives the final sample [batch, C, H, W]
 * in the model's [-1, 1] space. */
bool ddpm_sample(ddpm_model *model, const ddpm_sample_params *p, float *out,
                 GError **err);

/* ---- run states: stop now, finish later ---------------------------------- */

/* Everything needed to finish a run exactly: what ddpm_sample was given, how
 * far it got and the sample at that point.  Stored as a safetensors file:
 * tensors x_t [B, C, H, W] and, for runs from an image, init [B, C, H, W]
 * and mask [1, 1, H, W]; the settings as strings in __metadata__ (format
 * "gimp-ddpm-state", version, model, sampler, steps, step, t, timesteps,
 * seed, eta, batch, channels, height, width, and t0, resample,
 * denoise_sigma for runs from an image).  The CLI writes such files
 * (--save-state); the GIMP plug-in keeps the same bytes in a parasite of
 * each intermediate layer. */
typedef struct {
  char *model;          /* the model the run used, as it was given */
  ddpm_sampler sampler;
  int steps;            /* grid size */
  float eta;
  uint64_t seed;
  int batch, channels, height, width;
  int step;             /* steps of the run done */
  int t;                /* the timestep the next step denoises */
  int t0;               /* runs from an image: the grid's start timestep; else -1 */
  int resample;         /* RePaint rounds (runs from an image) */
  float denoise_sigma;  /* denoising runs: sigma; else 0 */
  int *timesteps;       /* the run's grid, [steps] */
  float *x;             /* [batch, C, H, W]: the sample after `step` steps */
  float *init;          /* [batch, C, H, W] or NULL */
  float *mask;          /* [H, W] or NULL */
} ddpm_state;

/* The state of run `p` on `model` after `step` of its steps (0 < step <
 * ddpm_sample_steps_run), x being the sample then (for instance the x_t of a
 * preview, or what ddpm_sample returns with stop_step).  `model_name` is
 * recorded for resuming.  Copies x, p->init and p->mask. */
ddpm_state *ddpm_state_new(ddpm_model *model, const char *model_name,
                           const ddpm_sample_params *p, int step,
                           const float *x, GError **err);
void ddpm_state_free(ddpm_state *state);

/* The state as safetensors bytes, and back.  Parsing checks every field and
 * size (errors name `name` and the field) and that x, init and mask are
 * finite; it does not need the model. */
GBytes *ddpm_state_to_bytes(const ddpm_state *state);
ddpm_state *ddpm_state_from_bytes(const void *data, size_t size,
                                  const char *name, GError **err);
bool ddpm_state_save(const ddpm_state *state, const char *path, GError **err);
ddpm_state *ddpm_state_load(const char *path, GError **err);

/* Sampling parameters that finish the run on `model`: sampler, steps, eta,
 * seed, batch, size, init, mask, t0, resample, denoise_sigma, start_step and
 * start_x.  Fails unless the model samples the state's shape and its
 * scheduler makes the same grid.  The parameters point into `state`; keep it
 * alive while they are used.  Change `seed` to branch a new finish. */
bool ddpm_state_resume_params(const ddpm_state *state, ddpm_model *model,
                              ddpm_sample_params *p, GError **err);

/* Robust estimate of the Gaussian noise sigma of an image [c, h, w] (same
 * units as its values): median absolute diagonal Haar detail / 0.6745. */
float ddpm_estimate_noise_sigma(const float *image, int c, int h, int w);

/* The timestep a denoising run with this sigma starts from. */
int ddpm_denoise_start_timestep(ddpm_model *model, int steps, float sigma);

/* Standard normal noise of the library's counter-based generator
 * (Philox4x32-10 + Box-Muller): value `index` of stream `stream` for `seed`. */
float ddpm_noise(uint64_t seed, uint32_t stream, uint64_t index);

/* ---- interpolation (Ho et al. 2020, section 4.3) ------------------------ */

#define DDPM_INTERPOLATE_MAX_FRAMES 256

typedef struct {
  /* Both images are noised to the timestep of the sampler's grid that a
   * run with t0 = t starts from (the first grid timestep <= t), 0..T-1. */
  int t;
  int frames;     /* 2..DDPM_INTERPOLATE_MAX_FRAMES; frame i has lambda = i / (frames - 1) */
  bool spherical; /* slerp the noised pair (norm interpolated linearly)
                     instead of (1 - lambda) x_t + lambda x'_t */
  ddpm_sampler sampler;
  int steps;
  float eta;      /* DDIM only */
  /* The forward noise eps is ddpm_noise(seed, 0, i) for both images, the
   * reverse noise that of `seed` for every frame (shared_noise): frame 0 is
   * bit for bit the SDEdit run (init = a, t0 = t, batch 1, seed) and only
   * lambda changes between frames. */
  uint64_t seed;
  int channels, height, width; /* of a and b; 0: the model's */
  int chunk;      /* frames per U-Net batch; 0: up to 16, fewer when large */
  ddpm_progress_fn progress; /* step/total over all frames; x_t is NULL */
  void *user;
} ddpm_interpolate_params;

ddpm_interpolate_params ddpm_interpolate_default_params(void);

/* Interpolates between images a and b [C, H, W] (model space [-1, 1])
 * through the diffusion's latent at t: x_t = sqrt(abar_t) x0 +
 * sqrt(1 - abar_t) eps with one eps for both, the pair mixed per frame,
 * each mix denoised by the reverse process from t.  out receives
 * [frames, C, H, W]. */
bool ddpm_interpolate(ddpm_model *model, const float *a, const float *b,
                      const ddpm_interpolate_params *params, float *out,
                      GError **err);

/* ---- likelihood ----------------------------------------------------------- */

/* The variational bound on -log p(x0) of Ho et al. 2020 (eq. 5, Table 2) in
 * bits per dimension: the prior term KL(q(x_T|x0) || N(0, I)), the T - 1
 * Gaussian KL terms KL(q(x_{t-1}|x_t, x0) || p(x_{t-1}|x_t)) with p's
 * variance as the scheduler's variance_type says (fixed_small: beta~_t,
 * fixed_large: beta_t), and the discretized Gaussian decoder
 * -log p(x0|x_1) over 256 bins (8-bit data; outer bins reach +-inf).
 * compute/likelihood.c has the details. */
typedef struct {
  /* U-Net evaluations per image, K.  0 (or >= T): all T terms, the bound
   * itself (up to the single draw of x_t per term).  3 <= K < T: an unbiased
   * estimate: the decoder term plus K - 1 of the T - 1 KL terms drawn
   * uniformly without replacement (the same for every image), their sum
   * scaled by (T - 1) / (K - 1), with a standard error. */
  int timesteps;
  /* x_t of image b at timestep t uses ddpm_noise(seed + b, t, i); the seed
   * also picks the timesteps when K < T. */
  uint64_t seed;
  int chunk; /* U-Net batch: (image, t) pairs per forward; 0: 16 (fewer
                when the device cannot hold them; the same result) */
  ddpm_progress_fn progress; /* step/total count evaluations; x_t is NULL */
  void *user;
} ddpm_nll_params;

typedef struct {
  double bpd;      /* the bound (or its estimate), bits/dim */
  double se;       /* standard error of the estimate; 0 with all T terms */
  double prior;    /* prior term L_T, bits/dim */
  double decoder;  /* decoder term L_0, bits/dim */
  int n_terms;     /* U-Net evaluations per image */
} ddpm_nll_result;

ddpm_nll_params ddpm_nll_default_params(void);

/* Bound of each of `batch` images x0 [batch, C, H, W] (values in [-1, 1],
 * k / 127.5 - 1 for 8-bit data) into res[batch]; `mean` (may be NULL) gets
 * the batch average with its standard error; `terms` (may be NULL)
 * [batch, T] receives each term in bits/dim by the model timestep t it
 * evaluates (t = 0: the decoder, t >= 1: KL(q(x_{t-1}|..) || p(x_{t-1}|..)))
 * and NaN for terms not evaluated. */
bool ddpm_nll(ddpm_model *model, const float *x0, int batch, int height,
              int width, const ddpm_nll_params *params, ddpm_nll_result *res,
              ddpm_nll_result *mean, double *terms, GError **err);

/* ---- images ------------------------------------------------------------- */

/* Resamples planar float images src [c, sh, sw] into dst [c, dh, dw]: area
 * averaging when shrinking (each output pixel is the mean of the input it
 * covers), bilinear interpolation at pixel centres when enlarging. */
void ddpm_resize(const float *src, int c, int sh, int sw, float *dst, int dh,
                 int dw);

/* Rows y0..y1-1 of what ddpm_resize makes, into dst [c, y1 - y0, dw]: the
 * same values, for writing a large picture a strip at a time. */
void ddpm_resize_rows(const float *src, int c, int sh, int sw, float *dst,
                      int dh, int dw, int y0, int y1);

/* Converts planar src [sc, hw] into dst [dc, hw]: grey is replicated into
 * every channel, RGB becomes grey by Rec. 601 luma. */
void ddpm_convert_channels(const float *src, int sc, float *dst, int dc,
                           size_t hw);

/* ---- finding models -------------------------------------------------------- */

typedef struct {
  char *name; /* "org/name" of a Hugging Face cache entry, or "default" */
  char *path; /* the folder for ddpm_model_load */
} ddpm_model_entry;

/* The model installed with the library: $DDPM_DEFAULT_MODEL when set, else
 * <datadir>/gimp-ddpm/models/default.  The folder may be missing. */
const char *ddpm_default_model_dir(void);

/* Diffusers UNet2DModel folders in the Hugging Face cache ($HF_HUB_CACHE,
 * else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub): for each models--ORG--NAME, the snapshot that
 * refs/main names (else the newest) whose config.json, or unet/config.json,
 * has "_class_name": "UNet2DModel".  Sorted by name; *n receives the count.
 * Free with ddpm_model_entries_free. */
ddpm_model_entry *ddpm_find_models(size_t *n);
void ddpm_model_entries_free(ddpm_model_entry *entries, size_t n);

/* Turns what a user typed into a model folder: NULL, "" or "default" is the
 * installed model; an existing folder is itself; "org/name" is looked up in
 * the Hugging Face cache.  Returns a new string, or NULL with an error
 * saying what was tried. */
char *ddpm_resolve_model(const char *spec, GError **err);

G_END_DECLS

#endif /* DDPM_DDPM_H */
