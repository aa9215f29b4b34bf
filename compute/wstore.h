/* Weight store: named float32 arrays filled on the host, uploaded once into
 * one device buffer (through a small staging chunk), shared by every graph
 * built for a model. */
#ifndef DDPM_WSTORE_H
#define DDPM_WSTORE_H

#include "vk/vk.h"

typedef struct {
  int id;
  uint64_t count;
} gweight;

typedef struct wstore wstore;

wstore *wstore_new(ddpm_context *ctx);
void wstore_free(wstore *ws);

/* A new array of `count` floats; fill the returned host pointer before the
 * upload.  `name` (may be NULL) lets later graphs find it with wstore_find. */
float *wstore_add(wstore *ws, const char *name, uint64_t count, gweight *out);
/* The same without host memory: a stand-in for a weight that could not be
 * read (the model fails to load then), so that a file whose config asks for
 * gigabytes does not make us allocate them.  Uploads as zeros. */
gweight wstore_add_unfilled(wstore *ws, const char *name, uint64_t count);
bool wstore_find(const wstore *ws, const char *name, gweight *out);

/* Weight `w` rearranged for a kernel (e.g. transposed), made once per
 * (w, tag) before the upload by fill(src, dst, arg) into `count` zeroed
 * floats; later calls return the same copy.  The original then takes no
 * device memory: every user of `w` must ask for the same derived copy. */
typedef void (*wstore_fill_fn)(const float *src, float *dst, const void *arg);
gweight wstore_derive(wstore *ws, gweight w, const char *tag, uint64_t count,
                      wstore_fill_fn fill, const void *arg);
/* Arrays parts[0 .. n - 1] end to end as one new array named `name`,
 * made once before the upload (later calls find it); the parts then take
 * no device memory: every user of them must use the whole instead.  A
 * stand-in among the parts makes the whole one. */
gweight wstore_concat(wstore *ws, const char *name, const gweight *parts, int n);
/* Whether wstore_derive has made copy `tag` of `w`. */
bool wstore_has_derived(const wstore *ws, gweight w, const char *tag);

/* Whether every value of `w` survives conversion to IEEE half (no finite
 * value beyond the half range, 65504); true for a stand-in.  The first
 * answer, which must come before the upload, is kept for later calls. */
bool wstore_fits_f16(wstore *ws, gweight w);

/* Stores v, rounded to IEEE half (to nearest even), as half number i of
 * `dst` read as 32-bit words of two halves, the lower 16 bits first (what
 * GLSL's unpackHalf2x16 returns as .x).  For fill functions of derived
 * weights that kernels unpack; the word must start zeroed. */
void wstore_set_f16(float *dst, uint64_t i, float v);

/* Uploads what is not on the device yet and frees the host copies. */
bool wstore_upload(wstore *ws, GError **err);
bool wstore_uploaded(const wstore *ws);

vk_binding wstore_binding(const wstore *ws, int id);
uint64_t wstore_bytes(const wstore *ws);
uint64_t wstore_params(const wstore *ws);

#endif
