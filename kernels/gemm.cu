// gemm.cu: our own matrix products, the fallback when no cuBLAS library can be loaded and
// the reference the cuBLAS path is checked against. Row-major, like pkg/gemm.Sgemm:
//   C (M, N) = alpha * op(A) (M, K) · op(B) (K, N) + beta * C
// where op(A) = A (M, K) with leading dimension lda, or with transA A^T of a stored
// (K, M); likewise B (K, N) or, with transB, B^T of a stored (N, K). beta 0 never reads C.
//  - gemm_f32: float32 SIMT kernel, 64x64 tiles, 256 threads of 4x4 outputs.
//  - gemm_bf16 / gemm_bf16_f32: bf16 inputs on the tensor cores (wmma 16x16x16, mma.sync
//    underneath, sm_80+) with float32 accumulation, 64x64 tiles of 4 warps; the output is
//    bf16 or float32 (the float32 gradient arena).
#include "common.cuh"
#include <mma.h>
using namespace nvcuda;

template <typename T>
__device__ __forceinline__ float loadA(const T* A, int lda, int transA, int M, int K, int m, int k) {
  if (m >= M || k >= K) return 0.f;
  return ldf(transA ? A[(long)k * lda + m] : A[(long)m * lda + k]);
}
template <typename T>
__device__ __forceinline__ float loadB(const T* B, int ldb, int transB, int K, int N, int k, int n) {
  if (n >= N || k >= K) return 0.f;
  return ldf(transB ? B[(long)n * ldb + k] : B[(long)k * ldb + n]);
}

extern "C" __global__ void gemm_f32(int transA, int transB, int M, int N, int K, float alpha, const float* A, int lda,
                                    const float* B, int ldb, float beta, float* C, int ldc) {
  __shared__ float As[16][64 + 1];  // As[k][m]
  __shared__ float Bs[16][64 + 1];  // Bs[k][n]
  int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  int m0 = blockIdx.y * 64, n0 = blockIdx.x * 64;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += 16) {
    for (int e = threadIdx.x; e < 16 * 64; e += 256) {
      int kk = e / 64, r = e % 64;
      As[kk][r] = loadA(A, lda, transA, M, K, m0 + r, k0 + kk);
      Bs[kk][r] = loadB(B, ldb, transB, K, N, k0 + kk, n0 + r);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < 16; kk++) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; i++) { a[i] = As[kk][ty + 16 * i]; b[i] = Bs[kk][tx + 16 * i]; }
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int j = 0; j < 4; j++) {
      int m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
      if (m < M && n < N) {
        float v = alpha * acc[i][j];
        if (beta != 0.f) v += beta * C[(long)m * ldc + n];
        C[(long)m * ldc + n] = v;
      }
    }
}

template <typename TC>
__device__ void gemm_tc_impl(int transA, int transB, int M, int N, int K, float alpha, const bf16* A, int lda,
                             const bf16* B, int ldb, float beta, TC* C, int ldc) {
  __shared__ __align__(32) bf16 As[64][32 + 8];  // As[m][k]
  __shared__ __align__(32) bf16 Bs[32][64 + 8];  // Bs[k][n]
  __shared__ __align__(32) float Cs[64][64 + 4];
  int warp = threadIdx.x / 32;
  int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
  int m0 = blockIdx.y * 64, n0 = blockIdx.x * 64;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);
  for (int k0 = 0; k0 < K; k0 += 32) {
    for (int e = threadIdx.x; e < 64 * 32; e += blockDim.x) {
      int r = e / 32, kk = e % 32;  // A: row r, k kk
      As[r][kk] = __float2bfloat16_rn(loadA(A, lda, transA, M, K, m0 + r, k0 + kk));
      int kb = e / 64, c = e % 64;  // B: k kb, column c
      Bs[kb][c] = __float2bfloat16_rn(loadB(B, ldb, transB, K, N, k0 + kb, n0 + c));
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < 32; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fb[2];
#pragma unroll
      for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], &As[wm + 16 * i][kk], 32 + 8);
#pragma unroll
      for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], &Bs[kk][wn + 16 * j], 64 + 8);
#pragma unroll
      for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 2; j++)
      wmma::store_matrix_sync(&Cs[wm + 16 * i][wn + 16 * j], acc[i][j], 64 + 4, wmma::mem_row_major);
  __syncthreads();
  for (int e = threadIdx.x; e < 64 * 64; e += blockDim.x) {
    int r = e / 64, c = e % 64, m = m0 + r, n = n0 + c;
    if (m < M && n < N) {
      float v = alpha * Cs[r][c];
      if (beta != 0.f) v += beta * ldf(C[(long)m * ldc + n]);
      C[(long)m * ldc + n] = stT<TC>(v);
    }
  }
}

extern "C" __global__ void gemm_bf16(int transA, int transB, int M, int N, int K, float alpha, const bf16* A, int lda,
                                     const bf16* B, int ldb, float beta, bf16* C, int ldc) {
  gemm_tc_impl<bf16>(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

extern "C" __global__ void gemm_bf16_f32(int transA, int transB, int M, int N, int K, float alpha, const bf16* A, int lda,
                                         const bf16* B, int ldb, float beta, float* C, int ldc) {
  gemm_tc_impl<float>(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
