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
  uint64_t device_local_bytes; /* size of the largest device-local heap */
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
  /* Store weights as fp16 where the device supports 16-bit storage buffers.
   * Default false: fp32 weights, bit-comparable with the references. */
  bool fp16_weights;
} ddpm_context_params;

typedef struct ddpm_context ddpm_context;

ddpm_context_params ddpm_context_default_params(void);

/* Creates a Vulkan instance, picks a device and a compute queue. */
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
} ddpm_model_info;

/* Loads a diffusers UNet2DModel folder: config.json and
 * diffusion_pytorch_model.safetensors (a `unet/` subfolder is looked into
 * when the folder itself holds no config.json).  Every tensor is checked
 * against the configuration; all problems are reported in one error. */
ddpm_model *ddpm_model_load(ddpm_context *ctx, const char *dir, GError **err);
void ddpm_model_free(ddpm_model *model);

void ddpm_model_get_info(const ddpm_model *model, ddpm_model_info *info);

/* Device memory a forward at this batch and size needs, weights included
 * (bytes); 0 with *err set when the size is not allowed. */
uint64_t ddpm_model_memory_estimate(ddpm_model *model, int batch, int height,
                                    int width, GError **err);

/* One U-Net evaluation: eps = UNet(x, t).
 * x and eps are float32 [batch, channels, height, width] (eps may not alias
 * x); t holds one timestep per batch item.  height and width must be
 * multiples of 2^(n_levels-1); the model's sample_size is the natural one. */
bool ddpm_model_forward(ddpm_model *model, const float *x, const int64_t *t,
                        int batch, int height, int width, float *eps,
                        GError **err);

/* Peak device memory allocated by this model so far (weights + activations
 * + staging), in bytes. */
uint64_t ddpm_model_peak_device_bytes(const ddpm_model *model);

G_END_DECLS

#endif /* DDPM_DDPM_H */
