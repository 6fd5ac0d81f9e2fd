// maxpool2x2.cc - 2x2 max pooling, stride 2, two input rows -> one output row.
//
// C API:
//   void maxpool2x2_ui8(const uint8_t* row0, const uint8_t* row1, uint8_t* out,
//                       int32_t W, int32_t C)
//   void maxpool2x2_i8 (const int8_t*  row0, const int8_t*  row1, int8_t*  out,
//                       int32_t W, int32_t C)
// row0, row1: input rows 2y, 2y+1, [C/8][W][8]; W even (input width), C multiple of 8.
// out       : [C/8][W/2][8], out[c][x] = max of the 2x2 window at (2y, 2x).
#include <cstddef>
#include <cstdint>

#if defined(__AIENGINE__)
#include <aie_api/aie.hpp>
// ---- AIE2 vector path (W % 8 == 0): 64-byte loads hold 8 columns x 8 channels;
// max of the two rows, then max of even/odd columns via a 64-bit-lane deinterleave.
template <typename T>
static void maxpool_impl(const T *r0, const T *r1, T *out, int32_t W, int32_t C) {
  for (int cb = 0; cb < C / 8; ++cb)
    for (int x = 0; x < W; x += 8) {
      const aie::vector<T, 64> v = aie::max(aie::load_v<64>(r0 + (cb * W + x) * 8),
                                            aie::load_v<64>(r1 + (cb * W + x) * 8));
      // even columns (x, x+2, ..) and odd columns as 8-byte groups
      const auto [ev, od] = aie::interleave_unzip(v, v, 8);
      aie::store_v(out + (cb * (W / 2) + x / 2) * 8,
                   aie::max(ev.template extract<32>(0), od.template extract<32>(0)));
    }
}
#else
// ---- portable host path.
template <typename T>
static void maxpool_impl(const T *r0, const T *r1, T *out, int32_t W, int32_t C) {
  const int Wo = W / 2;
  for (int cb = 0; cb < C / 8; ++cb)
    for (int x = 0; x < Wo; ++x)
      for (int i = 0; i < 8; ++i) {
        const size_t a = ((size_t)cb * W + 2 * x) * 8 + i, b = a + 8;
        T m = r0[a];
        if (r0[b] > m) m = r0[b];
        if (r1[a] > m) m = r1[a];
        if (r1[b] > m) m = r1[b];
        out[((size_t)cb * Wo + x) * 8 + i] = m;
      }
}
#endif

extern "C" {
void maxpool2x2_ui8(const uint8_t *row0, const uint8_t *row1, uint8_t *out, int32_t W,
                    int32_t C) {
  maxpool_impl(row0, row1, out, W, C);
}
void maxpool2x2_i8(const int8_t *row0, const int8_t *row1, int8_t *out, int32_t W, int32_t C) {
  maxpool_impl(row0, row1, out, W, C);
}
}
