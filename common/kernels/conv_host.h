// conv_host.h - portable (host / scalar) convolution engine shared by the kernels.
//
// Not used on the AIE: every kernel file has its own AIE API path under
// __AIENGINE__. On the host the kernels reduce to one operation:
//
//   acc[x][oc] = bias[oc] + sum_{ky,kx,ic} row_ky[x + kx][ic] * w[oc][ic][ky][kx]
//
// computed as register tiles of XT output columns x OCB output channels, with the
// OCB-wide output channel block innermost (the OIYXI8O8 [8 in][8 out] order), so the
// compiler vectorizes acc[t][0..OCB) += in * w[ic][0..OCB) (-O3 -march=native).
// Per call the weights of the requested output channels are widened once to int32
// [OC/OCB][KY][KX][IC][OCB] and the input rows to int32 [W + 2*pad][IC] with zero
// columns for the left/right padding, so the hot loop has no bounds checks.
// Scratch buffers are thread_local, so concurrent calls from several threads are safe.
#pragma once
#if !defined(__AIENGINE__)
#include <cstdint>
#include <cstring>
#include <vector>

#include "requant.h"

namespace npu_host {

struct Scratch {
  std::vector<int32_t> w, rows, acc;
};

inline Scratch &scratch() {
  static thread_local Scratch s;
  return s;
}

// int32 little-endian bias entry `oc` of a blob whose bias starts at `bias_base`.
inline int32_t load_bias(const int8_t *bias_base, int oc) {
  int32_t v;
  std::memcpy(&v, bias_base + 4 * oc, 4);  // host is little-endian (x86/arm64)
  return v;
}

// Widen OIYXI8O8 weights of output channels [oc0, oc0 + noc) to int32
// dst[(noc/OCB)][KY][KX][IC][OCB]. IC, oc0, noc multiples of 8; noc of OCB.
// Walks the source in memory order, 8 contiguous output channels at a time.
template <int OCB>
void expand_weights(const int8_t *w, int IC, int KY, int KX, int oc0, int noc, int32_t *dst) {
  const int IB = IC / 8, taps = KY * KX;
  for (int o8 = 0; o8 < noc / 8; ++o8) {
    const int ob = o8 / (OCB / 8), lane0 = (o8 % (OCB / 8)) * 8;
    const int8_t *src = w + (size_t)(oc0 / 8 + o8) * IB * taps * 64;
    for (int ib = 0; ib < IB; ++ib)
      for (int tap = 0; tap < taps; ++tap)
        for (int i = 0; i < 8; ++i, src += 8) {
          int32_t *d = dst + (((size_t)ob * taps + tap) * IC + ib * 8 + i) * OCB + lane0;
          for (int o = 0; o < 8; ++o) d[o] = src[o];
        }
  }
}

// Row [C/8][W][8] of T -> int32 dst[W + 2*pad][ld] (channels at dst[..][0..C)),
// pad zero columns on each side. ld >= C is the channel stride of dst (ld = C unless
// several inputs are concatenated along channels).
template <typename T>
void load_row(const T *src, int W, int C, int pad, int32_t *dst, int ld) {
  std::memset(dst, 0, sizeof(int32_t) * (size_t)pad * ld);
  std::memset(dst + (size_t)(W + pad) * ld, 0, sizeof(int32_t) * (size_t)pad * ld);
  for (int cb = 0; cb < C / 8; ++cb)
    for (int x = 0; x < W; ++x)
      for (int i = 0; i < 8; ++i)
        dst[(size_t)(x + pad) * ld + cb * 8 + i] = src[((size_t)cb * W + x) * 8 + i];
}

// OCB int32 lanes as a GCC/Clang generic vector (lowered to AVX-512/AVX2/NEON or to
// scalar code by the compiler; no intrinsics).
template <int OCB> struct LaneVec {
  typedef int32_t type __attribute__((vector_size(OCB * 4)));
};

// One XT x OCB register tile starting at output column x0:
// a[t][0..OCB) += in[x0 + t + kx][ic] * w[ky][kx][ic][0..OCB), added to acc, which
// points at (channel block, column x0) of an accumulator in output row layout
// [C/8][Wout][8].
template <int XT, int OCB>
static inline void conv_tile(const int32_t *const *rows, int KY, int KX, int IC, int x0,
                             const int32_t *wblk, int32_t *acc, int Wout) {
  typedef typename LaneVec<OCB>::type V;
  V a[XT];
  for (int t = 0; t < XT; ++t) a[t] = V{};
  for (int ky = 0; ky < KY; ++ky) {
    if (!rows[ky]) continue;  // zero padding row contributes nothing
    for (int kx = 0; kx < KX; ++kx) {
      const int32_t *in = rows[ky] + (size_t)(x0 + kx) * IC;
      const int32_t *wk = wblk + (size_t)(ky * KX + kx) * IC * OCB;
      for (int ic = 0; ic < IC; ++ic) {
        V wv;
        std::memcpy(&wv, wk + (size_t)ic * OCB, sizeof(V));
#pragma GCC unroll 16
        for (int t = 0; t < XT; ++t) a[t] += in[(size_t)t * IC + ic] * wv;
      }
    }
  }
  for (int t = 0; t < XT; ++t)
    for (int o = 0; o < OCB; ++o) acc[((size_t)(o / 8) * Wout + t) * 8 + o % 8] += a[t][o];
}

// acc[noc/8][Wout][8] (int32, bias preloaded by the caller) += convolution of the rows.
// rows[ky]: int32 [Wout + KX - 1][IC] (already padded) or nullptr for a zero row.
template <int OCB>
void conv_accumulate_ocb(const int32_t *const *rows, int KY, int KX, int IC, int Wout,
                         const int32_t *wexp, int noc, int32_t *acc) {
  constexpr int XT = 8;
  const size_t wblk_size = (size_t)KY * KX * IC * OCB;
  for (int ob = 0; ob < noc / OCB; ++ob) {
    const int32_t *wblk = wexp + ob * wblk_size;
    int32_t *accb = acc + (size_t)ob * (OCB / 8) * Wout * 8;
    int x = 0;
    for (; x + XT <= Wout; x += XT)
      conv_tile<XT, OCB>(rows, KY, KX, IC, x, wblk, accb + (size_t)x * 8, Wout);
    for (; x < Wout; ++x)
      conv_tile<1, OCB>(rows, KY, KX, IC, x, wblk, accb + (size_t)x * 8, Wout);
  }
}

// Full driver: bias + weights of output channels [oc0, oc0+noc) from a blob with
// OC_total output channels, rows given as int32 padded rows; result acc in output row
// layout [noc/8][Wout][8] (bias included).
inline void conv_rows(const int32_t *const *rows, int KY, int KX, int IC, int Wout,
                      const int8_t *params, int OC_total, int oc0, int noc, int32_t *acc) {
  Scratch &s = scratch();
  const bool wide = (noc % 16) == 0;
  s.w.resize((size_t)noc * KY * KX * IC);
  if (wide)
    expand_weights<16>(params, IC, KY, KX, oc0, noc, s.w.data());
  else
    expand_weights<8>(params, IC, KY, KX, oc0, noc, s.w.data());
  const int8_t *bias = params + (size_t)OC_total * IC * KY * KX;
  for (int o8 = 0; o8 < noc / 8; ++o8)
    for (int x = 0; x < Wout; ++x)
      for (int i = 0; i < 8; ++i)
        acc[((size_t)o8 * Wout + x) * 8 + i] = load_bias(bias, oc0 + o8 * 8 + i);
  if (wide)
    conv_accumulate_ocb<16>(rows, KY, KX, IC, Wout, s.w.data(), noc, acc);
  else
    conv_accumulate_ocb<8>(rows, KY, KX, IC, Wout, s.w.data(), noc, acc);
}

// Requantize an accumulator row [C/8][W][8] into an output row of TO (same layout).
template <typename TO>
void store_row(const int32_t *acc, int W, int C, int32_t shift, int32_t rounding, TO *out) {
  npu_srs_block(acc, out, (size_t)W * C, shift, rounding, NpuRange<TO>::lo, NpuRange<TO>::hi);
}

}  // namespace npu_host
#endif  // !__AIENGINE__
