// conv_host.h - host (x86/arm64) convolution engine shared by the kernels.
//
// Not used on the AIE: every kernel file has its own AIE API path under
// __AIENGINE__. On the host the kernels reduce to one operation:
//
//   acc[x][oc] = bias[oc] + sum_{ky,kx,ic} row_ky[x + kx][ic] * w[oc][ic][ky][kx]
//
// Input rows are staged as bytes [W + 2*pad][IC] (channels innermost). int8 inputs are
// stored offset by +128 (x ^ 0x80, so the zero padding of an int8 row is 0x80) and the
// engine subtracts 128 * sum(w) per present kernel row afterwards: one unsigned x signed
// product path serves both input types. All int32 arithmetic wraps (like the AIE
// accumulator); exact whenever the true sum fits int32, which the kernels' contract
// requires.
//
// Two inner engines, chosen at compile time, same results bit for bit:
//  * AVX-512 VNNI (when the compiler targets it, -march=native on such a CPU):
//    vpdpbusd adds 4 uint8 x int8 products per int32 lane; tiles of 8 output columns x
//    32 output channels. Weights packed [OC/16][KY][KX][IC/4][16 oc][4 ic].
//  * portable (any other CPU, or -DNPU_HOST_PORTABLE): GCC/Clang generic vectors of
//    16 uint32 lanes. Weights packed [OC/16][KY][KX][IC][16 oc].
// Packed weights are cached per thread (least recently used of kCacheEntries), keyed by
// the blob address and shape and validated with a byte compare of the source weights,
// so a changed blob at the same address is repacked.
// Scratch buffers and the cache are thread_local: concurrent calls from threads are safe.
// Everything below has internal linkage (unnamed namespace): each translation unit, and
// so each build variant loaded into one process, keeps its own cache and scratch. With
// external linkage the static locals of these inline functions became process-wide
// STB_GNU_UNIQUE symbols, and a second variant (whose packed layout differs) read the
// first one's packed weights.
#pragma once
#if !defined(__AIENGINE__)
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "requant.h"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && !defined(NPU_HOST_PORTABLE)
#define NPU_HOST_VNNI 1
#define NPU_HOST_ENGINE_NAME "avx512-vnni"
#include <immintrin.h>
#else
#define NPU_HOST_ENGINE_NAME "portable"
#endif

namespace npu_host {
namespace {

constexpr int kOcBlock = 16;     // output channels per packed weight block / vector
constexpr int kCacheEntries = 24;

struct Scratch {
  std::vector<uint8_t> rows;
  std::vector<int32_t> acc, acc16;
};

inline Scratch &scratch() {
  static thread_local Scratch s;
  return s;
}

// The staged byte of an input element: uint8 as is, int8 offset by +128.
template <typename T>
inline uint8_t stage_byte(T v) {
  return std::is_signed<T>::value ? (uint8_t)((uint8_t)v ^ 0x80u) : (uint8_t)v;
}

// Row [C/8][W][8] of T -> bytes dst[W + 2*pad][ld] (channels at dst[..][0..C)), pad
// columns of staged zeros on each side. ld >= C is the channel stride of dst (ld = C
// unless several inputs are concatenated along channels).
template <typename T>
void load_row(const T *src, int W, int C, int pad, uint8_t *dst, int ld) {
  const uint8_t zero = stage_byte<T>(0);
  std::memset(dst, zero, (size_t)pad * ld);
  std::memset(dst + (size_t)(W + pad) * ld, zero, (size_t)pad * ld);
  for (int cb = 0; cb < C / 8; ++cb)
    for (int x = 0; x < W; ++x)
      for (int i = 0; i < 8; ++i)
        dst[(size_t)(x + pad) * ld + cb * 8 + i] = stage_byte(src[((size_t)cb * W + x) * 8 + i]);
}

// int32 little-endian bias entry `oc` of a blob whose bias starts at `bias_base`.
inline int32_t load_bias(const int8_t *bias_base, int oc) {
  int32_t v;
  std::memcpy(&v, bias_base + 4 * oc, 4);  // host is little-endian (x86/arm64)
  return v;
}

// Weights of output channels [oc0, oc0 + noc) repacked for the engine.
struct Packed {
  const int8_t *src = nullptr;
  size_t nbytes = 0;
  int IC = 0, KY = 0, KX = 0;
  unsigned long long used = 0;
  std::vector<int8_t> copy;     // the source bytes this packing was made from
  std::vector<int8_t> w;        // packed, output channels padded to kOcBlock
  std::vector<int32_t> wsum;    // [KY][noc16]: sum over kx, ic of w (int8 input offset)
};

// Index of weight (ocl, ic, ky, kx) in the packed layout; ocl relative to oc0.
inline size_t packed_index(int ocl, int ic, int ky, int kx, int IC, int KY, int KX) {
  const size_t blk = (size_t)ocl / kOcBlock, lane = (size_t)ocl % kOcBlock;
  const size_t tap = (size_t)(blk * KY + ky) * KX + kx;
#if defined(NPU_HOST_VNNI)
  return ((tap * (IC / 4) + ic / 4) * kOcBlock + lane) * 4 + ic % 4;
#else
  return (tap * IC + ic) * kOcBlock + lane;
#endif
}

// Packed weights of output channels [oc0, oc0+noc) of an OIYXI8O8 blob (IC, KY, KX).
// OIYXI8O8 keeps each group of 8 output channels contiguous, so the source is the byte
// range [oc0 * IC*KY*KX, (oc0+noc) * IC*KY*KX).
inline const Packed &packed_weights(const int8_t *params, int IC, int KY, int KX, int oc0,
                                    int noc) {
  static thread_local std::vector<Packed> cache(kCacheEntries);
  static thread_local unsigned long long clock = 0;
  const size_t taps = (size_t)KY * KX;
  const int8_t *src = params + (size_t)oc0 * IC * taps;
  const size_t nbytes = (size_t)noc * IC * taps;
  Packed *lru = &cache[0];
  for (Packed &e : cache) {
    if (e.src == src && e.nbytes == nbytes && e.IC == IC && e.KY == KY && e.KX == KX &&
        std::memcmp(e.copy.data(), src, nbytes) == 0) {
      e.used = ++clock;
      return e;
    }
    if (e.used < lru->used) lru = &e;
  }
  Packed &e = *lru;
  const int noc16 = (noc + kOcBlock - 1) / kOcBlock * kOcBlock;
  e.src = src;
  e.nbytes = nbytes;
  e.IC = IC;
  e.KY = KY;
  e.KX = KX;
  e.used = ++clock;
  e.copy.assign(src, src + nbytes);
  e.w.assign((size_t)noc16 * IC * taps, 0);
  e.wsum.assign((size_t)KY * noc16, 0);
  const int IB = IC / 8;
  for (int o8 = 0; o8 < noc / 8; ++o8)
    for (int ib = 0; ib < IB; ++ib)
      for (int ky = 0; ky < KY; ++ky)
        for (int kx = 0; kx < KX; ++kx) {
          const int8_t *blk = src + (((size_t)o8 * IB + ib) * taps + ky * KX + kx) * 64;
          for (int i = 0; i < 8; ++i)
            for (int o = 0; o < 8; ++o) {
              const int ocl = o8 * 8 + o, ic = ib * 8 + i;
              const int8_t v = blk[i * 8 + o];
              e.w[packed_index(ocl, ic, ky, kx, IC, KY, KX)] = v;
              e.wsum[(size_t)ky * noc16 + ocl] += v;
            }
        }
  return e;
}

// Accumulator rows in output row layout [C/8][Wout][8]: a 16-channel block b of column x
// is acc[(2b)*Wout + x][0..8) followed by acc[(2b+1)*Wout + x][0..8).
#if defined(NPU_HOST_VNNI)
// XT columns x NB 16-channel blocks. wp: packed weights of the first block; blk: bytes
// per block; acc: accumulator of the first block's first channel, column 0.
template <int XT, int NB>
static inline void engine_tile(const uint8_t *const *rows, int KY, int KX, int IC, int x0,
                               const int8_t *wp, size_t blk, int32_t *acc, int Wout) {
  __m512i a[XT][NB];
  for (int t = 0; t < XT; ++t)
    for (int b = 0; b < NB; ++b) {
      const int32_t *lo = acc + ((size_t)(2 * b) * Wout + x0 + t) * 8;
      const int32_t *hi = lo + (size_t)Wout * 8;
      a[t][b] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)lo)),
                                   _mm256_loadu_si256((const __m256i *)hi), 1);
    }
  const int IC4 = IC / 4;
  for (int ky = 0; ky < KY; ++ky) {
    if (!rows[ky]) continue;  // zero padding row contributes nothing
    for (int kx = 0; kx < KX; ++kx) {
      const uint8_t *in = rows[ky] + (size_t)(x0 + kx) * IC;
      const int8_t *wk = wp + (size_t)(ky * KX + kx) * IC4 * 64;
      for (int c = 0; c < IC4; ++c) {
        __m512i w[NB];
        for (int b = 0; b < NB; ++b) w[b] = _mm512_loadu_si512(wk + b * blk + (size_t)c * 64);
#pragma GCC unroll 8
        for (int t = 0; t < XT; ++t) {
          int32_t q;
          std::memcpy(&q, in + (size_t)t * IC + c * 4, 4);
          const __m512i v = _mm512_set1_epi32(q);
          for (int b = 0; b < NB; ++b) a[t][b] = _mm512_dpbusd_epi32(a[t][b], v, w[b]);
        }
      }
    }
  }
  for (int t = 0; t < XT; ++t)
    for (int b = 0; b < NB; ++b) {
      int32_t *lo = acc + ((size_t)(2 * b) * Wout + x0 + t) * 8;
      _mm256_storeu_si256((__m256i *)lo, _mm512_castsi512_si256(a[t][b]));
      _mm256_storeu_si256((__m256i *)(lo + (size_t)Wout * 8), _mm512_extracti64x4_epi64(a[t][b], 1));
    }
}
#else
typedef uint32_t Lanes __attribute__((vector_size(kOcBlock * 4)));
typedef int8_t WLanes __attribute__((vector_size(kOcBlock)));

template <int XT, int NB>
static inline void engine_tile(const uint8_t *const *rows, int KY, int KX, int IC, int x0,
                               const int8_t *wp, size_t blk, int32_t *acc, int Wout) {
  Lanes a[XT][NB];
  for (int t = 0; t < XT; ++t)
    for (int b = 0; b < NB; ++b) {
      const int32_t *lo = acc + ((size_t)(2 * b) * Wout + x0 + t) * 8;
      std::memcpy(&a[t][b], lo, 32);
      std::memcpy((char *)&a[t][b] + 32, lo + (size_t)Wout * 8, 32);
    }
  for (int ky = 0; ky < KY; ++ky) {
    if (!rows[ky]) continue;
    for (int kx = 0; kx < KX; ++kx) {
      const uint8_t *in = rows[ky] + (size_t)(x0 + kx) * IC;
      const int8_t *wk = wp + (size_t)(ky * KX + kx) * IC * kOcBlock;
      for (int ic = 0; ic < IC; ++ic) {
        Lanes w[NB];
        for (int b = 0; b < NB; ++b) {
          WLanes w8;
          std::memcpy(&w8, wk + b * blk + (size_t)ic * kOcBlock, kOcBlock);
          w[b] = (Lanes)__builtin_convertvector(w8, int32_t __attribute__((vector_size(kOcBlock * 4))));
        }
#pragma GCC unroll 8
        for (int t = 0; t < XT; ++t) {
          const uint32_t v = in[(size_t)t * IC + ic];
          for (int b = 0; b < NB; ++b) a[t][b] += v * w[b];
        }
      }
    }
  }
  for (int t = 0; t < XT; ++t)
    for (int b = 0; b < NB; ++b) {
      int32_t *lo = acc + ((size_t)(2 * b) * Wout + x0 + t) * 8;
      std::memcpy(lo, &a[t][b], 32);
      std::memcpy(lo + (size_t)Wout * 8, (const char *)&a[t][b] + 32, 32);
    }
}
#endif

// Columns of one group of NB 16-channel blocks: tiles of 8 columns, then single columns.
template <int NB>
static void engine_columns(const uint8_t *const *rows, int KY, int KX, int IC, int Wout,
                           const int8_t *wp, size_t blk, int32_t *acc) {
  int x = 0;
  for (; x + 8 <= Wout; x += 8) engine_tile<8, NB>(rows, KY, KX, IC, x, wp, blk, acc, Wout);
  for (; x < Wout; ++x) engine_tile<1, NB>(rows, KY, KX, IC, x, wp, blk, acc, Wout);
}

// Full driver: bias + weights of output channels [oc0, oc0+noc) from a blob with
// OC_total output channels; rows[ky]: staged bytes [Wout + KX - 1][IC] (see load_row) or
// nullptr for a zero padding row; in_signed: the rows hold int8 inputs (offset +128).
// Result acc in output row layout [noc/8][Wout][8] (int32, bias included).
inline void conv_rows(const uint8_t *const *rows, int KY, int KX, int IC, int Wout,
                      const int8_t *params, int OC_total, int oc0, int noc, bool in_signed,
                      int32_t *acc) {
  const Packed &pk = packed_weights(params, IC, KY, KX, oc0, noc);
  const int noc16 = (noc + kOcBlock - 1) / kOcBlock * kOcBlock;
  int32_t *a = acc;
  if (noc16 != noc) {  // channel count not a multiple of 16: padded accumulator
    Scratch &s = scratch();
    s.acc16.resize((size_t)noc16 * Wout);
    a = s.acc16.data();
  }
  const int8_t *bias = params + (size_t)OC_total * IC * KY * KX;
  // bias, minus 128 * sum(w) over the present kernel rows for int8 inputs
  for (int o8 = 0; o8 < noc16 / 8; ++o8) {
    int32_t b[8];
    for (int i = 0; i < 8; ++i) {
      const int ocl = o8 * 8 + i;
      uint32_t v = ocl < noc ? (uint32_t)load_bias(bias, oc0 + ocl) : 0u;
      if (in_signed)
        for (int ky = 0; ky < KY; ++ky)
          if (rows[ky]) v -= 128u * (uint32_t)pk.wsum[(size_t)ky * noc16 + ocl];
      std::memcpy(&b[i], &v, 4);
    }
    for (int x = 0; x < Wout; ++x) std::memcpy(a + ((size_t)o8 * Wout + x) * 8, b, sizeof b);
  }
  const size_t blk = (size_t)KY * KX * IC * kOcBlock;
  const int nblk = noc16 / kOcBlock;
  int b = 0;
  for (; b + 2 <= nblk; b += 2)
    engine_columns<2>(rows, KY, KX, IC, Wout, pk.w.data() + b * blk, blk,
                      a + (size_t)b * 2 * Wout * 8);
  for (; b < nblk; ++b)
    engine_columns<1>(rows, KY, KX, IC, Wout, pk.w.data() + b * blk, blk,
                      a + (size_t)b * 2 * Wout * 8);
  if (a != acc) std::memcpy(acc, a, sizeof(int32_t) * (size_t)noc * Wout);
}

// npu_srs_block's arithmetic for one element with the shift and rounding decided once
// and applied without branches, so a loop fusing several requantizations vectorizes.
// Same results as npu_srs_block: shift > 0: a >> shift plus the rounding increment of
// the dropped bits; shift = 0: a; shift < 0: a clamped to +-2^16, times 2^-shift; then
// saturated to [lo, hi].
struct Srs {
  int32_t sh, mask, half, hu, clo, chi, mul, lo, hi;
  Srs(int32_t shift, int32_t rounding, int32_t lo_, int32_t hi_) : lo(lo_), hi(hi_) {
    const bool pos = shift > 0;
    sh = pos ? shift : 0;
    mask = pos ? (int32_t)((uint32_t(1) << shift) - 1u) : 0;
    half = pos ? 1 << (shift - 1) : 1;  // the dropped bits are 0 unless shift > 0
    hu = rounding == NPU_ROUND_HALF_UP ? -1 : 0;
    clo = shift < 0 ? -(1 << 16) : INT32_MIN;
    chi = shift < 0 ? (1 << 16) : INT32_MAX;
    mul = shift < 0 ? 1 << (-shift) : 1;
  }
  int32_t operator()(int32_t a) const {
    a = a < clo ? clo : (a > chi ? chi : a);
    const int32_t q = a >> sh, r = a & mask;
    const int32_t up_hu = (int32_t)(r >= half);
    const int32_t up_he = ((int32_t)(r > half) | ((int32_t)(r == half) & q)) & 1;
    const int32_t v = (q + ((up_hu & hu) | (up_he & ~hu))) * mul;
    return v < lo ? lo : (v > hi ? hi : v);
  }
};

// Requantize an accumulator row [C/8][W][8] into an output row of TO (same layout).
template <typename TO>
void store_row(const int32_t *acc, int W, int C, int32_t shift, int32_t rounding, TO *out) {
  npu_srs_block(acc, out, (size_t)W * C, shift, rounding, NpuRange<TO>::lo, NpuRange<TO>::hi);
}

}  // namespace
}  // namespace npu_host
#endif  // !__AIENGINE__
