// Fused per-step LSTM cell for the CPU training loops of recurrent.py.
//
// At batch 32 the loops are bound by the number of small tensor calls per
// time step, not by arithmetic: one call here replaces the ~11 (forward) and
// ~6 (backward) calls of a step. Plain loops that the compiler vectorises
// (-O3 -march=native): exp is Cephes' single-precision polynomial (about
// 1 ulp), the sigmoid and tanh are built on it. Gate layout as nn.LSTM:
// z (4H, B) = [i; f; g; o], each (H, B). Graves 2013 eqs. 7-11 and their
// derivatives (the coefficients A, G, O come from recurrent.py).
#include <torch/extension.h>

#include <cstdint>

namespace {

inline float bf16_to_f(uint16_t v) { return __builtin_bit_cast(float, static_cast<uint32_t>(v) << 16); }

inline uint16_t f_to_bf16(float f) {  // round to nearest even (finite inputs)
  uint32_t u = __builtin_bit_cast(uint32_t, f);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

struct F32 {
  using T = float;
  static inline float ld(const T* p, int64_t k) { return p[k]; }
  static inline void st(T* p, int64_t k, float v) { p[k] = v; }
};

struct BF16 {
  using T = uint16_t;
  static inline float ld(const T* p, int64_t k) { return bf16_to_f(p[k]); }
  static inline void st(T* p, int64_t k, float v) { p[k] = f_to_bf16(v); }
};

// No branches the vectoriser cannot turn into selects, no library calls.
inline float fexp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  float fn = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln 2)
  float r = x - fn * 0.693359375f + fn * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * __builtin_bit_cast(float, (static_cast<int32_t>(fn) + 127) << 23);
}

inline float fsigmoid(float x) { return 1.0f / (1.0f + fexp(-x)); }

inline float ftanh(float x) {
  float e = fexp(-2.0f * __builtin_fabsf(x));
  return __builtin_copysignf((1.0f - e) / (1.0f + e), x);
}

template <typename Mm>
using P = typename Mm::T*;

template <typename Mm>
P<Mm> ptr(const at::Tensor& t) {
  return reinterpret_cast<P<Mm>>(t.data_ptr());
}

// z (4H, B); c (H, B) float: c_{t-1} in, c_t out; s (4H, B) float scratch;
// a (4H, B) = [i, f, g, o]; c_out (H, B) = c_t; h (H, B) = o tanh(c_t) (eqs. 7-11).
// The cell update reads the float gates in s, not the (possibly bf16) copies in a.
template <typename Mm>
void forward_loops(const typename Mm::T* __restrict__ z, float* __restrict__ c, float* __restrict__ s,
                   typename Mm::T* __restrict__ a, typename Mm::T* __restrict__ c_out,
                   typename Mm::T* __restrict__ h, int64_t HB) {
  for (int64_t k = 0; k < 2 * HB; ++k) s[k] = fsigmoid(Mm::ld(z, k));
  for (int64_t k = 2 * HB; k < 3 * HB; ++k) s[k] = ftanh(Mm::ld(z, k));
  for (int64_t k = 3 * HB; k < 4 * HB; ++k) s[k] = fsigmoid(Mm::ld(z, k));
  for (int64_t k = 0; k < HB; ++k) {
    float i = s[k], f = s[HB + k], g = s[2 * HB + k], o = s[3 * HB + k];
    float cn = f * c[k] + i * g;
    c[k] = cn;
    Mm::st(a, k, i);
    Mm::st(a, HB + k, f);
    Mm::st(a, 2 * HB + k, g);
    Mm::st(a, 3 * HB + k, o);
    Mm::st(c_out, k, cn);
    Mm::st(h, k, o * ftanh(cn));
  }
}

// dh = dh_a + dh_b (dh_b, the recurrent Wᵀ dz_{t+1}, optional and in its own dtype):
//   dc += dh A;  dz[i, f, g] = G dc;  dz[o] = dh O;  dc *= f.
template <typename Mm, typename Db>
void backward_loop(const float* __restrict__ dh_a, const typename Db::T* __restrict__ dh_b,
                   const float* __restrict__ A, const float* __restrict__ G, const float* __restrict__ O,
                   const float* __restrict__ f, float* __restrict__ dc, typename Mm::T* __restrict__ dz,
                   int64_t HB) {
  for (int64_t k = 0; k < HB; ++k) {
    float dh = dh_a[k] + (dh_b ? Db::ld(dh_b, k) : 0.0f);
    float d = dc[k] + dh * A[k];
    Mm::st(dz, k, G[k] * d);
    Mm::st(dz, HB + k, G[HB + k] * d);
    Mm::st(dz, 2 * HB + k, G[2 * HB + k] * d);
    Mm::st(dz, 3 * HB + k, dh * O[k]);
    dc[k] = d * f[k];
  }
}

void check(const at::Tensor& t, const char* name, int64_t numel) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous(), name, " must be a contiguous CPU tensor");
  TORCH_CHECK(t.numel() == numel, name, " has ", t.numel(), " elements, expected ", numel);
}

void check_f32(const at::Tensor& t, const char* name, int64_t numel) {
  check(t, name, numel);
  TORCH_CHECK(t.scalar_type() == at::kFloat, name, " must be float32");
}

bool is_bf16(const at::Tensor& t) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16,
              "fused cell: float32 or bfloat16 tensors only");
  return t.scalar_type() == at::kBFloat16;
}

void cell_forward(at::Tensor z, at::Tensor c, at::Tensor scratch, at::Tensor acts_out, at::Tensor c_out,
                  at::Tensor h_out) {
  const int64_t HB = c.numel();
  check_f32(c, "c", HB), check_f32(scratch, "scratch", 4 * HB);
  check(z, "z", 4 * HB), check(acts_out, "acts_out", 4 * HB), check(c_out, "c_out", HB), check(h_out, "h_out", HB);
  const bool bf = is_bf16(z);
  for (const auto* t : {&acts_out, &c_out, &h_out})
    TORCH_CHECK(is_bf16(*t) == bf, "fused cell: the outputs must have z's dtype");
  float* cp = c.data_ptr<float>();
  float* sp = scratch.data_ptr<float>();
  if (bf)
    forward_loops<BF16>(ptr<BF16>(z), cp, sp, ptr<BF16>(acts_out), ptr<BF16>(c_out), ptr<BF16>(h_out), HB);
  else
    forward_loops<F32>(ptr<F32>(z), cp, sp, ptr<F32>(acts_out), ptr<F32>(c_out), ptr<F32>(h_out), HB);
}

void cell_backward(at::Tensor dh_a, c10::optional<at::Tensor> dh_b, at::Tensor A, at::Tensor G, at::Tensor O,
                   at::Tensor f, at::Tensor dc, at::Tensor dz_out) {
  const int64_t HB = dc.numel();
  check_f32(dh_a, "dh_a", HB), check_f32(A, "A", HB), check_f32(G, "G", 3 * HB), check_f32(O, "O", HB);
  check_f32(f, "f", HB), check_f32(dc, "dc", HB), check(dz_out, "dz_out", 4 * HB);
  const bool bf = is_bf16(dz_out);
  const bool has_b = dh_b.has_value() && dh_b->defined();
  if (has_b) check(*dh_b, "dh_b", HB);
  const bool bb = has_b && is_bf16(*dh_b);
  const float* a = dh_a.data_ptr<float>();
  const float *Ap = A.data_ptr<float>(), *Gp = G.data_ptr<float>(), *Op = O.data_ptr<float>();
  const float* fp = f.data_ptr<float>();
  float* dcp = dc.data_ptr<float>();
  if (bf && bb)
    backward_loop<BF16, BF16>(a, ptr<BF16>(*dh_b), Ap, Gp, Op, fp, dcp, ptr<BF16>(dz_out), HB);
  else if (bf)
    backward_loop<BF16, F32>(a, has_b ? ptr<F32>(*dh_b) : nullptr, Ap, Gp, Op, fp, dcp, ptr<BF16>(dz_out), HB);
  else if (bb)
    backward_loop<F32, BF16>(a, ptr<BF16>(*dh_b), Ap, Gp, Op, fp, dcp, ptr<F32>(dz_out), HB);
  else
    backward_loop<F32, F32>(a, has_b ? ptr<F32>(*dh_b) : nullptr, Ap, Gp, Op, fp, dcp, ptr<F32>(dz_out), HB);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("cell_forward", &cell_forward, "one LSTM cell step in place (see _fused.cpp)");
  m.def("cell_backward", &cell_backward, "one reverse LSTM cell step in place (see _fused.cpp)");
}
