// common.cuh: helpers shared by every kernel family (included, never compiled alone).
//
// Storage types: activations and the weight copy used by the forward pass are T, either
// float or __nv_bfloat16 (bf16 storage); every sum is accumulated in float32; parameter
// gradients, optimizer moments and master weights are always float32.
// Shape letters as in pkg/model: N packed tokens, C channels, V vocabulary, NH query heads,
// NKV key/value heads, hd head size, F feed-forward width.
#pragma once
#include <cuda_bf16.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float ldf(float x) { return x; }
__device__ __forceinline__ float ldf(bf16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T stT(float x);
template <> __device__ __forceinline__ float stT<float>(float x) { return x; }
template <> __device__ __forceinline__ bf16 stT<bf16>(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float warpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// blockSum reduces v over the block (blockDim.x a multiple of 32, at most 1024); every
// thread gets the total. scratch holds 32 floats of shared memory.
__device__ __forceinline__ float blockSum(float v, float* scratch) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warpSum(v);
  __syncthreads();
  if (lane == 0) scratch[w] = v;
  __syncthreads();
  v = lane < nw ? scratch[lane] : 0.f;
  return warpSum(v);
}

__device__ __forceinline__ float blockMax(float v, float* scratch) {
  int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warpMax(v);
  __syncthreads();
  if (lane == 0) scratch[w] = v;
  __syncthreads();
  v = lane < nw ? scratch[lane] : -INFINITY;
  return warpMax(v);
}

// Every kernel is a template name_impl<T> instantiated for both storage types under the C
// names name_f32 and name_bf16, which the Go side looks up by dtype. The C signatures
// take T-typed buffers as void*; args casts them with (T*) (T is typedef'd in each body).
#define INSTANTIATE2(name, params, args)                                              \
  extern "C" __global__ void name##_f32 params { typedef float T; name##_impl<T> args; } \
  extern "C" __global__ void name##_bf16 params { typedef bf16 T; name##_impl<T> args; }
