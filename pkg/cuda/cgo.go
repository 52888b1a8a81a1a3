//go:build cuda

package cuda

// What gorgonia.org/cu lacks, in a few lines of C: raising a kernel's dynamic shared
// memory limit past 48 KB (cuFuncSetAttribute) and cuBLAS loaded at run time with dlopen,
// whatever its major version (the GPU machines have CUDA 12 or 13, this machine's headers
// are 11.8, and cu's own blas package links libcublas.so.11).

/*
#cgo LDFLAGS: -lcuda -ldl
#include <cuda.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cpo_func_set_max_dynamic_smem(void* fn, int bytes) {
	return (int)cuFuncSetAttribute((CUfunction)fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
}

static int cpo_smem_optin(int ordinal) {
	CUdevice dev;
	int v = 0;
	if (cuDeviceGet(&dev, ordinal) != CUDA_SUCCESS) return 0;
	if (cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, dev) != CUDA_SUCCESS) return 0;
	return v;
}

// The cuBLAS entry points used, with their C ABI spelled in plain ints: enums are ints in
// every cuBLAS version, and these functions kept their signatures from 11 to 13.
typedef int (*cpo_create_fn)(void**);
typedef int (*cpo_destroy_fn)(void*);
typedef int (*cpo_version_fn)(void*, int*);
typedef int (*cpo_gemmex_fn)(void*, int, int, int, int, int, const void*, const void*, int, int,
                             const void*, int, int, const void*, void*, int, int, int, int);

typedef int (*cpo_gemmsb_fn)(void*, int, int, int, int, int, const void*, const void*, int, int, long long,
                             const void*, int, int, long long, const void*, void*, int, int, long long, int, int, int);

static void* cpo_blas_lib;
static void* cpo_blas_handle;
static cpo_gemmex_fn cpo_gemmex;
static cpo_gemmsb_fn cpo_gemmsb;  // cublasGemmStridedBatchedEx, NULL if absent

// cpo_blas_open loads the first library that opens and has the symbols, creates a handle
// (on the current context, default stream) and returns its version, or -1 with why in err.
// Later calls reuse the handle: a process drives one GPU.
static int cpo_blas_version = -1;

static int cpo_blas_open(const char* path, char* err, int errlen) {
	if (cpo_blas_handle) return cpo_blas_version;  // one handle per process (one GPU)
	const char* names[] = {path, "libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so", NULL};
	err[0] = 0;
	for (int i = 0; i < 5; i++) {
		if (names[i] == NULL || names[i][0] == 0) continue;
		void* lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		if (!lib) { snprintf(err, errlen, "%s", dlerror()); continue; }
		cpo_create_fn create = (cpo_create_fn)dlsym(lib, "cublasCreate_v2");
		cpo_version_fn version = (cpo_version_fn)dlsym(lib, "cublasGetVersion_v2");
		cpo_gemmex_fn gemmex = (cpo_gemmex_fn)dlsym(lib, "cublasGemmEx");
		if (!create || !version || !gemmex) { snprintf(err, errlen, "%s lacks cublasCreate_v2/cublasGemmEx", names[i]); dlclose(lib); continue; }
		void* h = NULL;
		int st = create(&h);
		if (st != 0) { snprintf(err, errlen, "%s: cublasCreate status %d", names[i], st); dlclose(lib); continue; }
		int v = 0;
		version(h, &v);
		cpo_blas_lib = lib;
		cpo_blas_handle = h;
		cpo_gemmex = gemmex;
		cpo_gemmsb = (cpo_gemmsb_fn)dlsym(lib, "cublasGemmStridedBatchedEx");
		cpo_blas_version = v;
		return v;
	}
	return -1;
}

static int cpo_blas_gemm(int opa, int opb, int m, int n, int k, float alpha, uintptr_t A, int atype, int lda,
                         uintptr_t B, int btype, int ldb, float beta, uintptr_t C, int ctype, int ldc) {
	// CUBLAS_COMPUTE_32F = 68 (float32 accumulation, no TF32), CUBLAS_GEMM_DEFAULT = -1.
	return cpo_gemmex(cpo_blas_handle, opa, opb, m, n, k, &alpha, (const void*)A, atype, lda, (const void*)B, btype, ldb,
	                  &beta, (void*)C, ctype, ldc, 68, -1);
}
static int cpo_blas_has_batched(void) { return cpo_gemmsb != NULL; }

static int cpo_blas_gemm_batched(int opa, int opb, int m, int n, int k, float alpha, uintptr_t A, int atype, int lda, long long sa,
                                 uintptr_t B, int btype, int ldb, long long sb, float beta, uintptr_t C, int ctype, int ldc,
                                 long long sc, int batch) {
	return cpo_gemmsb(cpo_blas_handle, opa, opb, m, n, k, &alpha, (const void*)A, atype, lda, sa, (const void*)B, btype, ldb, sb,
	                  &beta, (void*)C, ctype, ldc, sc, batch, 68, -1);
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gorgonia.org/cu"
)

// setMaxDynamicSmem allows fn to be launched with up to bytes of dynamic shared memory.
func setMaxDynamicSmem(fn cu.Function, bytes int) error {
	// cu.Function is a struct holding only the CUfunction handle.
	h := *(*unsafe.Pointer)(unsafe.Pointer(&fn))
	if st := C.cpo_func_set_max_dynamic_smem(h, C.int(bytes)); st != 0 {
		return fmt.Errorf("cuda: cuFuncSetAttribute(%d bytes of shared memory): CUresult %d", bytes, int(st))
	}
	return nil
}

// smemOptin is the most dynamic shared memory a block of GPU ordinal may opt in to.
func smemOptin(ordinal int) int { return int(C.cpo_smem_optin(C.int(ordinal))) }

// cuBLAS data types (cudaDataType_t).
const (
	cudaR32F  = 0
	cudaR16BF = 14
)

// blasOpen loads cuBLAS (path first when not empty) and returns its version.
func blasOpen(path string) (int, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var buf [512]C.char
	v := C.cpo_blas_open(cpath, &buf[0], C.int(len(buf)))
	if v < 0 {
		return 0, fmt.Errorf("cuda: no usable cuBLAS: %s", C.GoString(&buf[0]))
	}
	return int(v), nil
}

// blasGemm is cublasGemmEx in column-major terms with float32 accumulation.
func blasGemm(transA, transB bool, m, n, k int, alpha float32, A cu.DevicePtr, atype, lda int, B cu.DevicePtr, btype, ldb int, beta float32, Cp cu.DevicePtr, ctype, ldc int) error {
	op := func(t bool) C.int {
		if t {
			return 1
		}
		return 0
	}
	st := C.cpo_blas_gemm(op(transA), op(transB), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.uintptr_t(A), C.int(atype), C.int(lda), C.uintptr_t(B), C.int(btype), C.int(ldb),
		C.float(beta), C.uintptr_t(Cp), C.int(ctype), C.int(ldc))
	if st != 0 {
		return fmt.Errorf("cuda: cublasGemmEx(%d, %d, %d) status %d", m, n, k, int(st))
	}
	return nil
}

// blasHasBatched reports whether the loaded cuBLAS has cublasGemmStridedBatchedEx.
func blasHasBatched() bool { return C.cpo_blas_has_batched() != 0 }

// blasGemmBatched is cublasGemmStridedBatchedEx in column-major terms with float32
// accumulation: batch products, the i-th at element offsets i*sa, i*sb, i*sc.
func blasGemmBatched(transA, transB bool, m, n, k int, alpha float32, A cu.DevicePtr, atype, lda int, sa int64, B cu.DevicePtr, btype, ldb int, sb int64, beta float32, Cp cu.DevicePtr, ctype, ldc int, sc int64, batch int) error {
	op := func(t bool) C.int {
		if t {
			return 1
		}
		return 0
	}
	st := C.cpo_blas_gemm_batched(op(transA), op(transB), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.uintptr_t(A), C.int(atype), C.int(lda), C.longlong(sa), C.uintptr_t(B), C.int(btype), C.int(ldb), C.longlong(sb),
		C.float(beta), C.uintptr_t(Cp), C.int(ctype), C.int(ldc), C.longlong(sc), C.int(batch))
	if st != 0 {
		return fmt.Errorf("cuda: cublasGemmStridedBatchedEx(%d, %d, %d, batch %d) status %d", m, n, k, batch, int(st))
	}
	return nil
}
