/* Resampling of planar float images between the picture's size and the
 * model's: area averaging when shrinking (each output pixel is the mean of
 * the input it covers), bilinear interpolation when enlarging. */
#ifndef DDPM_RESIZE_H
#define DDPM_RESIZE_H

/* src [c, sh, sw] -> dst [c, dh, dw] */
void resize_planar(const float *src, int c, int sh, int sw, float *dst, int dh,
                   int dw);

#endif
