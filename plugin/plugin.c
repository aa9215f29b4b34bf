/* gimp-ddpm: the GimpPlugIn and its three procedures.  Arguments are
 * declared once here; the dialogs, the PDB and GIMP's remembered settings
 * all use them. */
#include "plugin.h"

#define MENU_PATH "<Image>/Filters/Diffusion (DDPM)"

typedef struct {
  GimpPlugIn parent_instance;
} DdpmPlugIn;

typedef struct {
  GimpPlugInClass parent_class;
} DdpmPlugInClass;

#define DDPM_TYPE_PLUG_IN (ddpm_plug_in_get_type())
GType ddpm_plug_in_get_type(void);
G_DEFINE_TYPE(DdpmPlugIn, ddpm_plug_in, GIMP_TYPE_PLUG_IN)

static GList *query_procedures(GimpPlugIn *plug_in) {
  GList *l = NULL;
  l = g_list_append(l, g_strdup(PROC_GENERATE));
  l = g_list_append(l, g_strdup(PROC_REIMAGINE));
  l = g_list_append(l, g_strdup(PROC_DENOISE));
  l = g_list_append(l, g_strdup(PROC_CONTINUE));
  l = g_list_append(l, g_strdup(PROC_INTERPOLATE));
  return l;
}

/* Model and device: every procedure. */
static void add_model_arguments(GimpProcedure *p) {
  gimp_procedure_add_string_argument(p, "model", "_Model",
    "A diffusers UNet2DModel folder, an org/name in the Hugging Face cache, "
    "or empty for the installed default model", "", G_PARAM_READWRITE);
  gimp_procedure_add_string_argument(p, "device", "_Device",
    "Vulkan device: index or name substring, empty for the best one", "",
    G_PARAM_READWRITE);
}

static void add_seed_arguments(GimpProcedure *p, gboolean random_default) {
  gimp_procedure_add_int_argument(p, "seed", "S_eed",
    "Noise seed (sample k of a batch uses seed + k - 1)", 0, G_MAXINT, 0,
    G_PARAM_READWRITE);
  gimp_procedure_add_boolean_argument(p, "random-seed", "_Random seed",
    "Draw a new seed each run (the seed used is kept in the layer name)",
    random_default, G_PARAM_READWRITE);
}

/* Intermediate steps kept as layers, each with its run state. */
static void add_preview_arguments(GimpProcedure *p, gboolean finishes) {
  gimp_procedure_add_int_argument(p, "preview-every", "_Keep every K steps",
    "Keep intermediate steps as hidden layers every K steps (0: none); each "
    "can be finished later with Continue Sampling", 0, 1000, 0,
    G_PARAM_READWRITE);
  gimp_procedure_add_choice_argument(p, "preview-kind", "Kee_p",
    "Which intermediates to keep as layers",
    gimp_choice_new_with_values(
      "x0", PREVIEW_X0, "Predicted image (x0)", NULL,
      "xt", PREVIEW_XT, "Noisy sample (x_t)", NULL,
      "both", PREVIEW_BOTH, "Both", NULL, NULL),
    "x0", G_PARAM_READWRITE);
  if (finishes)
    gimp_procedure_add_int_argument(p, "preview-finishes", "Possible _finishes",
      "At each kept step, also sample this many possible final images from "
      "it (what is already decided at that step; costs that many runs of the "
      "remaining steps)", 0, 8, 0, G_PARAM_READWRITE);
}

static void add_sampler_arguments(GimpProcedure *p) {
  gimp_procedure_add_choice_argument(p, "sampler", "Sa_mpler",
    "DDPM: ancestral sampling (Ho et al.); DDIM: fast deterministic steps",
    gimp_choice_new_with_values(
      "ddpm", DDPM_SAMPLER_DDPM, "DDPM (ancestral)", NULL,
      "ddim", DDPM_SAMPLER_DDIM, "DDIM (fast)", NULL, NULL),
    "ddim", G_PARAM_READWRITE);
  gimp_procedure_add_int_argument(p, "steps", "_Steps",
    "Steps of the sampling grid over the 1000 training timesteps (a start "
    "timestep below 1000 runs only the steps below it)", 1, 1000, 50,
    G_PARAM_READWRITE);
  gimp_procedure_add_double_argument(p, "eta", "_Eta",
    "DDIM noise: 0 deterministic, 1 like DDPM", 0.0, 1.0, 0.0,
    G_PARAM_READWRITE);
}

/* Model, device, sampler, seed and previews: Generate, Re-imagine, Denoise. */
static void add_common_arguments(GimpProcedure *p) {
  add_model_arguments(p);
  add_sampler_arguments(p);
  add_seed_arguments(p, TRUE);
  add_preview_arguments(p, TRUE);
}

static void add_region_arguments(GimpProcedure *p) {
  gimp_procedure_add_int_argument(p, "context-margin", "Context _margin",
    "Pixels around the selection given to the model as context", 0, 1024,
    16, G_PARAM_READWRITE);
}

/* Re-imagine and Denoise: one drawable of an RGB or grey image, run_edit
 * told which by its run data. */
static GimpProcedure *edit_procedure_new(GimpPlugIn *plug_in, const char *name,
                                         const char *label, const char *blurb,
                                         const char *help) {
  GimpProcedure *p = gimp_image_procedure_new(plug_in, name, GIMP_PDB_PROC_TYPE_PLUGIN,
                                              run_edit, (gpointer)name, NULL);
  gimp_procedure_set_image_types(p, "RGB*, GRAY*");
  gimp_procedure_set_sensitivity_mask(p, GIMP_PROCEDURE_SENSITIVE_DRAWABLE);
  gimp_procedure_set_menu_label(p, label);
  gimp_procedure_set_documentation(p, blurb, help, name);
  add_common_arguments(p);
  return p;
}

static GimpProcedure *create_procedure(GimpPlugIn *plug_in, const gchar *name) {
  GimpProcedure *p = NULL;
  if (!g_strcmp0(name, PROC_GENERATE)) {
    p = gimp_image_procedure_new(plug_in, name, GIMP_PDB_PROC_TYPE_PLUGIN,
                                 run_generate, NULL, NULL);
    gimp_procedure_set_sensitivity_mask(p, GIMP_PROCEDURE_SENSITIVE_ALWAYS);
    gimp_procedure_set_menu_label(p, "_Generate...");
    gimp_procedure_set_documentation(p,
      "Generate images with a diffusion model",
      "Samples images from noise with a DDPM U-Net (DDPM ancestral or DDIM "
      "steps) and adds them as new layers, scaled to the image, or as a new "
      "image at the model's resolution.", name);
    add_common_arguments(p);
    gimp_procedure_add_int_argument(p, "count", "_Number of images",
      "How many samples (layers) to make", 1, 16, 1, G_PARAM_READWRITE);
    gimp_procedure_add_boolean_argument(p, "new-image", "New _image",
      "Make a new image at the model's resolution", FALSE, G_PARAM_READWRITE);
    gimp_procedure_add_image_return_value(p, "result-image", "Image",
      "The image that received the samples", TRUE, G_PARAM_READWRITE);
  } else if (!g_strcmp0(name, PROC_REIMAGINE)) {
    p = edit_procedure_new(plug_in, PROC_REIMAGINE, "_Re-imagine Selection...",
      "Re-imagine the selection with a diffusion model (SDEdit)",
      "Noises the selected pixels to a start timestep (the strength) and "
      "runs the reverse process from there, keeping the pixels around the "
      "selection as context; the result is blended through the (feathered) "
      "selection, so pixels outside it are unchanged.");
    gimp_procedure_add_double_argument(p, "strength", "S_trength",
      "How far to noise the selection: start timestep = strength x 1000",
      0.01, 1.0, 0.5, G_PARAM_READWRITE);
    gimp_procedure_add_int_argument(p, "harmonize", "_Harmonize",
      "RePaint resampling rounds per step (1: off); higher blends the "
      "new content with its surroundings better", 1, 20, 1,
      G_PARAM_READWRITE);
    add_region_arguments(p);
  } else if (!g_strcmp0(name, PROC_CONTINUE)) {
    p = gimp_image_procedure_new(plug_in, name, GIMP_PDB_PROC_TYPE_PLUGIN,
                                 run_continue, NULL, NULL);
    gimp_procedure_set_image_types(p, "RGB*, GRAY*");
    gimp_procedure_set_sensitivity_mask(p, GIMP_PROCEDURE_SENSITIVE_DRAWABLE);
    gimp_procedure_set_menu_label(p, "_Continue Sampling from Layer...");
    gimp_procedure_set_documentation(p,
      "Finish a kept intermediate step of a diffusion run",
      "Runs the remaining steps of the run that kept this layer (an "
      "intermediate layer of Generate, Re-imagine or Denoise).  With the "
      "run's own seed the result is the image the uninterrupted run made; "
      "other seeds branch other finishes from the same step.", name);
    add_model_arguments(p);
    gimp_procedure_add_int_argument(p, "count", "_Number of finishes",
      "How many finishes (layers) to make; finish k uses seed + k - 1", 1, 16,
      1, G_PARAM_READWRITE);
    gimp_procedure_add_boolean_argument(p, "keep-seed", "_Keep the run's seed",
      "Use the seed of the run that kept the layer (the first finish is then "
      "the run's own result); off: use Seed", TRUE, G_PARAM_READWRITE);
    add_seed_arguments(p, FALSE);
    add_preview_arguments(p, FALSE);
  } else if (!g_strcmp0(name, PROC_INTERPOLATE)) {
    p = gimp_image_procedure_new(plug_in, name, GIMP_PDB_PROC_TYPE_PLUGIN,
                                 run_interpolate, NULL, NULL);
    gimp_procedure_set_image_types(p, "RGB*, GRAY*");
    gimp_procedure_set_sensitivity_mask(p, GIMP_PROCEDURE_SENSITIVE_DRAWABLES);
    gimp_procedure_set_menu_label(p, "_Interpolate Between Layers...");
    gimp_procedure_set_documentation(p,
      "Interpolate between two layers through the diffusion's latent space",
      "Noises both selected layers to the same timestep with the same noise, "
      "mixes them for lambda from 0 (the lower layer) to 1 (the upper one) "
      "and denoises each mix (Ho et al. 2020, Sec. 4.3).  The frames become "
      "layers: a group in this image, or a new image ready for "
      "Filters > Animation > Playback.", name);
    add_model_arguments(p);
    add_sampler_arguments(p);
    add_seed_arguments(p, TRUE);
    gimp_procedure_add_int_argument(p, "timestep", "_Timestep",
      "How far both layers are noised before mixing (of the 1000 training "
      "timesteps): higher mixes more freely, lower stays closer to the "
      "layers", 1, 999, 500, G_PARAM_READWRITE);
    gimp_procedure_add_int_argument(p, "frames", "_Frames",
      "Number of frames, both ends included", 2, 64, 8, G_PARAM_READWRITE);
    gimp_procedure_add_boolean_argument(p, "spherical", "S_pherical",
      "Spherical interpolation of the noised pair (keeps its noise level) "
      "instead of linear", FALSE, G_PARAM_READWRITE);
    gimp_procedure_add_boolean_argument(p, "new-image", "New _image (animation)",
      "Put the frames in a new image at the model's resolution, named for "
      "animation playback", FALSE, G_PARAM_READWRITE);
    gimp_procedure_add_int_argument(p, "frame-delay", "Frame _delay (ms)",
      "Animation frame time written into the layer names", 10, 10000, 100,
      G_PARAM_READWRITE);
    gimp_procedure_add_image_return_value(p, "result-image", "Image",
      "The image that received the frames", TRUE, G_PARAM_READWRITE);
  } else if (!g_strcmp0(name, PROC_DENOISE)) {
    p = edit_procedure_new(plug_in, PROC_DENOISE, "_Denoise...",
      "Remove Gaussian noise with a diffusion model",
      "Treats the selection as a noisy sample of the diffusion process: the "
      "noise level is estimated (or given) and the reverse process runs from "
      "the matching timestep.");
    gimp_procedure_add_double_argument(p, "sigma", "Noise _sigma",
      "Noise standard deviation in 8-bit pixel units (0: estimate it)",
      0.0, 255.0, 0.0, G_PARAM_READWRITE);
    add_region_arguments(p);
    gimp_procedure_add_double_return_value(p, "sigma-used", "Sigma used",
      "The noise sigma denoised (8-bit units): the estimate when sigma was 0",
      0.0, G_MAXDOUBLE, 0.0, G_PARAM_READWRITE);
  }
  if (p) {
    gimp_procedure_add_menu_path(p, MENU_PATH);
    gimp_procedure_set_attribution(p, "gimp-ddpm developers",
                                   "gimp-ddpm developers", "2026");
  }
  return p;
}

/* No translations yet: the menu and dialogs are in English. */
static gboolean set_i18n(GimpPlugIn *plug_in, const gchar *procedure_name,
                         gchar **gettext_domain, gchar **catalog_dir) {
  return FALSE;
}

static void ddpm_plug_in_class_init(DdpmPlugInClass *klass) {
  GimpPlugInClass *plug_in_class = GIMP_PLUG_IN_CLASS(klass);
  plug_in_class->set_i18n = set_i18n;
  plug_in_class->query_procedures = query_procedures;
  plug_in_class->create_procedure = create_procedure;
}

static void ddpm_plug_in_init(DdpmPlugIn *self) {}

GIMP_MAIN(DDPM_TYPE_PLUG_IN)
