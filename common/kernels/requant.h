// requant.h - scalar shift-round-saturate (SRS) shared by all host kernel paths.
//
// Semantics match common/quant.py::requantize exactly:
//   shift > 0 : acc / 2^shift, rounded half-to-even (rounding == 0, AIE conv_even)
//               or half-up, floor(x + 0.5) (rounding == 1, AIE positive_inf);
//   shift == 0: unchanged (no rounding term);
//   shift < 0 : acc * 2^-shift, exact in int64 (SRS cannot shift left);
//   then saturate to [lo, hi]: int8 [-128, 127], uint8 [0, 255] (ReLU fused).
// Valid shift range: NPU_SHIFT_MIN..NPU_SHIFT_MAX (callers validate; see quant.py).
#pragma once
#include <cstddef>
#include <cstdint>

#define NPU_SHIFT_MIN (-8)
#define NPU_SHIFT_MAX 31
#define NPU_ROUND_HALF_EVEN 0
#define NPU_ROUND_HALF_UP 1

static inline int64_t npu_round_shift(int64_t acc, int32_t shift, int32_t rounding) {
  if (shift > 0) {
    const int64_t q = acc >> shift;  // arithmetic: floor(acc / 2^shift)
    const int64_t r = acc - (q * (int64_t(1) << shift));
    const int64_t half = int64_t(1) << (shift - 1);
    if (rounding == NPU_ROUND_HALF_UP) return q + (r >= half);
    return q + ((r > half) | ((r == half) & (q & 1)));
  }
  if (shift < 0) return acc * (int64_t(1) << (-shift));
  return acc;
}

static inline int64_t npu_clamp(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

static inline int8_t npu_srs_i8(int64_t acc, int32_t shift, int32_t rounding) {
  return (int8_t)npu_clamp(npu_round_shift(acc, shift, rounding), -128, 127);
}

static inline uint8_t npu_srs_u8(int64_t acc, int32_t shift, int32_t rounding) {
  return (uint8_t)npu_clamp(npu_round_shift(acc, shift, rounding), 0, 255);
}

// Type-directed form used by templated kernels: int8 out or uint8 (ReLU) out.
template <typename T> static inline T npu_srs(int64_t acc, int32_t shift, int32_t rounding);
template <> inline int8_t npu_srs<int8_t>(int64_t acc, int32_t s, int32_t r) {
  return npu_srs_i8(acc, s, r);
}
template <> inline uint8_t npu_srs<uint8_t>(int64_t acc, int32_t s, int32_t r) {
  return npu_srs_u8(acc, s, r);
}

// Same SRS over n contiguous int32 accumulators into TD (int8/uint8/int32; dst may
// alias acc), saturating to [lo, hi]. The shift/rounding branch is hoisted out of the
// loops and everything stays in int32; each chunk is computed into a local buffer first
// (an int8 dst may alias anything, which would stop the compiler from vectorizing):
//   shift > 0: q = acc >> s, r = acc & (2^s - 1) (exact remainder, also for s = 31);
//              half-up q + (r >= 2^(s-1)), half-even q + (r > h | (r == h & q odd)).
//   shift < 0: acc is first clamped to +-2^16 (beyond that the result saturates anyway,
//              since |acc| * 2 > 255), so acc * 2^-shift (<= 2^24) cannot overflow.
template <typename TD, typename F>
static inline void npu_srs_chunks(const int32_t *acc, TD *dst, size_t n, F f) {
  constexpr size_t CH = 64;
  int32_t tmp[CH];
  for (size_t i0 = 0; i0 < n; i0 += CH) {
    const size_t m = n - i0 < CH ? n - i0 : CH;
    for (size_t j = 0; j < m; ++j) tmp[j] = f(acc[i0 + j]);
    for (size_t j = 0; j < m; ++j) dst[i0 + j] = (TD)tmp[j];
  }
}

template <typename TD>
static inline void npu_srs_block(const int32_t *acc, TD *dst, size_t n, int32_t shift,
                                 int32_t rounding, int32_t lo, int32_t hi) {
  auto sat = [lo, hi](int32_t v) { return v < lo ? lo : (v > hi ? hi : v); };
  if (shift > 0) {
    const int32_t mask = (int32_t)((uint32_t(1) << shift) - 1u), half = 1 << (shift - 1);
    if (rounding == NPU_ROUND_HALF_UP)
      npu_srs_chunks(acc, dst, n, [=](int32_t a) {
        return sat((a >> shift) + ((a & mask) >= half));
      });
    else
      npu_srs_chunks(acc, dst, n, [=](int32_t a) {
        const int32_t q = a >> shift, r = a & mask;
        const int32_t up = (int32_t)(r > half) | ((int32_t)(r == half) & q);
        return sat(q + (up & 1));
      });
  } else if (shift == 0) {
    npu_srs_chunks(acc, dst, n, sat);
  } else {
    const int32_t lim = 1 << 16, mul = 1 << (-shift);
    npu_srs_chunks(acc, dst, n, [=](int32_t a) {
      return sat((a < -lim ? -lim : (a > lim ? lim : a)) * mul);
    });
  }
}

template <typename TO> struct NpuRange;
template <> struct NpuRange<int8_t> { static constexpr int32_t lo = -128, hi = 127; };
template <> struct NpuRange<uint8_t> { static constexpr int32_t lo = 0, hi = 255; };

#if defined(__AIENGINE__)
// ---------------------------------------------------------------------------
// AIE vector requantization (not compiled on the host; checked by review only).
#include <aie_api/aie.hpp>

// Rounding + saturation for all following SRS; rounding 0 -> conv_even, 1 -> positive_inf.
static inline void npu_aie_set_modes(int32_t rounding) {
  aie::set_saturation(aie::saturation_mode::saturate);
  aie::set_rounding(rounding == NPU_ROUND_HALF_UP ? aie::rounding_mode::positive_inf
                                                  : aie::rounding_mode::conv_even);
}

// Accumulator of a 4-column x 8-output-channel tile preloaded with 8 int32 biases
// (bias8[0..8), the same for each of the 4 columns).
static inline aie::accum<acc32, 32> npu_aie_bias_tile(const int32_t *bias8) {
  const aie::vector<int32_t, 8> b = aie::load_v<8>(bias8);
  aie::accum<acc32, 32> a;
  a.from_vector(aie::concat(b, b, b, b), 0);
  return a;
}

// SRS of a 32-bit accumulator vector to TO (int8 or uint8; uint8 saturation = ReLU).
// shift >= 0: native SRS. shift < 0: SRS cannot shift left, so first saturate to
// int16 (any |v| >= 2^15 saturates the 8-bit result anyway), multiply by 2^-shift
// (<= 2^8) into a fresh 32-bit accumulator (exact, |v| < 2^23), then SRS by 0.
template <typename TO, unsigned N>
static inline aie::vector<TO, N> npu_aie_srs(const aie::accum<acc32, N> &acc, int32_t shift) {
  if (shift >= 0) return acc.template to_vector<TO>(shift);
  aie::vector<int16_t, N> v = acc.template to_vector<int16_t>(0);
  aie::accum<acc32, N> scaled = aie::mul(v, (int16_t)(1 << (-shift)));
  return scaled.template to_vector<TO>(0);
}
#endif
