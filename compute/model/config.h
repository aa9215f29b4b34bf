/* UNet2DModel config.json (diffusers) → a validated C struct. */
#ifndef DDPM_CONFIG_H
#define DDPM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <glib.h>

#define DDPM_MAX_LEVELS 8

typedef struct {
  int in_channels, out_channels;
  int sample_size;
  int n_levels;                          /* len(block_out_channels) */
  int block_out_channels[DDPM_MAX_LEVELS];
  bool down_attn[DDPM_MAX_LEVELS];       /* AttnDownBlock2D at level i */
  bool up_attn[DDPM_MAX_LEVELS];         /* AttnUpBlock2D at up index i */
  int layers_per_block;
  int attention_head_dim;                /* 0: null = one head over all channels */
  int norm_num_groups;
  int attn_norm_num_groups;              /* 0: null = norm_num_groups */
  float norm_eps;
  bool flip_sin_to_cos;
  float freq_shift;
  int downsample_padding;                /* 0 = diffusers' asymmetric (0,1,0,1) pad */
  float mid_block_scale_factor;
  bool center_input_sample;
  bool add_attention;                    /* attention in the mid block */
} ddpm_unet_config;

/* Parses and validates; errors name `source` (a path) and the field. */
bool ddpm_unet_config_parse(const char *json, size_t len, const char *source,
                            ddpm_unet_config *cfg, GError **err);
bool ddpm_unet_config_load(const char *path, ddpm_unet_config *cfg,
                           GError **err);

#endif
