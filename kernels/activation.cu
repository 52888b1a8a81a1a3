// activation.cu: GELU (tanh approximation, GPT-2), SwiGLU (Llama), RoPE (Llama, the
// rotate-half convention of Hugging Face) and the bias add of the matrix products.
// One thread per element; everything computed in float32.
#include "common.cuh"

#define GELU_SCALE 0.7978845608028654f  // sqrt(2/pi)

// gelu_fwd: out (n) = 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3))).
template <typename T>
__device__ void gelu_fwd_impl(T* out, const T* inp, long n) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float x = ldf(inp[i]);
  out[i] = stT<T>(0.5f * x * (1.f + tanhf(GELU_SCALE * (x + 0.044715f * x * x * x))));
}
INSTANTIATE2(gelu_fwd, (void* out, const void* inp, long n), ((T*)out, (const T*)inp, n))

// gelu_bwd writes dinp (n) = gelu'(inp) * dout (dinp may alias dout).
template <typename T>
__device__ void gelu_bwd_impl(T* dinp, const T* inp, const T* dout, long n) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float x = ldf(inp[i]);
  float th = tanhf(GELU_SCALE * (x + 0.044715f * x * x * x));
  float g = 0.5f * (1.f + th) + 0.5f * x * (1.f - th * th) * GELU_SCALE * (1.f + 3.f * 0.044715f * x * x);
  dinp[i] = stT<T>(g * ldf(dout[i]));
}
INSTANTIATE2(gelu_bwd, (void* dinp, const void* inp, const void* dout, long n), ((T*)dinp, (const T*)inp, (const T*)dout, n))

// swiglu_fwd: out (N, F) = silu(gate) * up, rows of gu (N, 2F) being [gate | up].
template <typename T>
__device__ void swiglu_fwd_impl(T* out, const T* gu, int N, int F) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)N * F) return;
  long t = i / F, j = i % F;
  float g = ldf(gu[t * 2 * F + j]), u = ldf(gu[t * 2 * F + F + j]);
  out[i] = stT<T>(g / (1.f + expf(-g)) * u);
}
INSTANTIATE2(swiglu_fwd, (void* out, const void* gu, int N, int F), ((T*)out, (const T*)gu, N, F))

// swiglu_bwd writes dgu (N, 2F), rows [dgate | dup], from dout (N, F) and the saved gu.
template <typename T>
__device__ void swiglu_bwd_impl(T* dgu, const T* gu, const T* dout, int N, int F) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)N * F) return;
  long t = i / F, j = i % F;
  float g = ldf(gu[t * 2 * F + j]), u = ldf(gu[t * 2 * F + F + j]), d = ldf(dout[i]);
  float s = 1.f / (1.f + expf(-g));
  dgu[t * 2 * F + F + j] = stT<T>(g * s * d);
  dgu[t * 2 * F + j] = stT<T>(d * u * s * (1.f + g * (1.f - s)));
}
INSTANTIATE2(swiglu_bwd, (void* dgu, const void* gu, const void* dout, int N, int F), ((T*)dgu, (const T*)gu, (const T*)dout, N, F))

// rope rotates, in place, the first nheads heads (size hd) of every row of x (N, ld) by the
// angles of pos[t]: for i < hd/2, (a, b) = (x_i, x_{i+hd/2}) ->
// (a*cos - b*sign*sin, b*cos + a*sign*sin). sign 1 is the forward pass, -1 the backward
// (inverse rotation of the gradient). cos, sin (MaxSeqLen, hd/2) float32.
template <typename T>
__device__ void rope_impl(T* x, const int* pos, const float* cosT, const float* sinT, int N, int ld, int nheads, int hd, float sign) {
  int h2 = hd / 2;
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)N * nheads * h2) return;
  int t = i / (nheads * h2), r = i % (nheads * h2), hh = r / h2, k = r % h2;
  T* v = x + (long)t * ld + hh * hd;
  float c = cosT[pos[t] * h2 + k], s = sign * sinT[pos[t] * h2 + k];
  float a = ldf(v[k]), b = ldf(v[k + h2]);
  v[k] = stT<T>(a * c - b * s);
  v[k + h2] = stT<T>(b * c + a * s);
}
INSTANTIATE2(rope, (void* x, const int* pos, const float* cosT, const float* sinT, int N, int ld, int nheads, int hd, float sign),
             ((T*)x, pos, cosT, sinT, N, ld, nheads, hd, sign))

// bias_add: out (N, OC) += bias (OC).
template <typename T>
__device__ void bias_add_impl(T* out, const T* bias, int N, int OC) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)N * OC) return;
  out[i] = stT<T>(ldf(out[i]) + ldf(bias[i % OC]));
}
INSTANTIATE2(bias_add, (void* out, const void* bias, int N, int OC), ((T*)out, (const T*)bias, N, OC))
