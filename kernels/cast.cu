// cast.cu: conversions between float32 and bf16 storage (round to nearest even).
#include "common.cuh"

// f32_to_bf16: dst (n) = bf16(src).
extern "C" __global__ void f32_to_bf16(bf16* dst, const float* src, long n) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = __float2bfloat16_rn(src[i]);
}

// bf16_to_f32: dst (n) = float(src).
extern "C" __global__ void bf16_to_f32(float* dst, const bf16* src, long n) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = __bfloat162float(src[i]);
}
