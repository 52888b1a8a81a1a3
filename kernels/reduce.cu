// reduce.cu: reductions. The global gradient norm is a two-pass sum of squares in float64
// with a fixed order (per-block partials, then one block over the partials), so it does
// not depend on scheduling. colsum adds the column sums of a (N, C) matrix (bias
// gradients). sum adds up a float32 vector (losses, checks).
#include "common.cuh"

// sumsq_partial: partial[b] = sum of x[i]^2 over the grid-stride range of block b
// (float64). blockDim.x = 256.
extern "C" __global__ void sumsq_partial(double* partial, const float* x, long n) {
  __shared__ double sh[256];
  double s = 0;
  for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
    double v = x[i];
    s += v * v;
  }
  sh[threadIdx.x] = s;
  __syncthreads();
  for (int o = blockDim.x / 2; o > 0; o >>= 1) {
    if (threadIdx.x < o) sh[threadIdx.x] += sh[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = sh[0];
}

// sum_f64: out[0] = sum of x (n) in float64, one block of 256 threads.
extern "C" __global__ void sum_f64(double* out, const double* x, int n) {
  __shared__ double sh[256];
  double s = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
  sh[threadIdx.x] = s;
  __syncthreads();
  for (int o = blockDim.x / 2; o > 0; o >>= 1) {
    if (threadIdx.x < o) sh[threadIdx.x] += sh[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = sh[0];
}

// sum_f32: out[0] = sum of x (n) float32 values, accumulated in float64, one block of 256.
extern "C" __global__ void sum_f32(double* out, const float* x, long n) {
  __shared__ double sh[256];
  double s = 0;
  for (long i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
  sh[threadIdx.x] = s;
  __syncthreads();
  for (int o = blockDim.x / 2; o > 0; o >>= 1) {
    if (threadIdx.x < o) sh[threadIdx.x] += sh[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = sh[0];
}

// colsum ADDS the column sums of x (N, C) into the float32 dst (C). Block (32, 8): column
// blockIdx.x*32+threadIdx.x, rows threadIdx.y stepping by 8, then a sum over threadIdx.y.
template <typename T>
__device__ void colsum_impl(float* dst, const T* x, int N, int C) {
  __shared__ float sh[8][33];
  int j = blockIdx.x * 32 + threadIdx.x;
  float s = 0.f;
  if (j < C)
    for (int t = threadIdx.y; t < N; t += 8) s += ldf(x[(long)t * C + j]);
  sh[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && j < C) {
    float tot = 0.f;
    for (int r = 0; r < 8; r++) tot += sh[r][threadIdx.x];
    dst[j] += tot;
  }
}
INSTANTIATE2(colsum, (float* dst, const void* x, int N, int C), (dst, (const T*)x, N, C))
