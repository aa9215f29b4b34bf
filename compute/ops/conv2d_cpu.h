/* The convolution kernel for CPU devices (lavapipe), used by op_conv2d. */
#ifndef DDPM_CONV2D_CPU_H
#define DDPM_CONV2D_CPU_H

#include "ops/ops.h"

/* Whether the device (NULL: a graph only planned) has the descriptors and
 * memory the kernel binds. */
bool conv2d_cpu_supported(const VkPhysicalDeviceLimits *limits);

/* Records y = conv(x) (see op_conv2d) with y already shaped. */
void conv2d_cpu(graph *g, gtensor x, gweight w, gweight b, gtensor y,
                const conv2d_params *p);

#endif
