/* Resolves weight requests of the U-Net builder against a safetensors file:
 * diffusers' current attention names and the pre-2023 ones (query, key,
 * value, proj_attn) both map to one canonical name; every missing, unexpected
 * or mis-shaped tensor is collected and reported in one error. */
#ifndef DDPM_WEIGHTS_H
#define DDPM_WEIGHTS_H

#include "model/safetensors.h"
#include "wstore.h"

typedef struct wmap wmap;

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
