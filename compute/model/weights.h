/* Resolves weight requests of the U-Net builder against a safetensors file:
 * diffusers' current attention names and the pre-2023 ones (query, key,
 * value, proj_attn) both map to one canonical name; every missing, unexpected
 * or mis-shaped tensor is collected and reported in one error. */
#ifndef DDPM_WEIGHTS_H
#define DDPM_WEIGHTS_H

#include "model/safetensors.h"
#include "wstore.h"

typedef struct wmap wmap;

/* A source with no file: every request is filled with the deterministic
 * pseudo-random recipe of ../shared/golden/README.md ("weights_spec"):
 * offset + scale * U[i], U from splitmix64 seeded by the name's FNV-1a hash
 * XOR seed; group norms offset 1 (weights) / 0 (biases) and scale 0.25,
 * convolutions and linears scale 1/sqrt(fan_in).  Used for benchmarks and
 * tests at real model sizes. */
wmap *wmap_new_random(uint64_t seed);
/* Keep a copy of every random tensor made (name, shape, data), in request
 * order, for writing them out; wmap_kept lists them. */
void wmap_keep_random(wmap *m);
const st_out_tensor *wmap_kept(const wmap *m, size_t *n);
/* Fills dst[count] for tensor `name` by that recipe. */
void weights_random_fill(uint64_t seed, const char *name, float offset,
                         float scale, float *dst, uint64_t count);

/* Indexes the file's tensors by canonical name.  Fails (naming both) when
 * two file tensors map to the same canonical name. */
wmap *wmap_new(const st_file *file, GError **err);
void wmap_free(wmap *m);

/* Copies tensor `name` (converted to float32) into a new array of `ws`.
 * A problem is recorded, not returned: a zero array stands in so the caller
 * can go on collecting problems; wmap_finish reports them all. */
gweight wmap_request(wmap *m, wstore *ws, const char *name, int ndim,
                     const int64_t *shape);

/* Fails with DDPM_ERROR_WEIGHTS listing every problem and every tensor of
 * the file that was never requested. */
bool wmap_finish(wmap *m, GError **err);

/* "F32", "F16", "BF16" or "mixed": what the requested tensors were stored as. */
const char *wmap_dtype(const wmap *m);

/* Canonical (current diffusers) name of a weight name; g_free the result. */
char *weights_canonical_name(const char *name);

#endif
