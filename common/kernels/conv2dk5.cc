// conv2dk5.cc - 5x5 convolution over a 5-row window (LeNet-5), uint8 + ReLU out.
//
// C API:
//   void conv2dk5_<in>_ui8(const TI* line0, const TI* line1, const TI* line2,
//                          const TI* line3, const TI* line4,
//                          const int8_t* params, uint8_t* out,
//                          int32_t W, int32_t IC, int32_t OC, int32_t pad,
//                          int32_t row_mask, int32_t shift, int32_t rounding)
//   <in> in {i8, ui8}.
// line0..4 : input rows y-pad .. y-pad+4, each [IC/8][W][8].
// row_mask : bit k set (k = 0..4) = line k is an image row; bit clear = line k is a zero
//            padding row above/below the image (its pointer is not read, may be NULL).
//            E.g. first output row with pad 2: 0b11100.
// W        : input width. pad: zero columns left and right (0..2).
//            Output width Wout = W + 2*pad - 4 (>= 1).
// params   : pack_conv_params blob of the 5x5 conv (IC -> OC): OC*IC*25 weight bytes
//            (OIYXI8O8) then OC int32 LE biases. IC, OC padded to multiples of 8
//            (LeNet 1 -> 8, 6 -> 8, 16).
// out      : row [OC/8][Wout][8] uint8 = SRS_uint8(bias + conv, shift) (ReLU fused).
// shift -8..31; rounding 0 half-even, 1 half-up.
#include <cstdint>

#include "requant.h"

#if defined(__AIENGINE__)
// ---- AIE2 vector path. Each valid input row is staged into a zero-padded local row
// [IC/8][WP][8] (WP = Wout rounded up to 4, plus 4 columns of taps) so every tap load
// is in bounds; mmul<4, 8, 8> tiles of 4 columns x 8 output channels are computed into
// a local output row of width Wout rounded up to 4 and the valid columns copied out.
// Sized for LeNet (W <= 32, IC <= 16, OC <= 16).
#define K5_MAX_WP 40
#define K5_MAX_IC 16
#define K5_MAX_OC 16
template <typename TI>
static void conv2dk5_impl(const TI *const lines[5], const int8_t *params, uint8_t *out, int32_t W,
                          int32_t IC, int32_t OC, int32_t pad, int32_t row_mask, int32_t shift,
                          int32_t rounding) {
  using MMUL = aie::mmul<4, 8, 8, TI, int8_t>;
  static TI staged[5][K5_MAX_IC / 8][K5_MAX_WP][8] __attribute__((aligned(32)));
  static uint8_t obuf[K5_MAX_OC / 8][K5_MAX_WP][8] __attribute__((aligned(32)));
  npu_aie_set_modes(rounding);
  const int IB = IC / 8, Wout = W + 2 * pad - 4, Wt = (Wout + 3) / 4 * 4;
  for (int k = 0; k < 5; ++k) {
    if (!((row_mask >> k) & 1)) continue;
    for (int ib = 0; ib < IB; ++ib)
      for (int x = 0; x < Wt + 4; ++x)
        for (int i = 0; i < 8; ++i) {
          const int xs = x - pad;
          staged[k][ib][x][i] = (xs >= 0 && xs < W) ? lines[k][(ib * W + xs) * 8 + i] : TI(0);
        }
  }
  const int32_t *bias = (const int32_t *)(params + OC * IC * 25);
  for (int ob = 0; ob < OC / 8; ++ob) {
    aie::accum<acc32, 32> binit = npu_aie_bias_tile(bias + ob * 8);
    for (int x = 0; x < Wt; x += 4) {
      MMUL m(binit);
      for (int ib = 0; ib < IB; ++ib)
        for (int ky = 0; ky < 5; ++ky) {
          if (!((row_mask >> ky) & 1)) continue;  // zero padding row
          for (int kx = 0; kx < 5; ++kx)
            m.mac(aie::load_unaligned_v<32>(&staged[ky][ib][x + kx][0], 8),
                  aie::load_v<64>(params + (((ob * IB + ib) * 5 + ky) * 5 + kx) * 64));
        }
      aie::store_v(&obuf[ob][x][0], npu_aie_srs<uint8_t>(m.to_accum(), shift));
    }
    for (int x = 0; x < Wout; ++x)
      for (int i = 0; i < 8; ++i) out[(ob * Wout + x) * 8 + i] = obuf[ob][x][i];
  }
}
#else
// ---- portable host path (see conv_host.h).
#include "conv_host.h"

template <typename TI>
static void conv2dk5_impl(const TI *const lines[5], const int8_t *params, uint8_t *out, int32_t W,
                          int32_t IC, int32_t OC, int32_t pad, int32_t row_mask, int32_t shift,
                          int32_t rounding) {
  npu_host::Scratch &s = npu_host::scratch();
  const int Wout = W + 2 * pad - 4;
  const size_t row_len = (size_t)(W + 2 * pad) * IC;
  s.rows.resize(5 * row_len);
  s.acc.resize((size_t)Wout * OC);
  const uint8_t *rows[5];
  for (int k = 0; k < 5; ++k) {
    rows[k] = nullptr;
    if (!((row_mask >> k) & 1)) continue;
    uint8_t *dst = s.rows.data() + k * row_len;
    npu_host::load_row(lines[k], W, IC, pad, dst, IC);
    rows[k] = dst;
  }
  npu_host::conv_rows(rows, 5, 5, IC, Wout, params, OC, 0, OC, std::is_signed<TI>::value,
                      s.acc.data());
  npu_host::store_row(s.acc.data(), Wout, OC, shift, rounding, out);
}
#endif

#define NPU_CONV2DK5(NAME, TI)                                                            \
  void NAME(const TI *line0, const TI *line1, const TI *line2, const TI *line3,           \
            const TI *line4, const int8_t *params, uint8_t *out, int32_t W, int32_t IC,   \
            int32_t OC, int32_t pad, int32_t row_mask, int32_t shift, int32_t rounding) { \
    const TI *const lines[5] = {line0, line1, line2, line3, line4};                       \
    conv2dk5_impl<TI>(lines, params, out, W, IC, OC, pad, row_mask, shift, rounding);      \
  }

extern "C" {
NPU_CONV2DK5(conv2dk5_i8_ui8, int8_t)
NPU_CONV2DK5(conv2dk5_ui8_ui8, uint8_t)
}
