/* model.c: defaults of the common model options. */
#include "core/model.h"

#include <string.h>

void dsv32_model_opts_default(dsv32_model_opts *o)
{
	memset(o, 0, sizeof *o);
	o->device = DSV32_DEV_CPU;
	o->profile = DSV32_PROFILE_BF16;
	o->world_size = 1;
	o->experts = DSV32_EXPERTS_GROUPED_MM;
	o->layers = 0;             /* all decoder layers */
	o->eager_dequant = false;  /* hf on CPU: fp8 matrices dequantized lazily */
}
