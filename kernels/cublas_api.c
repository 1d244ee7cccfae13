/* cublas_api.c: cuBLAS through dlopen (cublas_api.h says why). */
#include "kernels/cublas_api.h"

#ifdef DSV32_HAVE_CUDA
#include <cublas_v2.h>
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define STR2(x) #x
#define STR(x) STR2(x) /* expands first: cublasCreate -> "cublasCreate_v2" */
#define CUBLAS_SONAME "libcublas.so." STR(CUBLAS_VER_MAJOR)

/* The typedefs are the header's prototypes (cublas_v2.h maps cublasCreate to cublasCreate_v2,
 * and so on); a toolkit that changes one fails the build here rather than a call at run time. */
#define SAME_TYPE(fn, t) \
	_Static_assert(__builtin_types_compatible_p(__typeof__(&fn), t), #fn " prototype changed")
SAME_TYPE(cublasCreate, dsv32_cublas_create_fn);
SAME_TYPE(cublasDestroy, dsv32_cublas_destroy_fn);
SAME_TYPE(cublasSetStream, dsv32_cublas_set_stream_fn);
SAME_TYPE(cublasSetMathMode, dsv32_cublas_set_math_mode_fn);
SAME_TYPE(cublasGemmStridedBatchedEx, dsv32_cublas_gemm_sbex_fn);

static void *open_lib(char *tried, size_t cap)
{
	void *lib = dlopen(CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (lib)
		return lib;
	snprintf(tried, cap, "%s", dlerror());
#ifdef DSV32_CUDA_LIBDIR
	lib = dlopen(DSV32_CUDA_LIBDIR "/" CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		size_t n = strlen(tried);
		snprintf(tried + n, cap - n, "; %s", dlerror());
	}
#endif
	return lib;
}

/* *slot = the symbol name of lib; false if it is missing. */
static bool resolve(void *lib, const char *name, void **slot)
{
	*slot = dlsym(lib, name);
	return *slot != NULL;
}

dsv32_status dsv32_cublas_open(dsv32_cublas_api *api, dsv32_error *err)
{
	memset(api, 0, sizeof *api);
	char tried[1024];
	void *lib = open_lib(tried, sizeof tried);
	if (!lib)
		return DSV32_FAIL(err, DSV32_E_UNSUPPORTED,
				  "cuBLAS: cannot load %s (the CUDA backend needs it): %s",
				  CUBLAS_SONAME, tried);
	const struct {
		const char *name;
		void **slot;
	} fns[] = {
		{STR(cublasCreate), (void **)&api->create},
		{STR(cublasDestroy), (void **)&api->destroy},
		{STR(cublasSetStream), (void **)&api->set_stream},
		{STR(cublasSetMathMode), (void **)&api->set_math_mode},
		{STR(cublasGemmStridedBatchedEx), (void **)&api->gemm_strided_batched_ex},
	};
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
		if (!resolve(lib, fns[i].name, fns[i].slot)) {
			dlclose(lib);
			memset(api, 0, sizeof *api);
			return DSV32_FAIL(err, DSV32_E_UNSUPPORTED, "cuBLAS: %s has no symbol %s",
					  CUBLAS_SONAME, fns[i].name);
		}
	api->lib = lib;
	return DSV32_OK;
}

void dsv32_cublas_close(dsv32_cublas_api *api)
{
	if (api->lib)
		dlclose(api->lib);
	memset(api, 0, sizeof *api);
}
#else
typedef int dsv32_cublas_api_unused; /* ISO C: a translation unit declares something */
#endif
