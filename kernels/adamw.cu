// adamw.cu: the AdamW update on float32 master weights, as torch.optim.AdamW (and
// pkg/optim) computes it, in float32:
//   g = grad*gscale (gscale: gradient clipping); p *= decay (decay = 1 - lr*wd, or 1);
//   m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g; p -= stepSize * m/(sqrt(v)/bc2sqrt + eps)
// with stepSize = lr/(1-b1^t), bc2sqrt = sqrt(1-b2^t). When copy is not null, the updated
// weight is also stored there in T (the bf16 copy the forward pass reads).
#include "common.cuh"

template <typename T>
__device__ void adamw_impl(float* p, T* copy, const float* grad, float* m, float* v, long n, float gscale, float decay,
                           float b1, float b2, float a1, float a2, float bc2sqrt, float eps, float stepSize) {
  long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float x = p[i] * decay;
  float g = grad[i] * gscale;
  float mi = m[i] * b1 + a1 * g;
  float vi = v[i] * b2 + a2 * g * g;
  m[i] = mi;
  v[i] = vi;
  float denom = sqrtf(vi) / bc2sqrt + eps;
  x = x - stepSize * (mi / denom);
  p[i] = x;
  if (copy) copy[i] = stT<T>(x);
}
INSTANTIATE2(adamw, (float* p, void* copy, const float* grad, float* m, float* v, long n, float gscale, float decay,
                     float b1, float b2, float a1, float a2, float bc2sqrt, float eps, float stepSize),
             (p, (T*)copy, grad, m, v, n, gscale, decay, b1, b2, a1, a2, bc2sqrt, eps, stepSize))
