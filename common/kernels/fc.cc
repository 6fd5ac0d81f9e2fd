// fc.cc - fully connected layer (matrix-vector product) with int32 bias (LeNet-5 fc1..fc3).
//
// C API:
//   void fc_<in>_ui8(const TI* in, const int8_t* params, uint8_t* out,
//                    int32_t IN, int32_t OUT, int32_t shift, int32_t rounding)
//   void fc_<in>_i32(const TI* in, const int8_t* params, int32_t* out,
//                    int32_t IN, int32_t OUT)
//   <in> in {i8, ui8} (TI int8_t / uint8_t).
// in     : input vector, IN elements (IN a multiple of 8; padded entries are ignored
//          because their weights are 0).
// params : pack_fc_params blob (common/layouts.py): weights in O8I8 tiles
//          [OUT/8][IN/8][8 out][8 in] int8 (OUT*IN bytes), then OUT int32 LE biases.
//          OUT a multiple of 8.
// out    : fc_*_ui8: OUT uint8 = SRS_uint8(bias + W.in, shift) (ReLU fused), shift -8..31,
//          rounding 0 half-even, 1 half-up (requant.h);
//          fc_*_i32: OUT int32 = bias + W.in (no requantization; the last layer's logits).
// The sum stays in int32 (the caller's contract: bias + W.in fits int32).
#include <cstdint>

#include "requant.h"

#if defined(__AIENGINE__)
// ---- AIE2 vector path. A 64-byte weight tile holds 8 outputs x 8 inputs, output-major;
// its halves (outputs 0..3, 4..7) are 32-lane vectors. The 8 input bytes of each tile
// column are staged once per call replicated 4 times (32 bytes: i0..i7 i0..i7 ..), so a
// lane-wise multiply-accumulate of the staged inputs with a weight half adds
// x[i] * w[o][i] into lane 8*o + i; after all IN/8 tiles each output is the sum of its 8
// lanes. The uint8 SRS then runs on 32-lane vectors of the int32 sums.
// Sized for LeNet (IN <= 512, OUT <= 128); static scratch 2.7 KB.
#define FC_MAX_IN 512
#define FC_MAX_OUT 128
template <typename TI>
static void fc_sums(const TI *in, const int8_t *w, const int32_t *bias, int32_t IN, int32_t OUT,
                    int32_t *sums) {
  static int32_t xrep[FC_MAX_IN] __attribute__((aligned(32)));  // IN/8 x 32 bytes
  const int32_t *x32 = (const int32_t *)in;                     // 2 words per 8 inputs
  for (int ib = 0; ib < IN / 8; ++ib)
    for (int r = 0; r < 4; ++r) {
      xrep[ib * 8 + 2 * r] = x32[2 * ib];
      xrep[ib * 8 + 2 * r + 1] = x32[2 * ib + 1];
    }
  const TI *xr = (const TI *)xrep;
  for (int ob = 0; ob < OUT / 8; ++ob) {
    aie::accum<acc32, 32> lo = aie::zeros<acc32, 32>(), hi = aie::zeros<acc32, 32>();
    const int8_t *wt = w + ob * IN * 8;
    for (int ib = 0; ib < IN / 8; ++ib) {
      const aie::vector<TI, 32> x = aie::load_v<32>(xr + ib * 32);
      lo = aie::mac(lo, x, aie::load_v<32>(wt + ib * 64));
      hi = aie::mac(hi, x, aie::load_v<32>(wt + ib * 64 + 32));
    }
    const aie::vector<int32_t, 32> l = lo.template to_vector<int32_t>(0);
    const aie::vector<int32_t, 32> h = hi.template to_vector<int32_t>(0);
    for (int o = 0; o < 4; ++o) {
      sums[ob * 8 + o] = aie::reduce_add(l.template extract<8>(o)) + bias[ob * 8 + o];
      sums[ob * 8 + 4 + o] = aie::reduce_add(h.template extract<8>(o)) + bias[ob * 8 + 4 + o];
    }
  }
}

template <typename TI>
static void fc_ui8_impl(const TI *in, const int8_t *params, uint8_t *out, int32_t IN,
                        int32_t OUT, int32_t shift, int32_t rounding) {
  static int32_t sums[FC_MAX_OUT] __attribute__((aligned(32)));
  static uint8_t obuf[FC_MAX_OUT] __attribute__((aligned(32)));
  npu_aie_set_modes(rounding);
  fc_sums(in, params, (const int32_t *)(params + OUT * IN), IN, OUT, sums);
  for (int o = 0; o < OUT; o += 32) {
    aie::accum<acc32, 32> a;
    a.from_vector(aie::load_v<32>(sums + o), 0);
    aie::store_v(obuf + o, npu_aie_srs<uint8_t>(a, shift));
  }
  for (int o = 0; o < OUT; ++o) out[o] = obuf[o];
}

template <typename TI>
static void fc_i32_impl(const TI *in, const int8_t *params, int32_t *out, int32_t IN,
                        int32_t OUT) {
  fc_sums(in, params, (const int32_t *)(params + (size_t)OUT * IN), IN, OUT, out);
}
#else
// ---- portable host path: plain loops over the same tiles (the compiler vectorizes the
// 8x8 inner tile).
template <typename TI>
static void fc_sums(const TI *in, const int8_t *w, const int32_t *bias, int32_t IN, int32_t OUT,
                    int32_t *sums) {
  for (int ob = 0; ob < OUT / 8; ++ob) {
    int32_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const int8_t *wt = w + (size_t)ob * IN * 8;
    for (int ib = 0; ib < IN / 8; ++ib, wt += 64)
      for (int o = 0; o < 8; ++o)
        for (int i = 0; i < 8; ++i) acc[o] += (int32_t)in[ib * 8 + i] * (int32_t)wt[o * 8 + i];
    for (int o = 0; o < 8; ++o)  // int32 by contract; the sum wraps like the AIE adder
      sums[ob * 8 + o] = (int32_t)((uint32_t)acc[o] + (uint32_t)bias[ob * 8 + o]);
  }
}

template <typename TI>
static void fc_ui8_impl(const TI *in, const int8_t *params, uint8_t *out, int32_t IN,
                        int32_t OUT, int32_t shift, int32_t rounding) {
  const int32_t *bias = (const int32_t *)(params + (size_t)OUT * IN);
  int32_t sums[256];
  for (int o0 = 0; o0 < OUT; o0 += 256) {  // chunks of 256 outputs (OUT is unbounded here)
    const int n = OUT - o0 < 256 ? OUT - o0 : 256;
    fc_sums(in, params + (size_t)o0 * IN, bias + o0, IN, n, sums);
    npu_srs_block(sums, out + o0, (size_t)n, shift, rounding, 0, 255);
  }
}

template <typename TI>
static void fc_i32_impl(const TI *in, const int8_t *params, int32_t *out, int32_t IN,
                        int32_t OUT) {
  fc_sums(in, params, (const int32_t *)(params + (size_t)OUT * IN), IN, OUT, out);
}
#endif

#define NPU_FC(TAG, TI)                                                                    \
  void fc_##TAG##_ui8(const TI *in, const int8_t *params, uint8_t *out, int32_t IN,        \
                      int32_t OUT, int32_t shift, int32_t rounding) {                      \
    fc_ui8_impl<TI>(in, params, out, IN, OUT, shift, rounding);                            \
  }                                                                                        \
  void fc_##TAG##_i32(const TI *in, const int8_t *params, int32_t *out, int32_t IN,        \
                      int32_t OUT) {                                                       \
    fc_i32_impl<TI>(in, params, out, IN, OUT);                                             \
  }

extern "C" {
NPU_FC(i8, int8_t)
NPU_FC(ui8, uint8_t)
}
