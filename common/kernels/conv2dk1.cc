// conv2dk1.cc - 1x1 convolution over one activation row.
//
// C API (all extern "C", void):
//   conv2dk1_<in>_<out>(const TI* in, const int8_t* params, TO* out,
//                       int32_t W, int32_t IC, int32_t OC, int32_t shift, int32_t rounding)
//   <in>/<out> in {i8, ui8}; ui8 output = ReLU fused (saturate to [0, 255]).
// in     : row [IC/8][W][8] of TI.
// params : blob from common/layouts.py::pack_conv_params (1x1, IC -> OC):
//          OIYXI8O8 int8 weights (OC*IC bytes) then OC int32 LE bias.
// out    : row [OC/8][W][8] of TO.
// IC, OC : padded channel counts, multiples of 8. shift: -8..31 (see requant.h).
// rounding: 0 half-to-even (conv_even), 1 half-up (positive_inf).
// out[x][oc] = SRS(bias[oc] + sum_ic in[x][ic] * w[oc][ic], shift).
//
//   conv2dk1_proj_<in>(const TI* in, const int8_t* params, uint8_t* out, int8_t* proj,
//                      int32_t W, int32_t IC, int32_t OC, int32_t OC_proj, int32_t shift,
//                      int32_t proj_shift, int32_t rounding)
//   <in> in {i8, ui8}. Two 1x1 convs of the same row (the block-0 conv1 and its skip
// projection, on one core): out = conv2dk1_<in>_ui8(in, params),
// proj = conv2dk1_<in>_i8(in, params2) where params2 = params + blob size (IC -> OC), the
// projection's blob (IC -> OC_proj).
#include <cstdint>

#include "requant.h"

#if defined(__AIENGINE__)
// ---- AIE2 vector path (needs W % 4 == 0). aie::mmul<4, 8, 8>: 4 columns x 8 input
// channels (32 contiguous bytes of the [C/8][W][8] row) times one [8 in][8 out] weight
// block (64 contiguous bytes of OIYXI8O8) into 4 x 8 int32 accumulators, i.e. a
// 4-column, 8-output-channel tile in output row order.
template <typename TI, typename TO>
static void conv2dk1_impl(const TI *in, const int8_t *params, TO *out, int32_t W, int32_t IC,
                          int32_t OC, int32_t shift, int32_t rounding) {
  using MMUL = aie::mmul<4, 8, 8, TI, int8_t>;
  npu_aie_set_modes(rounding);
  const int IB = IC / 8;
  const int32_t *bias = (const int32_t *)(params + OC * IC);
  for (int ob = 0; ob < OC / 8; ++ob) {
    aie::accum<acc32, 32> binit = npu_aie_bias_tile(bias + ob * 8);
    const int8_t *wob = params + ob * IB * 64;
    for (int x = 0; x < W; x += 4) chess_prepare_for_pipelining {
      MMUL m(binit);
      for (int ib = 0; ib < IB; ++ib) {
        m.mac(aie::load_v<32>(in + (ib * W + x) * 8), aie::load_v<64>(wob + ib * 64));
      }
      aie::store_v(out + (ob * W + x) * 8, npu_aie_srs<TO>(m.to_accum(), shift));
    }
  }
}
#else
// ---- portable host path (see conv_host.h).
#include "conv_host.h"

template <typename TI, typename TO>
static void conv2dk1_impl(const TI *in, const int8_t *params, TO *out, int32_t W, int32_t IC,
                          int32_t OC, int32_t shift, int32_t rounding) {
  npu_host::Scratch &s = npu_host::scratch();
  s.rows.resize((size_t)W * IC);
  s.acc.resize((size_t)W * OC);
  npu_host::load_row(in, W, IC, 0, s.rows.data(), IC);
  const uint8_t *rows[1] = {s.rows.data()};
  npu_host::conv_rows(rows, 1, 1, IC, W, params, OC, 0, OC, std::is_signed<TI>::value,
                      s.acc.data());
  npu_host::store_row(s.acc.data(), W, OC, shift, rounding, out);
}
#endif

#define NPU_CONV2DK1(NAME, TI, TO)                                                       \
  void NAME(const TI *in, const int8_t *params, TO *out, int32_t W, int32_t IC, int32_t OC, \
            int32_t shift, int32_t rounding) {                                           \
    conv2dk1_impl<TI, TO>(in, params, out, W, IC, OC, shift, rounding);                  \
  }

extern "C" {
NPU_CONV2DK1(conv2dk1_i8_ui8, int8_t, uint8_t)
NPU_CONV2DK1(conv2dk1_ui8_ui8, uint8_t, uint8_t)
NPU_CONV2DK1(conv2dk1_i8_i8, int8_t, int8_t)
NPU_CONV2DK1(conv2dk1_ui8_i8, uint8_t, int8_t)

#define NPU_CONV2DK1_PROJ(NAME, TI)                                                       \
  void NAME(const TI *in, const int8_t *params, uint8_t *out, int8_t *proj, int32_t W,      \
            int32_t IC, int32_t OC, int32_t OC_proj, int32_t shift, int32_t proj_shift,     \
            int32_t rounding) {                                                             \
    conv2dk1_impl<TI, uint8_t>(in, params, out, W, IC, OC, shift, rounding);                \
    conv2dk1_impl<TI, int8_t>(in, params + OC * IC + 4 * OC, proj, W, IC, OC_proj,          \
                              proj_shift, rounding);                                        \
  }

NPU_CONV2DK1_PROJ(conv2dk1_proj_i8, int8_t)
NPU_CONV2DK1_PROJ(conv2dk1_proj_ui8, uint8_t)

#if !defined(__AIENGINE__)
// Name of the host conv engine compiled into this library (see conv_host.h).
const char *npu_host_engine(void) { return NPU_HOST_ENGINE_NAME; }
#endif
}
