// embedding.cu: token (+ GPT-2 position) embeddings, forward and backward.
#include "common.cuh"

// encoder_fwd: out (N, C) = wte[tokens[t]] + wpe[pos[t]]; wpe may be null (Llama).
// tokens, pos (N) int32; wte (V, C), wpe (MaxSeqLen, C). One thread per element.
template <typename T>
__device__ void encoder_fwd_impl(T* out, const int* tokens, const int* pos, const T* wte, const T* wpe, int N, int C) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)N * C) return;
  int t = i / C, j = i % C;
  float v = ldf(wte[(long)tokens[t] * C + j]);
  if (wpe) v += ldf(wpe[(long)pos[t] * C + j]);
  out[i] = stT<T>(v);
}
INSTANTIATE2(encoder_fwd, (void* out, const int* tokens, const int* pos, const void* wte, const void* wpe, int N, int C),
             ((T*)out, tokens, pos, (const T*)wte, (const T*)wpe, N, C))

// encoder_bwd ADDS dout (N, C) into the float32 gradients dwte (V, C) at rows tokens[t]
// and dwpe (MaxSeqLen, C) at rows pos[t] (dwpe null for Llama), with atomic adds: the
// order of the additions, and so the last bits, may differ between runs.
template <typename T>
__device__ void encoder_bwd_impl(float* dwte, float* dwpe, const T* dout, const int* tokens, const int* pos, int N, int C) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long)N * C) return;
  int t = i / C, j = i % C;
  float d = ldf(dout[i]);
  atomicAdd(&dwte[(long)tokens[t] * C + j], d);
  if (dwpe) atomicAdd(&dwpe[(long)pos[t] * C + j], d);
}
INSTANTIATE2(encoder_bwd, (float* dwte, float* dwpe, const void* dout, const int* tokens, const int* pos, int N, int C),
             (dwte, dwpe, (const T*)dout, tokens, pos, N, C))
