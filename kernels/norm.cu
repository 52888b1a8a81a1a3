// norm.cu: LayerNorm (GPT-2) and RMSNorm (Llama), forward and backward.
// Forward: one warp per row. Backward: each block takes rows blockIdx.x*8+warp, stepping
// by gridDim.x*8, writes the input gradient of its rows and sums the weight (and bias)
// gradients of its rows in shared memory (2*C floats of dynamic shared memory for
// LayerNorm, C for RMSNorm: past 48 KB the Go side raises the kernel's limit), then adds
// them to the float32 gradients with one atomic add per column and block.
#include "common.cuh"

// layernorm_fwd: out (N, C) = (inp - mean) * rstd * w + b; mean, rstd (N) float32 kept for
// backward. Statistics in float32 (two passes over the row).
template <typename T>
__device__ void layernorm_fwd_impl(T* out, float* mean, float* rstd, const T* inp, const T* w, const T* b, int N, int C, float eps) {
  int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;
  const T* x = inp + (long)row * C;
  float s = 0.f;
  for (int j = lane; j < C; j += 32) s += ldf(x[j]);
  float m = warpSum(s) / C;
  float ss = 0.f;
  for (int j = lane; j < C; j += 32) { float d = ldf(x[j]) - m; ss += d * d; }
  float r = rsqrtf(warpSum(ss) / C + eps);
  T* o = out + (long)row * C;
  for (int j = lane; j < C; j += 32) o[j] = stT<T>((ldf(x[j]) - m) * r * ldf(w[j]) + ldf(b[j]));
  if (lane == 0) { mean[row] = m; rstd[row] = r; }
}
INSTANTIATE2(layernorm_fwd, (void* out, float* mean, float* rstd, const void* inp, const void* w, const void* b, int N, int C, float eps),
             ((T*)out, mean, rstd, (const T*)inp, (const T*)w, (const T*)b, N, C, eps))

// layernorm_bwd ADDS into dinp (N, C) and into the float32 dw, db (C), given dout (N, C),
// inp (N, C), w (C) and the saved mean, rstd (N).
template <typename T>
__device__ void layernorm_bwd_impl(T* dinp, float* dw, float* db, const T* dout, const T* inp, const T* w, const float* mean, const float* rstd, int N, int C) {
  extern __shared__ float sh[];
  float* sdw = sh;
  float* sdb = sh + C;
  for (int j = threadIdx.x; j < 2 * C; j += blockDim.x) sh[j] = 0.f;
  __syncthreads();
  int nw = blockDim.x >> 5, lane = threadIdx.x & 31;
  for (int row = blockIdx.x * nw + (threadIdx.x >> 5); row < N; row += gridDim.x * nw) {
    const T* x = inp + (long)row * C;
    const T* d = dout + (long)row * C;
    T* di = dinp + (long)row * C;
    float m = mean[row], r = rstd[row];
    float sd = 0.f, sdn = 0.f;
    for (int j = lane; j < C; j += 32) {
      float n = (ldf(x[j]) - m) * r, dn = ldf(d[j]) * ldf(w[j]);
      sd += dn;
      sdn += dn * n;
    }
    float a = warpSum(sd) / C, bb = warpSum(sdn) / C;
    for (int j = lane; j < C; j += 32) {
      float n = (ldf(x[j]) - m) * r, dj = ldf(d[j]);
      di[j] = stT<T>(ldf(di[j]) + r * (dj * ldf(w[j]) - a - n * bb));
      atomicAdd(&sdw[j], dj * n);
      atomicAdd(&sdb[j], dj);
    }
  }
  __syncthreads();
  for (int j = threadIdx.x; j < C; j += blockDim.x) {
    atomicAdd(&dw[j], sdw[j]);
    atomicAdd(&db[j], sdb[j]);
  }
}
INSTANTIATE2(layernorm_bwd, (void* dinp, float* dw, float* db, const void* dout, const void* inp, const void* w, const float* mean, const float* rstd, int N, int C),
             ((T*)dinp, dw, db, (const T*)dout, (const T*)inp, (const T*)w, mean, rstd, N, C))

// rmsnorm_fwd: out (N, C) = inp * rstd * w, rstd = 1/sqrt(mean(inp^2) + eps) (N) kept.
template <typename T>
__device__ void rmsnorm_fwd_impl(T* out, float* rstd, const T* inp, const T* w, int N, int C, float eps) {
  int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= N) return;
  const T* x = inp + (long)row * C;
  float ss = 0.f;
  for (int j = lane; j < C; j += 32) { float v = ldf(x[j]); ss += v * v; }
  float r = rsqrtf(warpSum(ss) / C + eps);
  T* o = out + (long)row * C;
  for (int j = lane; j < C; j += 32) o[j] = stT<T>(ldf(x[j]) * r * ldf(w[j]));
  if (lane == 0) rstd[row] = r;
}
INSTANTIATE2(rmsnorm_fwd, (void* out, float* rstd, const void* inp, const void* w, int N, int C, float eps),
             ((T*)out, rstd, (const T*)inp, (const T*)w, N, C, eps))

// rmsnorm_bwd ADDS into dinp (N, C) and the float32 dw (C): with n = x*r,
// dx = r*(dn - n*mean(dn*n)), dn = dout*w; dw += dout*n.
template <typename T>
__device__ void rmsnorm_bwd_impl(T* dinp, float* dw, const T* dout, const T* inp, const T* w, const float* rstd, int N, int C) {
  extern __shared__ float sdw[];
  for (int j = threadIdx.x; j < C; j += blockDim.x) sdw[j] = 0.f;
  __syncthreads();
  int nw = blockDim.x >> 5, lane = threadIdx.x & 31;
  for (int row = blockIdx.x * nw + (threadIdx.x >> 5); row < N; row += gridDim.x * nw) {
    const T* x = inp + (long)row * C;
    const T* d = dout + (long)row * C;
    T* di = dinp + (long)row * C;
    float r = rstd[row];
    float sdn = 0.f;
    for (int j = lane; j < C; j += 32) sdn += ldf(d[j]) * ldf(w[j]) * ldf(x[j]) * r;
    float bb = warpSum(sdn) / C;
    for (int j = lane; j < C; j += 32) {
      float n = ldf(x[j]) * r, dj = ldf(d[j]);
      di[j] = stT<T>(ldf(di[j]) + r * (dj * ldf(w[j]) - n * bb));
      atomicAdd(&sdw[j], dj * n);
    }
  }
  __syncthreads();
  for (int j = threadIdx.x; j < C; j += blockDim.x) atomicAdd(&dw[j], sdw[j]);
}
INSTANTIATE2(rmsnorm_bwd, (void* dinp, float* dw, const void* dout, const void* inp, const void* w, const float* rstd, int N, int C),
             ((T*)dinp, dw, (const T*)dout, (const T*)inp, (const T*)w, rstd, N, C))
