/* The fused softmax cross-entropy row kernel: loss, gradient and per-row statistics in one pass over memory.
 *
 * Per row i of an (n, K) array of logits z (class axis contiguous, any row stride), with target coefficients in
 * factored form (index targets: a_ic = a_y[i] [c == y_i] + u_i w_c; probability targets:
 * a_ic = s_i w_c (alpha T_ic + beta)) and their total o_i = sum_c a_ic:
 *
 *   zc = softcap tanh(z / softcap) (or z),  m = max_c zc,  sh = zc - m,  S = sum_c exp(sh),  lse = m + log S
 *   loss_i = o_i log S - sum_c a_ic sh_ic + z_loss o_i lse^2
 *   g_ic   = r_i (o_i (1 + 2 z_loss lse_i) exp(sh_ic) / S - a_ic) (1 - (zc_ic / softcap)^2)
 *
 * Rules (docs/semantics.md): terms with a zero coefficient are skipped, never multiplied (0 * inf = 0); a row whose
 * max is infinite uses the limit pattern sh = 0 where zc == m and -inf elsewhere; NaN anywhere in a row makes its
 * gradient NaN, and its loss NaN unless the row carries no target weight (o = 0, an ignored row: loss 0). float16 / bfloat16 / float32 are computed in float32, float64 in float64.
 *
 * Memory traffic per row: pass 1 reads the logits (max, NaN check; converting or soft-capping into a scratch row
 * when needed), pass 2 reads them again from cache and stores exp(sh) into the gradient row (or a scratch row),
 * pass 3 scales that row in cache and writes the gradient once. `grad` may alias `z`: every element is read before
 * the same element is written, and the target logit is read before pass 2.
 *
 * Built without -ffast-math. Runtime dispatch: gcc target_clones (x86-64-v4 = AVX-512, v3 = AVX2 + FMA + F16C,
 * baseline), OpenMP over contiguous row ranges. The file includes itself once per compute type.
 */
#ifndef CE_TEMPLATE

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define CE_X86 1
#include <immintrin.h>
#define CE_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CE_CLONES
#endif

enum { CE_F16 = 0, CE_BF16 = 1, CE_F32 = 2, CE_F64 = 3 };
#define CE_INLINE __attribute__((always_inline)) /* helpers take the caller's target clone */
#define CE_CHUNK 1024 /* elements per float32 partial sum; the partial sums are added in float64 */

typedef struct {
    int64_t n, k;
    const void *z;
    int64_t z_stride; /* bytes between rows */
    int32_t z_type;
    int32_t has_softcap;
    const double *o;
    const int64_t *y; /* index targets (NULL: probability targets) */
    const double *a_y;
    const double *u; /* may be NULL */
    const void *probs;
    int64_t p_stride;
    int32_t p_type;
    int32_t threads;
    const double *s;
    double alpha, beta;
    const double *w; /* may be NULL */
    double z_loss, softcap;
    double *loss, *lse; /* lse may be NULL */
    void *grad;         /* may be NULL (loss only) */
    int64_t g_stride;
    int32_t g_type;
    int32_t pad_;
    const double *row_scale; /* may be NULL: use scale */
    double scale;
    double *entropy, *p_target; /* may be NULL */
    int64_t *argmax;            /* may be NULL */
} ce_args;

static inline CE_INLINE float ce_f32_from_bits(uint32_t b) { float f; memcpy(&f, &b, 4); return f; }
static inline CE_INLINE uint32_t ce_bits_f32(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }
static inline CE_INLINE double ce_f64_from_bits(uint64_t b) { double f; memcpy(&f, &b, 8); return f; }
static inline CE_INLINE uint64_t ce_bits_f64(double f) { uint64_t b; memcpy(&b, &f, 8); return b; }

static inline CE_INLINE float ce_bf16_load(uint16_t h) { return ce_f32_from_bits((uint32_t)h << 16); }

static inline CE_INLINE uint16_t ce_bf16_store(float f) { /* round to nearest even; NaN stays NaN (quiet) */
    uint32_t b = ce_bits_f32(f);
    uint32_t r = (b + 0x7FFFu + ((b >> 16) & 1u)) >> 16;
    return (f != f) ? (uint16_t)((b >> 16) | 0x40u) : (uint16_t)r;
}

/* float16 <-> float32 by integer operations, so that the loops vectorise on every target (no F16C needed). */
static inline CE_INLINE float ce_f16_load(uint16_t h) {
    uint32_t em = (uint32_t)(h & 0x7FFFu) << 13, sign = (uint32_t)(h & 0x8000u) << 16;
    float scaled = ce_f32_from_bits(em) * 0x1p112f; /* normals and subnormals, exactly */
    uint32_t b = em >= (0x7C00u << 13) ? (em | 0x7F800000u) : ce_bits_f32(scaled); /* inf, NaN */
    return ce_f32_from_bits(b | sign);
}

static inline CE_INLINE uint16_t ce_f16_store(float f) { /* round to nearest even (F. Giesen's method) */
    uint32_t b = ce_bits_f32(f), sign = b & 0x80000000u, a = b ^ sign;
    uint32_t big = a > 0x7F800000u ? 0x7E00u : 0x7C00u;                                    /* NaN, inf, overflow */
    uint32_t sub = ce_bits_f32(ce_f32_from_bits(a) + 0.5f) - 0x3F000000u;                  /* subnormal results */
    uint32_t norm = (a + 0xC8000FFFu + ((a >> 13) & 1u)) >> 13;                            /* normal results */
    uint32_t h = a >= 0x47800000u ? big : (a < 0x38800000u ? sub : norm);
    return (uint16_t)(h | (sign >> 16));
}

/* exp in float32, <= 1 ulp over the whole range (measured by tests/core/test_fused.py): Cody-Waite reduction
 * x = n ln2 + r, the cephes degree-5 polynomial on |r| <= ln2/2, and 2^n applied as two exact factors so that
 * subnormal results round once. inf -> inf, -inf -> 0, NaN -> NaN. */
static inline CE_INLINE float ce_expf_core(float x) { /* x already in [-104, 89] (or NaN) */
    float t = x * 1.44269504088896341f + 12582912.0f; /* 1.5 * 2^23: rounds x / ln2 to an integer */
    float nf = t - 12582912.0f;
    int32_t n = (int32_t)(ce_bits_f32(t) - 0x4B400000u);
    float r = x - nf * 0.693359375f;
    r = r - nf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t n1 = n >> 1, n2 = n - n1;
    return p * ce_f32_from_bits((uint32_t)(n1 + 127) << 23) * ce_f32_from_bits((uint32_t)(n2 + 127) << 23);
}

static inline CE_INLINE float ce_expf(float x) {
    x = x < -104.0f ? -104.0f : x; /* NaN passes both clamps */
    x = x > 89.0f ? 89.0f : x;
    return ce_expf_core(x);
}

/* exp of x <= 0 that is never NaN (a shifted logit): one max instruction as the clamp. */
static inline CE_INLINE float ce_expf_neg(float x) { return ce_expf_core(x > -104.0f ? x : -104.0f); }

/* exp in float64: the same reduction with a degree-13 Taylor polynomial (truncation < 1e-17 on |r| <= ln2/2). */
static inline CE_INLINE double ce_exp_core(double x) { /* x already in [-746, 710] (or NaN) */
    double t = x * 1.4426950408889634 + 6755399441055744.0; /* 1.5 * 2^52 */
    double nf = t - 6755399441055744.0;
    int64_t n = (int64_t)(ce_bits_f64(t) - 0x4338000000000000ull);
    double r = x - nf * 6.93147180369123816490e-01;
    r = r - nf * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * (r * r) + r + 1.0;
    int64_t n1 = n >> 1, n2 = n - n1;
    return p * ce_f64_from_bits((uint64_t)(n1 + 1023) << 52) * ce_f64_from_bits((uint64_t)(n2 + 1023) << 52);
}

static inline CE_INLINE double ce_exp(double x) {
    x = x < -746.0 ? -746.0 : x;
    x = x > 710.0 ? 710.0 : x;
    return ce_exp_core(x);
}

static inline CE_INLINE double ce_exp_neg(double x) { return ce_exp_core(x > -746.0 ? x : -746.0); }

#ifdef CE_X86
/* The hot pass 2 (no coefficient or entropy sums) in AVX-512 intrinsics: the same reduction and polynomial as
 * ce_expf, with vscalefps applying 2^n (exact, overflow / underflow correctly rounded) in one instruction instead of
 * the portable two-factor scaling. Returns sum_c exp(src_c - m) (float32 partial sums over CE_CHUNK, added in
 * double); stores the exponentials into e when e is not NULL. */
__attribute__((target("avx512f,fma"))) static double ce_pass2_avx512(const float *src, float m, float *e,
                                                                       int64_t k) {
    const __m512 vm = _mm512_set1_ps(m), lo = _mm512_set1_ps(-104.0f), log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 c1 = _mm512_set1_ps(0.693359375f), c2 = _mm512_set1_ps(-2.12194440e-4f);
    const __m512 p0 = _mm512_set1_ps(1.9875691500e-4f), p1 = _mm512_set1_ps(1.3981999507e-3f);
    const __m512 p2 = _mm512_set1_ps(8.3334519073e-3f), p3 = _mm512_set1_ps(4.1665795894e-2f);
    const __m512 p4 = _mm512_set1_ps(1.6666665459e-1f), p5 = _mm512_set1_ps(5.0000001201e-1f);
    const __m512 one = _mm512_set1_ps(1.0f);
    double total = 0.0;
    for (int64_t c0 = 0; c0 < k; c0 += CE_CHUNK) {
        const int64_t c1e = c0 + CE_CHUNK < k ? c0 + CE_CHUNK : k;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t c = c0; c < c1e; c += 16) {
            const __mmask16 mask = c1e - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (c1e - c)) - 1u);
            __m512 x = _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, src + c), vm);
            x = _mm512_max_ps(x, lo); /* no NaN here: rows with NaN never reach pass 2 */
            __m512 nf = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            __m512 r = _mm512_fnmadd_ps(nf, c1, x);
            r = _mm512_fnmadd_ps(nf, c2, r);
            __m512 p = _mm512_fmadd_ps(p0, r, p1);
            p = _mm512_fmadd_ps(p, r, p2);
            p = _mm512_fmadd_ps(p, r, p3);
            p = _mm512_fmadd_ps(p, r, p4);
            p = _mm512_fmadd_ps(p, r, p5);
            p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, one));
            p = _mm512_scalef_ps(p, nf);
            if (e) _mm512_mask_storeu_ps(e + c, mask, p);
            acc = _mm512_mask_add_ps(acc, mask, acc, p);
        }
        total += (double)_mm512_reduce_add_ps(acc);
    }
    return total;
}

static int ce_use_avx512 = -1; /* -1: not probed yet; set before any parallel region */

static void ce_probe(void) {
    if (ce_use_avx512 < 0) {
        __builtin_cpu_init();
        ce_use_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    }
}
#endif

/* Tests: 0 runs the portable loops even where the AVX-512 pass 2 could run; 1 restores the CPU's choice. */
void ce_set_intrinsics(int on) {
#ifdef CE_X86
    ce_use_avx512 = -1;
    ce_probe();
    if (!on) ce_use_avx512 = 0;
#else
    (void)on;
#endif
}

/* tanh in float32: odd Taylor series through x^15 for |x| < 0.55, else 1 - 2 / (exp(2|x|) + 1). */
static inline CE_INLINE float ce_tanhf(float x) {
    float ax = fabsf(x), x2 = x * x;
    float q = -929569.0f / 638512875.0f;
    q = q * x2 + 21844.0f / 6081075.0f;
    q = q * x2 - 1382.0f / 155925.0f;
    q = q * x2 + 62.0f / 2835.0f;
    q = q * x2 - 17.0f / 315.0f;
    q = q * x2 + 2.0f / 15.0f;
    q = q * x2 - 1.0f / 3.0f;
    float small = x + x * x2 * q;
    float big = copysignf(1.0f - 2.0f / (ce_expf(2.0f * ax) + 1.0f), x);
    return ax < 0.55f ? small : big;
}

static inline CE_INLINE float ce_tanh_f(float x) { return ce_tanhf(x); }
static inline CE_INLINE double ce_tanh_d(double x) { return tanh(x); }
static inline CE_INLINE float ce_exp_neg_f(float x) { return ce_expf_neg(x); }
static inline CE_INLINE double ce_exp_neg_d(double x) { return ce_exp_neg(x); }

#define CE_TEMPLATE 1
#define T float
#define SFX(name) name##_f
#include "_fused.c"
#undef T
#undef SFX
#define T double
#define SFX(name) name##_d
#include "_fused.c"
#undef T
#undef SFX

static void *ce_alloc(size_t bytes) {
    void *p = NULL;
    return posix_memalign(&p, 64, bytes ? bytes : 64) == 0 ? p : NULL;
}

/* Returns 0, or -1 when scratch memory could not be allocated. */
int ce_softmax_rows(const ce_args *A) {
    int64_t n = A->n, k = A->k;
    if (n <= 0) return 0;
#ifdef CE_X86
    ce_probe();
#endif
    int f64 = A->z_type == CE_F64;
    size_t tsize = f64 ? sizeof(double) : sizeof(float);
    void *w = NULL;
    if (A->w) { /* class weights in the compute type, converted once */
        w = ce_alloc((size_t)k * tsize);
        if (!w) return -1;
        for (int64_t c = 0; c < k; c++) {
            if (f64) ((double *)w)[c] = A->w[c];
            else ((float *)w)[c] = (float)A->w[c];
        }
    }
    const int64_t block = k >= (1 << 18) ? 1 : (1 << 18) / k, nblocks = (n + block - 1) / block;
    int threads = A->threads < 1 ? 1 : A->threads;
    if (threads > nblocks) threads = (int)nblocks;
    int failed = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(| : failed)
#endif
    {
        void *scratch = ce_alloc(3 * (size_t)k * tsize);
        if (!scratch) failed = 1;
        /* dynamic blocks of about 1 MiB of logits: a thread that the OS runs more gets more rows */
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (int64_t b = 0; b < nblocks; b++) {
            int64_t r0 = b * block, r1 = r0 + block < n ? r0 + block : n;
            if (!scratch) continue;
            if (f64) rows_d(A, (const double *)w, r0, r1, (double *)scratch);
            else rows_f(A, (const float *)w, r0, r1, (float *)scratch);
        }
        free(scratch);
    }
    free(w);
    return failed ? -1 : 0;
}

/* Elementwise exp over a float32 / float64 array (for measuring the vector exp against a reference). */
CE_CLONES void ce_expf_array(const float *x, float *out, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = ce_expf(x[i]);
}

CE_CLONES void ce_exp_array(const double *x, double *out, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = ce_exp(x[i]);
}

/* float32 -> float16 bits (h) and float16 bits -> float32 (back), elementwise (to test the conversions). */
CE_CLONES void ce_f16_convert(const float *x, uint16_t *h, const uint16_t *h_in, float *back, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        h[i] = ce_f16_store(x[i]);
        back[i] = ce_f16_load(h_in[i]);
    }
}

/* The instruction set the dispatcher picks on this CPU. */
const char *ce_isa(void) {
#ifdef CE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return "avx512";
    if (__builtin_cpu_supports("x86-64-v3")) return "avx2";
    return "baseline";
#else
    return "generic";
#endif
}

#else /* CE_TEMPLATE: the row kernel for compute type T (float or double) */

/* Pass 1: zc = (softcap) z converted to T into dst (or read in place), returns the max; *bad set on NaN. */
static inline CE_INLINE T SFX(load_max)(const ce_args *A, const char *zrow, T *dst, const T **src, int *bad) {
    int64_t k = A->k;
    T m = -INFINITY;
    int nan = 0;
    const int native = A->z_type == ((sizeof(T) == 8) ? CE_F64 : CE_F32);
    if (native && !A->has_softcap) {
        const T *z = (const T *)zrow;
#pragma omp simd reduction(max : m) reduction(| : nan)
        for (int64_t c = 0; c < k; c++) {
            T x = z[c];
            m = x > m ? x : m;
            nan |= x != x;
        }
        *src = z;
        *bad = nan;
        return m;
    }
    const T cap = (T)A->softcap;
#define CE_LOAD_LOOP(LOAD, CAP)                                      \
    _Pragma("omp simd reduction(max : m) reduction(| : nan)")        \
    for (int64_t c = 0; c < k; c++) {                                \
        T x = (T)(LOAD);                                             \
        if (CAP) x = cap * SFX(ce_tanh)(x / cap);                    \
        dst[c] = x;                                                  \
        m = x > m ? x : m;                                           \
        nan |= x != x;                                               \
    }
#define CE_LOAD_SWITCH(CAP)                                                                               \
    switch (A->z_type) {                                                                                  \
    case CE_F16: { const uint16_t *z = (const uint16_t *)zrow; CE_LOAD_LOOP(ce_f16_load(z[c]), CAP) break; } \
    case CE_BF16: { const uint16_t *z = (const uint16_t *)zrow; CE_LOAD_LOOP(ce_bf16_load(z[c]), CAP) break; } \
    case CE_F32: { const float *z = (const float *)zrow; CE_LOAD_LOOP(z[c], CAP) break; }                 \
    default: { const double *z = (const double *)zrow; CE_LOAD_LOOP(z[c], CAP) break; }                   \
    }
    if (A->has_softcap) {
        CE_LOAD_SWITCH(1)
    } else {
        CE_LOAD_SWITCH(0)
    }
#undef CE_LOAD_SWITCH
#undef CE_LOAD_LOOP
    *src = dst;
    *bad = nan;
    return m;
}

/* Probability-target coefficients a_c = s w_c (alpha T_c + beta) of one row, in T. */
static inline CE_INLINE void SFX(load_coef)(const ce_args *A, const T *w, int64_t i, T *dst) {
    int64_t k = A->k;
    const char *prow = (const char *)A->probs + i * A->p_stride;
    const T sa = (T)(A->s[i] * A->alpha), sb = (T)(A->s[i] * A->beta);
#define CE_COEF_LOOP(LOAD)                                    \
    _Pragma("omp simd")                                       \
    for (int64_t c = 0; c < k; c++) {                         \
        T a = sa * (T)(LOAD) + sb;                            \
        dst[c] = w ? a * w[c] : a;                            \
    }
    switch (A->p_type) {
    case CE_F16: { const uint16_t *p = (const uint16_t *)prow; CE_COEF_LOOP(ce_f16_load(p[c])) break; }
    case CE_BF16: { const uint16_t *p = (const uint16_t *)prow; CE_COEF_LOOP(ce_bf16_load(p[c])) break; }
    case CE_F32: { const float *p = (const float *)prow; CE_COEF_LOOP(p[c]) break; }
    default: { const double *p = (const double *)prow; CE_COEF_LOOP(p[c]) break; }
    }
#undef CE_COEF_LOOP
}

/* Write one gradient row: g_c = (gk e_c - gu coef_c) dcap_c, in the gradient's dtype. coef: w (index targets, u
 * term), the dense coefficients (probability targets), or NULL (coef_c = 1). */
static inline CE_INLINE void SFX(store_grad)(const ce_args *A, char *grow, const T *e, T gk, T gu, const T *coef,
                                   const T *zc) {
    int64_t k = A->k;
    const T inv = A->has_softcap ? (T)1 / (T)A->softcap : (T)0;
    const int has_cap = A->has_softcap;
#define CE_GRAD_LOOP(STORE)                                  \
    _Pragma("omp simd")                                      \
    for (int64_t c = 0; c < k; c++) {                        \
        T g = gk * e[c] - gu * (coef ? coef[c] : (T)1);      \
        if (has_cap) {                                       \
            T q = zc[c] * inv;                               \
            g *= (T)1 - q * q;                               \
        }                                                    \
        STORE;                                               \
    }
    switch (A->g_type) {
    case CE_F16: { uint16_t *g_ = (uint16_t *)grow; CE_GRAD_LOOP(g_[c] = ce_f16_store((float)g)) break; }
    case CE_BF16: { uint16_t *g_ = (uint16_t *)grow; CE_GRAD_LOOP(g_[c] = ce_bf16_store((float)g)) break; }
    case CE_F32: { float *g_ = (float *)grow; CE_GRAD_LOOP(g_[c] = (float)g) break; }
    default: { double *g_ = (double *)grow; CE_GRAD_LOOP(g_[c] = (double)g) break; }
    }
#undef CE_GRAD_LOOP
}

/* Pass 2 over one row: S = sum exp(sh) (stored into e when STORE), lin = sum sh (MODE 1) or sum coef sh (MODE 2, 3;
 * zero coefficients skipped), ent = sum exp(sh) sh (ENT). The flags are constants at every call site, so each
 * combination compiles to its own simple loop. float partial sums over CE_CHUNK elements are added in double. */
static inline CE_INLINE void SFX(pass2)(const T *src, T m, T *e, const T *coef, int64_t k, int STORE, int MODE,
                                        int ENT, double *S, double *lin, double *ent) {
#ifdef CE_X86
    if (sizeof(T) == 4 && MODE == 0 && !ENT && ce_use_avx512 == 1) {
        *S = ce_pass2_avx512((const float *)src, (float)m, STORE ? (float *)e : NULL, k);
        *lin = *ent = 0;
        return;
    }
#endif
    double s_ = 0, l_ = 0, n_ = 0;
    for (int64_t c0 = 0; c0 < k; c0 += CE_CHUNK) {
        const int64_t c1 = c0 + CE_CHUNK < k ? c0 + CE_CHUNK : k;
        T ps = 0, pl = 0, pe = 0;
#pragma omp simd reduction(+ : ps, pl, pe)
        for (int64_t c = c0; c < c1; c++) {
            T sh = src[c] - m;
            T ex = SFX(ce_exp_neg)(sh);
            if (STORE) e[c] = ex;
            ps += ex;
            if (MODE == 1) pl += sh;
            if (MODE >= 2) pl += coef[c] != 0 ? coef[c] * sh : (T)0;
            if (ENT) pe += ex != 0 ? ex * sh : (T)0;
        }
        s_ += ps;
        l_ += pl;
        n_ += pe;
    }
    *S = s_;
    *lin = l_;
    *ent = n_;
}

static inline void SFX(store_one)(const ce_args *A, char *grow, int64_t c, double g) {
    switch (A->g_type) {
    case CE_F16: ((uint16_t *)grow)[c] = ce_f16_store((float)g); break;
    case CE_BF16: ((uint16_t *)grow)[c] = ce_bf16_store((float)g); break;
    case CE_F32: ((float *)grow)[c] = (float)g; break;
    default: ((double *)grow)[c] = g; break;
    }
}

static void SFX(nan_row)(const ce_args *A, int64_t i, const T *src) {
    /* a row with no target weight (o = 0: every a_ic = 0) costs exactly 0, NaN logits or not (the masked product);
       its gradient is NaN, as PyTorch's for an ignored NaN row */
    if (A->loss) A->loss[i] = A->o[i] == 0 ? 0.0 : NAN;
    if (A->lse) A->lse[i] = NAN;
    if (A->entropy) A->entropy[i] = NAN;
    if (A->p_target && A->y) {
        int ignored = A->a_y[i] == 0 && !(A->u && A->u[i] != 0);
        A->p_target[i] = ignored ? 0.0 : NAN;
    }
    if (A->argmax) {
        int64_t c = 0;
        while (c < A->k && src[c] == src[c]) c++;
        A->argmax[i] = c;
    }
    if (A->grad) {
        char *grow = (char *)A->grad + i * A->g_stride;
        for (int64_t c = 0; c < A->k; c++) SFX(store_one)(A, grow, c, NAN);
    }
}

CE_CLONES void SFX(rows)(const ce_args *A, const T *w, int64_t r0, int64_t r1, T *scratch) {
    const int64_t k = A->k;
    T *s1 = scratch, *s2 = scratch + k, *s3 = scratch + 2 * k;
    const int index = A->y != NULL;
    const int native_grad = A->grad && A->g_type == ((sizeof(T) == 8) ? CE_F64 : CE_F32);
    const int want_ent = A->entropy != NULL;
    for (int64_t i = r0; i < r1; i++) {
        const char *zrow = (const char *)A->z + i * A->z_stride;
        char *grow = A->grad ? (char *)A->grad + i * A->g_stride : NULL;
        const T *src;
        int bad;
        T m = SFX(load_max)(A, zrow, s1, &src, &bad);
        if (bad) {
            SFX(nan_row)(A, i, src);
            continue;
        }
        T mshift = m;
        if (isinf(m)) { /* limit pattern: 0 where zc == m, -inf elsewhere (src may alias grad: s1 is scratch) */
#pragma omp simd
            for (int64_t c = 0; c < k; c++) s1[c] = src[c] == m ? (T)0 : (T)-INFINITY;
            src = s1;
            mshift = 0;
        }
        if (A->argmax) { /* the first maximum: whole blocks of 64 compared at once, then the block searched */
            int64_t c = 0;
            for (; c + 64 <= k; c += 64) {
                int hit = 0;
#pragma omp simd reduction(| : hit)
                for (int64_t j = 0; j < 64; j++) hit |= src[c + j] == mshift;
                if (hit) break;
            }
            while (src[c] != mshift) c++;
            A->argmax[i] = c;
        }
        const double o = A->o[i];
        const double u = index && A->u ? A->u[i] : 0.0;
        const double a_y = index ? A->a_y[i] : 0.0;
        const int64_t y = index ? A->y[i] : 0;
        double sh_y = 0.0, dcap_y = 1.0;
        if (index) { /* read before pass 2 may overwrite the row (grad aliasing z) */
            sh_y = (double)(src[y] - mshift);
            if (A->has_softcap) {
                double q = (double)src[y] / A->softcap;
                dcap_y = 1.0 - q * q;
            }
        }
        int mode; /* what pass 2 accumulates besides sum exp: 0 nothing, 1 sum sh, 2 sum w sh, 3 sum a sh */
        const T *coef = NULL;
        if (!index) {
            SFX(load_coef)(A, w, i, s3);
            coef = s3;
            mode = 3;
        } else if (u != 0) {
            coef = w;
            mode = w ? 2 : 1;
        } else {
            mode = 0;
        }
        T *e = native_grad ? (T *)grow : s2; /* exp(sh) lands in the gradient row when it has type T */
        double S = 0, lin = 0, ent = 0;
#define CE_P2(STORE, MODE, ENT) SFX(pass2)(src, mshift, e, coef, k, STORE, MODE, ENT, &S, &lin, &ent)
#define CE_P2_MODES(STORE, ENT) \
    switch (mode) { case 0: CE_P2(STORE, 0, ENT); break; case 1: CE_P2(STORE, 1, ENT); break; \
                    case 2: CE_P2(STORE, 2, ENT); break; default: CE_P2(STORE, 3, ENT); break; }
        if (A->grad) {
            if (want_ent) { CE_P2_MODES(1, 1) } else { CE_P2_MODES(1, 0) }
        } else {
            if (want_ent) { CE_P2_MODES(0, 1) } else { CE_P2_MODES(0, 0) }
        }
#undef CE_P2_MODES
#undef CE_P2
        const double logS = log(S), lse = (double)m + logS;
        double loss = o != 0 ? o * logS : 0.0;
        if (index) {
            if (a_y != 0) loss -= a_y * sh_y;
            if (u != 0) loss -= u * lin;
        } else {
            loss -= lin;
        }
        if (A->z_loss != 0 && o != 0) loss += A->z_loss * o * lse * lse;
        A->loss[i] = loss;
        if (A->lse) A->lse[i] = lse;
        if (want_ent) A->entropy[i] = logS - ent / S;
        if (A->p_target) A->p_target[i] = (a_y == 0 && u == 0) ? 0.0 : exp(sh_y) / S;
        if (!A->grad) continue;
        const double r = A->row_scale ? A->row_scale[i] : A->scale;
        const double kf = o == 0 ? 0.0 : o * (A->z_loss != 0 ? 1.0 + 2.0 * A->z_loss * lse : 1.0) / S;
        const double e_y = index ? (double)e[y] : 0.0;
        if (index) {
            SFX(store_grad)(A, grow, e, (T)(r * kf), (T)(r * u), u != 0 ? w : NULL, s1);
            double w_y = w ? (double)w[y] : 1.0;
            SFX(store_one)(A, grow, y, r * (kf * e_y - u * w_y - a_y) * dcap_y);
        } else {
            SFX(store_grad)(A, grow, e, (T)(r * kf), (T)r, s3, s1);
        }
    }
}

#endif /* CE_TEMPLATE */
