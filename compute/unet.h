/* UNet2DModel (diffusers) as a graph: time embedding -> conv_in -> down
 * blocks -> mid block -> up blocks -> norm, SiLU, conv_out. */
#ifndef DDPM_UNET_H
#define DDPM_UNET_H

#include "graph.h"
#include "model/config.h"
#include "model/weights.h"

typedef struct {
  char *name; /* diffusers module name, e.g. "down_blocks.1.attentions.0" */
  gtensor t;
} unet_probe;

typedef struct {
  gtensor x;      /* input sample [n, in_channels, h, w] */
  gtensor t;      /* timesteps as float [n, 1, 1, 1] */
  gtensor eps;    /* output [n, out_channels, h, w] */
  GArray *probes; /* unet_probe, when built with probes */
} unet_io;

/* Appends the forward for batch n at h x w to g.  Weights come from `src`
 * when given (first build: read from the file into ws), else from ws by
 * name (later builds).  With `probes`, every module output is kept and
 * listed in io->probes (free with g_array_unref). */
void unet_build(graph *g, wstore *ws, wmap *src, const ddpm_unet_config *cfg,
                int n, int h, int w, bool probes, unet_io *io);

/* The same on a given input tensor x (e.g. a resident one); eps is not
 * marked as an output. */
void unet_build_on(graph *g, wstore *ws, wmap *src, const ddpm_unet_config *cfg,
                   gtensor x, bool probes, unet_io *io);

/* Checks that h and w suit the config; errors name the size. */
bool unet_check_size(const ddpm_unet_config *cfg, int h, int w, GError **err);

#endif
