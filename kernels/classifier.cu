// classifier.cu: the fused softmax-cross-entropy over the vocabulary. The forward pass
// yields, for every packed position, the log-probability of its target (what the CPO and
// MLE objectives consume); the backward pass takes dlogp and writes dlogits in place of the
// logits. One block per row; sums in float32.
#include "common.cuh"

// logprob_fwd: for every row t of logits (N, V) with target[t] >= 0,
// lse[t] = log sum_v exp(logits[t,v]) and logp[t] = logits[t,target[t]] - lse[t];
// rows with target[t] < 0 (sequence ends) get 0 in both.
template <typename T>
__device__ void logprob_fwd_impl(float* logp, float* lse, const T* logits, const int* target, int N, int V) {
  __shared__ float scratch[32];
  int t = blockIdx.x;
  if (t >= N) return;
  int tg = target[t];
  if (tg < 0) {
    if (threadIdx.x == 0) { logp[t] = 0.f; lse[t] = 0.f; }
    return;
  }
  const T* row = logits + (long)t * V;
  float m = -INFINITY, s = 0.f;  // online max and sum per thread
  for (int j = threadIdx.x; j < V; j += blockDim.x) {
    float x = ldf(row[j]);
    if (x > m) { s = s * __expf(m - x) + 1.f; m = x; } else { s += __expf(x - m); }
  }
  float M = blockMax(m, scratch);
  float S = blockSum(m == -INFINITY ? 0.f : s * __expf(m - M), scratch);
  if (threadIdx.x == 0) {
    float l = M + logf(S);
    lse[t] = l;
    logp[t] = ldf(row[tg]) - l;
  }
}
INSTANTIATE2(logprob_fwd, (float* logp, float* lse, const void* logits, const int* target, int N, int V),
             (logp, lse, (const T*)logits, target, N, V))

// logprob_bwd overwrites logits (N, V) with dlogits = dlogp[t]*(onehot(target[t]) -
// softmax(logits[t])) using the saved lse (N); rows with target < 0 or dlogp 0 become 0.
template <typename T>
__device__ void logprob_bwd_impl(T* logits, const float* lse, const float* dlogp, const int* target, int N, int V) {
  int t = blockIdx.x;
  if (t >= N) return;
  T* row = logits + (long)t * V;
  int tg = target[t];
  float d = dlogp[t];
  if (tg < 0 || d == 0.f) {
    for (int j = threadIdx.x; j < V; j += blockDim.x) row[j] = stT<T>(0.f);
    return;
  }
  float l = lse[t];
  for (int j = threadIdx.x; j < V; j += blockDim.x) {
    float g = -d * __expf(ldf(row[j]) - l);
    if (j == tg) g += d;
    row[j] = stT<T>(g);
  }
}
INSTANTIATE2(logprob_bwd, (void* logits, const float* lse, const float* dlogp, const int* target, int N, int V),
             ((T*)logits, lse, dlogp, target, N, V))
