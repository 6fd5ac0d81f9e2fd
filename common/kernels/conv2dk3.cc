// conv2dk3.cc - 3x3 convolution over a 3-row window, uint8 in, uint8 + ReLU out.
//
// C API:
//   void conv2dk3_ui8(const uint8_t* line0, const uint8_t* line1, const uint8_t* line2,
//                     const int8_t* params, uint8_t* out,
//                     int32_t W, int32_t IC, int32_t OC, int32_t OC_total,
//                     int32_t border, int32_t shift, int32_t rounding, int32_t oc_offset)
// line0..2 : input rows y-1, y, y+1, each [IC/8][W][8] uint8.
// border   : 0 top (line0 is the zero padding row, never read), 1 middle,
//            2 bottom (line2 is the zero padding row, never read).
//            Left/right: one zero column on each side (output width = W).
// params   : blob of the FULL 3x3 conv (IC -> OC_total), pack_conv_params layout:
//            OIYXI8O8 weights (OC_total*IC*9 bytes) then OC_total int32 LE biases.
// oc_offset: first output channel computed (multiple of 8); this call computes output
//            channels [oc_offset, oc_offset + OC) of the conv. OC_total is needed to
//            find the bias, which follows the weights of all OC_total channels.
// out      : row [OC/8][W][8] uint8 holding those OC channels.
// IC, OC, OC_total multiples of 8; shift -8..31; rounding 0 half-even, 1 half-up.
#include <cstdint>

#include "requant.h"

#if defined(__AIENGINE__)
// ---- AIE2 vector path (needs W % 4 == 0): aie::mmul<4, 8, 8> tiles of 4 columns x 8
// output channels; for tap kx the 4 input columns are x+kx-1 .. x+kx+2. At the left
// (right) image edge the missing column is supplied by shifting a zero column in.
template <typename TI>
static inline aie::vector<TI, 32> k3_load_cols(const TI *row, int W, int x, int kx) {
  const int xs = x + kx - 1;  // first input column of the 4-column group
  if (xs < 0)  // left edge: [0, c0, c1, c2]
    return aie::shuffle_up_fill(aie::load_v<32>(row), aie::zeros<TI, 32>(), 8);
  if (xs + 4 > W)  // right edge: [c(W-3), c(W-2), c(W-1), 0]
    return aie::shuffle_down_fill(aie::load_v<32>(row + (W - 4) * 8), aie::zeros<TI, 32>(), 8);
  return aie::load_unaligned_v<32>(row + xs * 8, 8);
}

static void conv2dk3_impl(const uint8_t *l0, const uint8_t *l1, const uint8_t *l2,
                          const int8_t *params, uint8_t *out, int32_t W, int32_t IC,
                          int32_t OC, int32_t OC_total, int32_t border, int32_t shift,
                          int32_t rounding, int32_t oc_offset) {
  using MMUL = aie::mmul<4, 8, 8, uint8_t, int8_t>;
  npu_aie_set_modes(rounding);
  const uint8_t *lines[3] = {border == 0 ? nullptr : l0, l1, border == 2 ? nullptr : l2};
  const int IB = IC / 8;
  const int32_t *bias = (const int32_t *)(params + OC_total * IC * 9);
  for (int ob = 0; ob < OC / 8; ++ob) {
    const int gob = oc_offset / 8 + ob;  // block index in the full conv
    aie::accum<acc32, 32> binit = npu_aie_bias_tile(bias + gob * 8);
    for (int x = 0; x < W; x += 4) {
      MMUL m(binit);
      for (int ib = 0; ib < IB; ++ib)
        for (int ky = 0; ky < 3; ++ky) {
          if (!lines[ky]) continue;  // padding row
          const uint8_t *row = lines[ky] + ib * W * 8;
          for (int kx = 0; kx < 3; ++kx)
            m.mac(k3_load_cols(row, W, x, kx),
                  aie::load_v<64>(params + (((gob * IB + ib) * 3 + ky) * 3 + kx) * 64));
        }
      aie::store_v(out + (ob * W + x) * 8, npu_aie_srs<uint8_t>(m.to_accum(), shift));
    }
  }
}
#else
// ---- portable host path (see conv_host.h).
#include "conv_host.h"

static void conv2dk3_impl(const uint8_t *l0, const uint8_t *l1, const uint8_t *l2,
                          const int8_t *params, uint8_t *out, int32_t W, int32_t IC,
                          int32_t OC, int32_t OC_total, int32_t border, int32_t shift,
                          int32_t rounding, int32_t oc_offset) {
  npu_host::Scratch &s = npu_host::scratch();
  const size_t row_len = (size_t)(W + 2) * IC;
  s.rows.resize(3 * row_len);
  s.acc.resize((size_t)W * OC);
  const uint8_t *lines[3] = {border == 0 ? nullptr : l0, l1, border == 2 ? nullptr : l2};
  const uint8_t *rows[3];
  for (int ky = 0; ky < 3; ++ky) {
    rows[ky] = nullptr;
    if (!lines[ky]) continue;
    uint8_t *dst = s.rows.data() + ky * row_len;
    npu_host::load_row(lines[ky], W, IC, 1, dst, IC);
    rows[ky] = dst;
  }
  npu_host::conv_rows(rows, 3, 3, IC, W, params, OC_total, oc_offset, OC, false,
                      s.acc.data());
  npu_host::store_row(s.acc.data(), W, OC, shift, rounding, out);
}
#endif

extern "C" {
void conv2dk3_ui8(const uint8_t *line0, const uint8_t *line1, const uint8_t *line2,
                  const int8_t *params, uint8_t *out, int32_t W, int32_t IC, int32_t OC,
                  int32_t OC_total, int32_t border, int32_t shift, int32_t rounding,
                  int32_t oc_offset) {
  conv2dk3_impl(line0, line1, line2, params, out, W, IC, OC, OC_total, border, shift,
                rounding, oc_offset);
}
}
