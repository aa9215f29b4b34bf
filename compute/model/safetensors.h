/* safetensors reader and writer (https://github.com/huggingface/safetensors).
 *
 * Layout: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {...}}, then the data section.  Offsets are relative to the
 * data section.  The reader maps the file and checks every offset, shape and
 * size against the file before anything is used; the tensors must tile the
 * data section exactly, as the reference reader requires. */
#ifndef DDPM_SAFETENSORS_H
#define DDPM_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#define ST_MAX_DIMS 8

typedef enum {
  ST_F32,
  ST_F16,
  ST_BF16,
  ST_F64,
  ST_I64,
  ST_I32,
  ST_I16,
  ST_I8,
  ST_U8,
  ST_BOOL,
} st_dtype;

typedef struct {
  char *name;
  st_dtype dtype;
  int ndim;
  int64_t shape[ST_MAX_DIMS];
  uint64_t n_elements;
  uint64_t offset; /* from the start of the data section */
  uint64_t nbytes;
} st_tensor;

typedef struct st_file st_file;

/* Bytes per element of a dtype. */
size_t st_dtype_size(st_dtype dt);
/* "F32", "F16", ... */
const char *st_dtype_name(st_dtype dt);

/* Maps and validates a file.  Errors (DDPM_ERROR_IO / DDPM_ERROR_FORMAT) name
 * the path and what is wrong (header length past the end, bad JSON, unknown
 * dtype, offsets out of range or overlapping, shape/size mismatch, ...). */
st_file *st_open(const char *path, GError **err);
/* Same, over a memory buffer the caller keeps alive (used by tests/fuzzing);
 * `name` is used in error messages. */
st_file *st_open_memory(const void *data, size_t size, const char *name,
                        GError **err);
void st_close(st_file *f);

const char *st_path(const st_file *f);
size_t st_count(const st_file *f);
const st_tensor *st_tensor_at(const st_file *f, size_t i);
const st_tensor *st_find(const st_file *f, const char *name);
/* A string value of the header's __metadata__, or NULL. */
const char *st_metadata(const st_file *f, const char *key);
/* Raw bytes of a tensor (little-endian, as stored). */
const void *st_data(const st_file *f, const st_tensor *t);

/* Converts F32/F16/BF16 data to float32 into dst (t->n_elements floats). */
bool st_read_f32(const st_file *f, const st_tensor *t, float *dst, GError **err);
/* Converts I64/I32 data to int64 into dst. */
bool st_read_i64(const st_file *f, const st_tensor *t, int64_t *dst, GError **err);

/* A tensor to write. */
typedef struct {
  const char *name;
  st_dtype dtype;
  int ndim;
  int64_t shape[ST_MAX_DIMS];
  const void *data; /* n_elements * st_dtype_size(dtype) bytes */
} st_out_tensor;

/* Writes a safetensors file (atomically: temp file + rename). */
bool st_write(const char *path, const st_out_tensor *tensors, size_t n,
              GError **err);
/* The same with a __metadata__ object of string pairs: metadata is
 * {key0, value0, key1, value1, ..., NULL} (or NULL for none). */
bool st_write_meta(const char *path, const st_out_tensor *tensors, size_t n,
                   const char *const *metadata, GError **err);

/* The bytes of such a file (what st_write_meta writes). */
GBytes *st_serialize(const st_out_tensor *tensors, size_t n,
                     const char *const *metadata);

/* IEEE half / bfloat16 conversions (round to nearest even). */
float st_f16_to_f32(uint16_t h);
uint16_t st_f32_to_f16(float f);
float st_bf16_to_f32(uint16_t h);

#endif
