#include "ddpm/ddpm.h"

G_DEFINE_QUARK(ddpm-error-quark, ddpm_error)
