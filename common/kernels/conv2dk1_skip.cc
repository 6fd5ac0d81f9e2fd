// conv2dk1_skip.cc - bottleneck tail: 1x1 conv3 + residual add (+ ReLU), one row.
//
// C API:
//   void conv2dk1_skip_ui8(const uint8_t* in0, const uint8_t* in1, const int8_t* params,
//                          uint8_t* out, const uint8_t* skip,
//                          int32_t W, int32_t IC, int32_t OC,
//                          int32_t shift, int32_t skip_shift, int32_t skip_in_shift,
//                          int32_t rounding)
//   void conv2dk1_skip_i8skip_ui8(...)   same arguments, skip is int8 [OC/8][W][8]
//                          (a projection computed on another core, already at the add
//                          scale: skip_in_shift 0 leaves it unchanged)
//   void conv2dk1_skip_init_ui8(const uint8_t* in0, const uint8_t* in1,
//                          const int8_t* params, uint8_t* out, const int8_t* skip_in,
//                          int32_t W, int32_t IC, int32_t OC, int32_t IC_skip,
//                          int32_t shift, int32_t skip_shift, int32_t skip_conv_shift,
//                          int32_t rounding)
// in0, in1 : the conv3 input split in two channel halves, each [IC/2/8][W][8] uint8:
//            in0 = channels [0, IC/2), in1 = [IC/2, IC). IC multiple of 16.
// params   : blob(conv3 1x1 IC -> OC) (pack_conv_params layout); for the _init variant
//            immediately followed by blob(skip projection 1x1 IC_skip -> OC).
// skip     : [OC/8][W][8] uint8 block input (blocks 1, 2), requantized to the add scale
//            with skip_in_shift (0: same scale, values > 127 saturate to 127).
// skip_in  : [IC_skip/8][W][8] int8 block input (block 0), projected by the 2nd blob.
// out      : [OC/8][W][8] uint8.
//   y3  = SRS_int8(bias3 + conv3(in), shift)
//   s   = SRS_int8(skip, skip_in_shift)  or  SRS_int8(bias_s + proj(skip_in), skip_conv_shift)
//   out = SRS_uint8(int32(y3) + int32(s), skip_shift)        (ReLU fused)
// Shifts -8..31 (skip_shift of 0 and -1 occur after PTQ); rounding 0 half-even, 1 half-up.
#include <cstdint>

#include "requant.h"

#if defined(__AIENGINE__)
// ---- AIE2 vector path (W % 4 == 0): mmul<4, 8, 8> tiles as in conv2dk1.cc. The add is
// done on int16 lanes in a fresh accumulator (|y3 + s| <= 383), then one SRS to uint8.

// acc + 4-column x 8-output-channel 1x1 tile over IB input blocks of one row.
template <typename TI>
static inline aie::accum<acc32, 32> k1_tile(aie::accum<acc32, 32> acc, const TI *in,
                                            const int8_t *wob, int W, int IB, int x) {
  aie::mmul<4, 8, 8, TI, int8_t> m(acc);
  for (int ib = 0; ib < IB; ++ib)
    m.mac(aie::load_v<32>(in + (ib * W + x) * 8), aie::load_v<64>(wob + ib * 64));
  return m.to_accum();
}

static inline aie::vector<uint8_t, 32> skip_add(aie::vector<int8_t, 32> y3,
                                                aie::vector<int16_t, 32> s, int32_t skip_shift) {
  aie::accum<acc32, 32> sum;
  sum.from_vector(aie::add(y3.unpack(), s), 0);  // int16 lanes: exact
  return npu_aie_srs<uint8_t>(sum, skip_shift);
}

template <typename TS>
static void skip_impl(const uint8_t *in0, const uint8_t *in1, const int8_t *params, uint8_t *out,
                      const TS *skip, const int8_t *skip_in, int32_t W, int32_t IC,
                      int32_t OC, int32_t IC_skip, int32_t shift, int32_t skip_shift,
                      int32_t skip_conv_shift, int32_t rounding) {
  // skip_conv_shift doubles as the requant shift of the uint8 skip when skip_in is null.
  npu_aie_set_modes(rounding);
  const int IBh = IC / 16;  // input blocks per half
  const int32_t *bias3 = (const int32_t *)(params + OC * IC);
  const int8_t *pskip = params + OC * IC + 4 * OC;
  const int32_t *bias_s = (const int32_t *)(pskip + OC * IC_skip);
  for (int ob = 0; ob < OC / 8; ++ob)
    for (int x = 0; x < W; x += 4) {
      // two halves of the input channels: weight blocks [ob][0..IBh) and [ob][IBh..2IBh)
      const int8_t *w3 = params + ob * (IC / 8) * 64;
      aie::accum<acc32, 32> a = k1_tile(npu_aie_bias_tile(bias3 + ob * 8), in0, w3, W, IBh, x);
      a = k1_tile(a, in1, w3 + IBh * 64, W, IBh, x);
      const aie::vector<int8_t, 32> y3 = npu_aie_srs<int8_t>(a, shift);
      aie::vector<int16_t, 32> s;
      if (skip_in) {
        const int8_t *wsk = pskip + ob * (IC_skip / 8) * 64;
        s = npu_aie_srs<int8_t>(k1_tile(npu_aie_bias_tile(bias_s + ob * 8), skip_in, wsk, W,
                                        IC_skip / 8, x),
                                skip_conv_shift).unpack();
      } else {
        aie::accum<acc32, 32> sk;
        // widen uint8/int8 skip lanes to int16 (exact), then SRS to int8 at the add scale
        sk.from_vector(aie::load_v<32>(skip + (ob * W + x) * 8).unpack()
                           .template cast_to<int16_t>(), 0);
        s = npu_aie_srs<int8_t>(sk, skip_conv_shift).unpack();
      }
      aie::store_v(out + (ob * W + x) * 8, skip_add(y3, s, skip_shift));
    }
}
#else
// ---- portable host path (see conv_host.h).
#include "conv_host.h"

template <typename TS>
static void skip_impl(const uint8_t *in0, const uint8_t *in1, const int8_t *params, uint8_t *out,
                      const TS *skip, const int8_t *skip_in, int32_t W, int32_t IC,
                      int32_t OC, int32_t IC_skip, int32_t shift, int32_t skip_shift,
                      int32_t skip_conv_shift, int32_t rounding) {
  npu_host::Scratch &s = npu_host::scratch();
  const size_t n_acc = (size_t)W * OC;
  s.rows.resize((size_t)W * (IC + IC_skip));
  s.acc.resize(2 * n_acc);
  uint8_t *rows3 = s.rows.data();
  npu_host::load_row(in0, W, IC / 2, 0, rows3, IC);
  npu_host::load_row(in1, W, IC / 2, 0, rows3 + IC / 2, IC);
  const uint8_t *r3[1] = {rows3};
  int32_t *acc3 = s.acc.data();
  npu_host::conv_rows(r3, 1, 1, IC, W, params, OC, 0, OC, false, acc3);
  int32_t *accs = nullptr;
  if (skip_in) {
    uint8_t *rows_s = rows3 + (size_t)W * IC;
    npu_host::load_row(skip_in, W, IC_skip, 0, rows_s, IC_skip);
    const uint8_t *rs[1] = {rows_s};
    accs = acc3 + n_acc;
    npu_host::conv_rows(rs, 1, 1, IC_skip, W, params + (size_t)OC * IC + 4 * OC, OC, 0, OC,
                        true, accs);
  }
  // All accumulators are in output row layout [OC/8][W][8], like skip and out. One pass:
  // y3 (int8 range) + the skip at the add scale (the projection, or the uint8/int8 skip
  // requantized with skip_conv_shift = skip_in_shift), requantized to uint8 (ReLU).
  // Computed into int32 chunks first: out may alias anything, which would stop the
  // compiler from vectorizing.
  const npu_host::Srs y3(shift, rounding, -128, 127), sk(skip_conv_shift, rounding, -128, 127),
      add(skip_shift, rounding, 0, 255);
  constexpr size_t CH = 256;
  int32_t tmp[CH];
  for (size_t i0 = 0; i0 < n_acc; i0 += CH) {
    const size_t m = n_acc - i0 < CH ? n_acc - i0 : CH;
    if (skip_in)
      for (size_t j = 0; j < m; ++j) tmp[j] = add(y3(acc3[i0 + j]) + sk(accs[i0 + j]));
    else
      for (size_t j = 0; j < m; ++j) tmp[j] = add(y3(acc3[i0 + j]) + sk((int32_t)skip[i0 + j]));
    for (size_t j = 0; j < m; ++j) out[i0 + j] = (uint8_t)tmp[j];
  }
}
#endif

extern "C" {
void conv2dk1_skip_ui8(const uint8_t *in0, const uint8_t *in1, const int8_t *params,
                       uint8_t *out, const uint8_t *skip, int32_t W, int32_t IC, int32_t OC,
                       int32_t shift, int32_t skip_shift, int32_t skip_in_shift,
                       int32_t rounding) {
  skip_impl(in0, in1, params, out, skip, nullptr, W, IC, OC, 0, shift, skip_shift,
            skip_in_shift, rounding);
}

void conv2dk1_skip_i8skip_ui8(const uint8_t *in0, const uint8_t *in1, const int8_t *params,
                              uint8_t *out, const int8_t *skip, int32_t W, int32_t IC,
                              int32_t OC, int32_t shift, int32_t skip_shift,
                              int32_t skip_in_shift, int32_t rounding) {
  skip_impl(in0, in1, params, out, skip, nullptr, W, IC, OC, 0, shift, skip_shift,
            skip_in_shift, rounding);
}

void conv2dk1_skip_init_ui8(const uint8_t *in0, const uint8_t *in1, const int8_t *params,
                            uint8_t *out, const int8_t *skip_in, int32_t W, int32_t IC,
                            int32_t OC, int32_t IC_skip, int32_t shift, int32_t skip_shift,
                            int32_t skip_conv_shift, int32_t rounding) {
  skip_impl<uint8_t>(in0, in1, params, out, nullptr, skip_in, W, IC, OC, IC_skip, shift, skip_shift,
            skip_conv_shift, rounding);
}
}
