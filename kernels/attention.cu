// attention.cu: causal self-attention over a packed batch, flash-style: the forward pass
// streams key/value tiles through shared memory with an online softmax and keeps only the
// log-sum-exp of every row (N, NH); the backward pass recomputes the probabilities from it.
//
// qkv (N, QKV) holds in every row the NH query heads, then the NKV key heads, then the NKV
// value heads (QKV = (NH+2*NKV)*hd); query head h reads kv head h/(NH/NKV). Sequences never
// attend to each other: groups (G, 3) int32 lists, for every block of ROWS consecutive rows
// of one sequence, {first token of the sequence, its length T, first row r0 within it}.
// Grid: (G, NH) for the query-side kernels, (G, NKV) for the key-side kernel; ROWS warps
// per block, one row per warp. Within a warp, lane l scores key (or query) l of a 32-wide
// tile and owns head dimensions l, l+32, ... of the accumulators (hd <= 256).
// Scores use scale = 1/sqrt(hd); lse is the log-sum-exp of the scaled scores.
#include "common.cuh"

#define ROWS 8
#define TILE 32
#define MAXD 8  // hd/32 accumulators per lane

// loadTile copies rows [j0, j0+TILE) (those < T) of a head slice into sh (TILE, hd+1) as
// float32, zeros past T.
template <typename T>
__device__ __forceinline__ void loadTile(float* sh, const T* base, int ld, int j0, int T_, int hd) {
  for (int e = threadIdx.x; e < TILE * hd; e += blockDim.x) {
    int r = e / hd, d = e % hd;
    sh[r * (hd + 1) + d] = (j0 + r < T_) ? ldf(base[(long)(j0 + r) * ld + d]) : 0.f;
  }
}

// attn_fwd: att (N, NH*hd) = softmax(scale q.k^T, causal)·v; lse (N, NH).
// Dynamic shared memory: (2*TILE + ROWS)*(hd+1) floats.
template <typename T>
__device__ void attn_fwd_impl(T* att, float* lse, const T* qkv, const int* groups, int NH, int NKV, int hd) {
  extern __shared__ float sh[];
  float* ks = sh;
  float* vs = ks + TILE * (hd + 1);
  float* qs = vs + TILE * (hd + 1);
  int s0 = groups[3 * blockIdx.x], T_ = groups[3 * blockIdx.x + 1], r0 = groups[3 * blockIdx.x + 2];
  int h = blockIdx.y, kv = h / (NH / NKV);
  int ld = (NH + 2 * NKV) * hd, od = NH * hd;
  int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int i = r0 + w;  // this warp's query row within the sequence
  const T* base = qkv + (long)s0 * ld;
  float scale = rsqrtf((float)hd);
  for (int e = threadIdx.x; e < ROWS * hd; e += blockDim.x) {
    int r = e / hd, d = e % hd;
    qs[r * (hd + 1) + d] = (r0 + r < T_) ? ldf(base[(long)(r0 + r) * ld + h * hd + d]) : 0.f;
  }
  float acc[MAXD];
#pragma unroll
  for (int k = 0; k < MAXD; k++) acc[k] = 0.f;
  float m = -INFINITY, l = 0.f;
  int last = min(r0 + ROWS, T_);  // keys < last are visible to some row of the block
  for (int j0 = 0; j0 < last; j0 += TILE) {
    __syncthreads();
    loadTile(ks, base + (NH + kv) * hd, ld, j0, T_, hd);
    loadTile(vs, base + (NH + NKV + kv) * hd, ld, j0, T_, hd);
    __syncthreads();
    if (i >= T_) continue;
    int j = j0 + lane;
    float s = -INFINITY;
    if (j <= i) {
      float dot = 0.f;
      const float* q = qs + w * (hd + 1);
      const float* k = ks + lane * (hd + 1);
      for (int d = 0; d < hd; d++) dot += q[d] * k[d];
      s = dot * scale;
    }
    float mt = warpMax(s);
    if (mt == -INFINITY) continue;
    float mn = fmaxf(m, mt);
    float p = (j <= i) ? __expf(s - mn) : 0.f;
    float corr = __expf(m - mn);  // 0 on the first tile (m = -inf)
    l = l * corr + warpSum(p);
    m = mn;
#pragma unroll
    for (int k = 0; k < MAXD; k++) acc[k] *= corr;
    int nj = min(TILE, i - j0 + 1);
    for (int jj = 0; jj < nj; jj++) {
      float pj = __shfl_sync(0xffffffffu, p, jj);
      const float* v = vs + jj * (hd + 1);
#pragma unroll
      for (int k = 0; k < MAXD; k++) {
        int d = lane + 32 * k;
        if (d < hd) acc[k] += pj * v[d];
      }
    }
  }
  if (i >= T_) return;
  long row = s0 + i;
  float inv = 1.f / l;
#pragma unroll
  for (int k = 0; k < MAXD; k++) {
    int d = lane + 32 * k;
    if (d < hd) att[row * od + h * hd + d] = stT<T>(acc[k] * inv);
  }
  if (lane == 0) lse[row * NH + h] = m + logf(l);
}
INSTANTIATE2(attn_fwd, (void* att, float* lse, const void* qkv, const int* groups, int NH, int NKV, int hd),
             ((T*)att, lse, (const T*)qkv, groups, NH, NKV, hd))

// attn_bwd_dot: D (N, NH) = sum_d datt*att over each head's slice (one warp per row, head).
template <typename T>
__device__ void attn_bwd_dot_impl(float* D, const T* datt, const T* att, int N, int NH, int hd) {
  long wid = ((long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  if (wid >= (long)N * NH) return;
  const T* a = att + wid * hd;
  const T* d = datt + wid * hd;
  float s = 0.f;
  for (int k = lane; k < hd; k += 32) s += ldf(a[k]) * ldf(d[k]);
  s = warpSum(s);
  if (lane == 0) D[wid] = s;
}
INSTANTIATE2(attn_bwd_dot, (float* D, const void* datt, const void* att, int N, int NH, int hd),
             (D, (const T*)datt, (const T*)att, N, NH, hd))

// attn_bwd_dq writes the query part of dqkv: dq_i = scale * sum_j ds_ij k_j with
// p_ij = exp(scale q_i.k_j - lse_i), ds_ij = p_ij (datt_i.v_j - D_i), j <= i.
// Dynamic shared memory: (2*TILE + 2*ROWS)*(hd+1) floats.
template <typename T>
__device__ void attn_bwd_dq_impl(T* dqkv, const T* datt, const T* qkv, const float* lse, const float* D, const int* groups, int NH, int NKV, int hd) {
  extern __shared__ float sh[];
  float* ks = sh;
  float* vs = ks + TILE * (hd + 1);
  float* qs = vs + TILE * (hd + 1);
  float* dos = qs + ROWS * (hd + 1);
  int s0 = groups[3 * blockIdx.x], T_ = groups[3 * blockIdx.x + 1], r0 = groups[3 * blockIdx.x + 2];
  int h = blockIdx.y, kv = h / (NH / NKV);
  int ld = (NH + 2 * NKV) * hd, od = NH * hd;
  int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int i = r0 + w;
  const T* base = qkv + (long)s0 * ld;
  float scale = rsqrtf((float)hd);
  for (int e = threadIdx.x; e < ROWS * hd; e += blockDim.x) {
    int r = e / hd, d = e % hd;
    bool ok = r0 + r < T_;
    qs[r * (hd + 1) + d] = ok ? ldf(base[(long)(r0 + r) * ld + h * hd + d]) : 0.f;
    dos[r * (hd + 1) + d] = ok ? ldf(datt[(long)(s0 + r0 + r) * od + h * hd + d]) : 0.f;
  }
  float li = 0.f, Di = 0.f;
  if (i < T_) { li = lse[(long)(s0 + i) * NH + h]; Di = D[(long)(s0 + i) * NH + h]; }
  float acc[MAXD];
#pragma unroll
  for (int k = 0; k < MAXD; k++) acc[k] = 0.f;
  int last = min(r0 + ROWS, T_);
  for (int j0 = 0; j0 < last; j0 += TILE) {
    __syncthreads();
    loadTile(ks, base + (NH + kv) * hd, ld, j0, T_, hd);
    loadTile(vs, base + (NH + NKV + kv) * hd, ld, j0, T_, hd);
    __syncthreads();
    if (i >= T_ || j0 > i) continue;
    int j = j0 + lane;
    float ds = 0.f;
    if (j <= i) {
      const float* q = qs + w * (hd + 1);
      const float* o = dos + w * (hd + 1);
      const float* k = ks + lane * (hd + 1);
      const float* v = vs + lane * (hd + 1);
      float s = 0.f, dp = 0.f;
      for (int d = 0; d < hd; d++) { s += q[d] * k[d]; dp += o[d] * v[d]; }
      float p = __expf(s * scale - li);
      ds = p * (dp - Di);
    }
    int nj = min(TILE, i - j0 + 1);
    for (int jj = 0; jj < nj; jj++) {
      float dj = __shfl_sync(0xffffffffu, ds, jj);
      const float* k = ks + jj * (hd + 1);
#pragma unroll
      for (int kk = 0; kk < MAXD; kk++) {
        int d = lane + 32 * kk;
        if (d < hd) acc[kk] += dj * k[d];
      }
    }
  }
  if (i >= T_) return;
  T* dq = dqkv + (long)(s0 + i) * ld + h * hd;
#pragma unroll
  for (int kk = 0; kk < MAXD; kk++) {
    int d = lane + 32 * kk;
    if (d < hd) dq[d] = stT<T>(acc[kk] * scale);
  }
}
INSTANTIATE2(attn_bwd_dq, (void* dqkv, const void* datt, const void* qkv, const float* lse, const float* D, const int* groups, int NH, int NKV, int hd),
             ((T*)dqkv, (const T*)datt, (const T*)qkv, lse, D, groups, NH, NKV, hd))

// attn_bwd_dkdv writes the key and value parts of dqkv. Grid (G, NKV): warp w owns key row
// j = r0 + w of kv head g and sums, over the query heads of its group and the rows i >= j,
// dv_j += p_ij datt_i and dk_j += scale * ds_ij q_i. No atomics: every dk, dv row is
// written by one warp. Dynamic shared memory: (2*TILE + 2*ROWS)*(hd+1) + 2*TILE floats.
template <typename T>
__device__ void attn_bwd_dkdv_impl(T* dqkv, const T* datt, const T* qkv, const float* lse, const float* D, const int* groups, int NH, int NKV, int hd) {
  extern __shared__ float sh[];
  float* qs = sh;
  float* dos = qs + TILE * (hd + 1);
  float* kss = dos + TILE * (hd + 1);
  float* vss = kss + ROWS * (hd + 1);
  float* ls = vss + ROWS * (hd + 1);
  float* Ds = ls + TILE;
  int s0 = groups[3 * blockIdx.x], T_ = groups[3 * blockIdx.x + 1], r0 = groups[3 * blockIdx.x + 2];
  int g = blockIdx.y, G = NH / NKV;
  int ld = (NH + 2 * NKV) * hd, od = NH * hd;
  int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int j = r0 + w;
  const T* base = qkv + (long)s0 * ld;
  float scale = rsqrtf((float)hd);
  for (int e = threadIdx.x; e < ROWS * hd; e += blockDim.x) {
    int r = e / hd, d = e % hd;
    bool ok = r0 + r < T_;
    kss[r * (hd + 1) + d] = ok ? ldf(base[(long)(r0 + r) * ld + (NH + g) * hd + d]) : 0.f;
    vss[r * (hd + 1) + d] = ok ? ldf(base[(long)(r0 + r) * ld + (NH + NKV + g) * hd + d]) : 0.f;
  }
  float dk[MAXD], dv[MAXD];
#pragma unroll
  for (int k = 0; k < MAXD; k++) dk[k] = dv[k] = 0.f;
  for (int h = g * G; h < (g + 1) * G; h++) {
    for (int i0 = (r0 / TILE) * TILE; i0 < T_; i0 += TILE) {
      __syncthreads();
      loadTile(qs, base + h * hd, ld, i0, T_, hd);
      loadTile(dos, datt + (long)s0 * od + h * hd, od, i0, T_, hd);
      for (int r = threadIdx.x; r < TILE; r += blockDim.x) {
        bool ok = i0 + r < T_;
        ls[r] = ok ? lse[(long)(s0 + i0 + r) * NH + h] : 0.f;
        Ds[r] = ok ? D[(long)(s0 + i0 + r) * NH + h] : 0.f;
      }
      __syncthreads();
      if (j >= T_ || i0 + TILE - 1 < j) continue;
      int i = i0 + lane;
      float p = 0.f, ds = 0.f;
      if (i >= j && i < T_) {
        const float* q = qs + lane * (hd + 1);
        const float* o = dos + lane * (hd + 1);
        const float* k = kss + w * (hd + 1);
        const float* v = vss + w * (hd + 1);
        float s = 0.f, dp = 0.f;
        for (int d = 0; d < hd; d++) { s += q[d] * k[d]; dp += o[d] * v[d]; }
        p = __expf(s * scale - ls[lane]);
        ds = p * (dp - Ds[lane]);
      }
      int ilo = max(0, j - i0), ihi = min(TILE, T_ - i0);
      for (int ii = ilo; ii < ihi; ii++) {
        float pi = __shfl_sync(0xffffffffu, p, ii);
        float di = __shfl_sync(0xffffffffu, ds, ii);
        const float* q = qs + ii * (hd + 1);
        const float* o = dos + ii * (hd + 1);
#pragma unroll
        for (int kk = 0; kk < MAXD; kk++) {
          int d = lane + 32 * kk;
          if (d < hd) { dv[kk] += pi * o[d]; dk[kk] += di * q[d]; }
        }
      }
    }
  }
  if (j >= T_) return;
  T* dkr = dqkv + (long)(s0 + j) * ld + (NH + g) * hd;
  T* dvr = dqkv + (long)(s0 + j) * ld + (NH + NKV + g) * hd;
#pragma unroll
  for (int kk = 0; kk < MAXD; kk++) {
    int d = lane + 32 * kk;
    if (d < hd) { dkr[d] = stT<T>(dk[kk] * scale); dvr[d] = stT<T>(dv[kk]); }
  }
}
INSTANTIATE2(attn_bwd_dkdv, (void* dqkv, const void* datt, const void* qkv, const float* lse, const float* D, const int* groups, int NH, int NKV, int hd),
             ((T*)dqkv, (const T*)datt, (const T*)qkv, lse, D, groups, NH, NKV, hd))

// The kernels of the cuBLAS attention path (pkg/cuda Options.Attention "cublas"): per
// sequence of T tokens the scores of nb heads are materialised as S (nb, T, T) float32 by
// batched matrix products, and these row kernels do the softmax parts. Grid (T, nb), 256
// threads; head b of the batch is query head h0+b; lse and D are (N, NH) with the
// sequence's first token at s0.

// attn_softmax_fwd: P (nb, T, T) = causal softmax of the (already scaled) S rows,
// 0 above the diagonal; lse of every row.
template <typename T>
__device__ void attn_softmax_fwd_impl(T* P, float* lse, const float* S, int T_, int s0, int h0, int NH) {
  __shared__ float scratch[32];
  int i = blockIdx.x, b = blockIdx.y;
  const float* s = S + ((long)b * T_ + i) * T_;
  T* p = P + ((long)b * T_ + i) * T_;
  float m = -INFINITY;
  for (int j = threadIdx.x; j <= i; j += blockDim.x) m = fmaxf(m, s[j]);
  m = blockMax(m, scratch);
  float sum = 0.f;
  for (int j = threadIdx.x; j <= i; j += blockDim.x) sum += __expf(s[j] - m);
  sum = blockSum(sum, scratch);
  float l = m + logf(sum);
  for (int j = threadIdx.x; j < T_; j += blockDim.x) p[j] = stT<T>(j <= i ? __expf(s[j] - l) : 0.f);
  if (threadIdx.x == 0) lse[(long)(s0 + i) * NH + h0 + b] = l;
}
INSTANTIATE2(attn_softmax_fwd, (void* P, float* lse, const float* S, int T_, int s0, int h0, int NH),
             ((T*)P, lse, S, T_, s0, h0, NH))

// attn_probs: P (nb, T, T) = exp(S - lse) below and on the diagonal, 0 above (the
// probabilities recomputed for the backward pass from the saved lse).
template <typename T>
__device__ void attn_probs_impl(T* P, const float* S, const float* lse, int T_, int s0, int h0, int NH) {
  int i = blockIdx.x, b = blockIdx.y;
  const float* s = S + ((long)b * T_ + i) * T_;
  T* p = P + ((long)b * T_ + i) * T_;
  float l = lse[(long)(s0 + i) * NH + h0 + b];
  for (int j = threadIdx.x; j < T_; j += blockDim.x) p[j] = stT<T>(j <= i ? __expf(s[j] - l) : 0.f);
}
INSTANTIATE2(attn_probs, (void* P, const float* S, const float* lse, int T_, int s0, int h0, int NH),
             ((T*)P, S, lse, T_, s0, h0, NH))

// attn_dsoft: dS (nb, T, T) = P * (dP - D_i) below and on the diagonal, 0 above, with
// D_i = sum_d datt*att of the row (attn_bwd_dot).
template <typename T>
__device__ void attn_dsoft_impl(T* dS, const T* P, const float* dP, const float* D, int T_, int s0, int h0, int NH) {
  int i = blockIdx.x, b = blockIdx.y;
  long row = ((long)b * T_ + i) * T_;
  float Di = D[(long)(s0 + i) * NH + h0 + b];
  for (int j = threadIdx.x; j < T_; j += blockDim.x)
    dS[row + j] = stT<T>(j <= i ? ldf(P[row + j]) * (dP[row + j] - Di) : 0.f);
}
INSTANTIATE2(attn_dsoft, (void* dS, const void* P, const float* dP, const float* D, int T_, int s0, int h0, int NH),
             ((T*)dS, (const T*)P, dP, D, T_, s0, h0, NH))
