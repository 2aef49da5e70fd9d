// CPU stand-in for the cuBLASLt subset the generated whole-block code uses (block_gemm.cuh):
// descriptors hold their attributes, the heuristic returns one "algorithm", and
// cublasLtMatmul runs a plain loop with cuBLASLt's column-major semantics
// (D = alpha·op(A)·op(B) + beta·C, bias epilogue per row of D, strided batches).
// DELTAC_EMU_NO_BROADCAST=1 makes the heuristic refuse a batch stride of 0, to exercise
// the per-batch fallback; DELTAC_EMU_NO_BROADCAST=matmul makes cublasLtMatmul refuse it
// (CUBLAS_STATUS_NOT_SUPPORTED) after the heuristic offered an algorithm.
// Alignment, as documented: the heuristic does not see the matrix pointers and assumes the
// preference's CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_{A,B,C,D}_BYTES (default 256); it reads the
// bias alignment from the bias pointer it is given. The "algorithm" it returns records those
// alignments, and cublasLtMatmul refuses (CUBLAS_STATUS_INVALID_VALUE) any matrix or bias of
// any batch that is less aligned than its algorithm was chosen for.
#pragma once
#include "cuda_runtime.h"
#include "cuda_fp16.h"
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

typedef enum { CUDA_R_16F = 2, CUDA_R_32F = 0 } cudaDataType_t;
typedef enum { CUBLAS_COMPUTE_32F = 68 } cublasComputeType_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum {
  CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_NOT_INITIALIZED = 1, CUBLAS_STATUS_INVALID_VALUE = 7, CUBLAS_STATUS_NOT_SUPPORTED = 15
} cublasStatus_t;
typedef enum { CUBLASLT_EPILOGUE_DEFAULT = 1, CUBLASLT_EPILOGUE_BIAS = 4 } cublasLtEpilogue_t;
typedef enum {
  CUBLASLT_MATMUL_DESC_TRANSA = 3, CUBLASLT_MATMUL_DESC_TRANSB = 4, CUBLASLT_MATMUL_DESC_EPILOGUE = 7,
  CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE = 10
} cublasLtMatmulDescAttributes_t;
typedef enum { CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT = 5, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET = 6 } cublasLtMatrixLayoutAttribute_t;
typedef enum {
  CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8
} cublasLtMatmulPreferenceAttributes_t;

struct EmuLtHandle { int magic; };
struct EmuLtDesc { cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N; uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT; const void* bias = nullptr; int64_t bias_stride = 0; };
struct EmuLtLayout { cudaDataType_t type; uint64_t rows, cols; int64_t ld; int32_t batch = 1; int64_t stride = 0; };
struct EmuLtPref { size_t ws = 0; uint32_t align[4] = {256, 256, 256, 256}; };
typedef EmuLtHandle* cublasLtHandle_t;
typedef EmuLtDesc* cublasLtMatmulDesc_t;
typedef EmuLtLayout* cublasLtMatrixLayout_t;
typedef EmuLtPref* cublasLtMatmulPreference_t;
struct cublasLtMatmulAlgo_t { uint64_t data[8]; };
struct cublasLtMatmulHeuristicResult_t { cublasLtMatmulAlgo_t algo; size_t workspaceSize; cublasStatus_t state; float wavesCount; int reserved[4]; };

inline int emu_lt_matmuls = 0;

inline cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* d, cublasComputeType_t c, cudaDataType_t s) {
  if (c != CUBLAS_COMPUTE_32F || s != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  *d = new EmuLtDesc();
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { delete d; return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void* v, size_t n) {
  switch (a) {
    case CUBLASLT_MATMUL_DESC_TRANSA: if (n != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE; d->ta = *static_cast<const cublasOperation_t*>(v); break;
    case CUBLASLT_MATMUL_DESC_TRANSB: if (n != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE; d->tb = *static_cast<const cublasOperation_t*>(v); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: if (n != sizeof(uint32_t)) return CUBLAS_STATUS_INVALID_VALUE; d->epilogue = *static_cast<const uint32_t*>(v); break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: if (n != sizeof(void*)) return CUBLAS_STATUS_INVALID_VALUE; d->bias = *static_cast<const void* const*>(v); break;
    case CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE: if (n != sizeof(int64_t)) return CUBLAS_STATUS_INVALID_VALUE; d->bias_stride = *static_cast<const int64_t*>(v); break;
    default: return CUBLAS_STATUS_INVALID_VALUE;
  }
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* l, cudaDataType_t t, uint64_t rows, uint64_t cols, int64_t ld) {
  if (ld < static_cast<int64_t>(rows)) return CUBLAS_STATUS_INVALID_VALUE;
  *l = new EmuLtLayout{t, rows, cols, ld};
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { delete l; return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t a, const void* v, size_t n) {
  if (a == CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT && n == sizeof(int32_t)) l->batch = *static_cast<const int32_t*>(v);
  else if (a == CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET && n == sizeof(int64_t)) l->stride = *static_cast<const int64_t*>(v);
  else return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* p) { *p = new EmuLtPref(); return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) { delete p; return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t a, const void* v, size_t n) {
  if (a >= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES && a <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES) {
    if (n != sizeof(uint32_t)) return CUBLAS_STATUS_INVALID_VALUE;
    p->align[a - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES] = *static_cast<const uint32_t*>(v);
    return CUBLAS_STATUS_SUCCESS;
  }
  if (a != CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES || n != sizeof(size_t)) return CUBLAS_STATUS_INVALID_VALUE;
  p->ws = *static_cast<const size_t*>(v);
  return CUBLAS_STATUS_SUCCESS;
}
inline uint64_t emu_lt_alignment(const void* p) {
  const uintptr_t bits = reinterpret_cast<uintptr_t>(p) | 256u;
  return bits & (~bits + 1);
}

inline cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                     cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatmulPreference_t pref, int req,
                                                     cublasLtMatmulHeuristicResult_t* out, int* count) {
  if (!h || h->magic != 0x17) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (req < 1) return CUBLAS_STATUS_INVALID_VALUE;
  const char* nb = std::getenv("DELTAC_EMU_NO_BROADCAST");
  const bool broadcast = (a->batch > 1 && a->stride == 0) || (b->batch > 1 && b->stride == 0);
  *count = nb && *nb == '1' && broadcast ? 0 : 1;
  out[0] = {};
  out[0].state = CUBLAS_STATUS_SUCCESS;
  for (int i = 0; i < 4; ++i) out[0].algo.data[i] = pref->align[i];
  const uint64_t bias_align = emu_lt_alignment(desc->bias);  // kernels need at most 16 bytes of the bias
  out[0].algo.data[4] = bias_align < 16 ? bias_align : 16;
  return CUBLAS_STATUS_SUCCESS;
}

inline float emu_lt_load(const void* p, cudaDataType_t t, size_t i) {
  return t == CUDA_R_16F ? __half2float(static_cast<const __half*>(p)[i]) : static_cast<const float*>(p)[i];
}

inline cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void* alpha, const void* A, cublasLtMatrixLayout_t la,
                                     const void* B, cublasLtMatrixLayout_t lb, const void* beta, const void* C, cublasLtMatrixLayout_t lc,
                                     void* D, cublasLtMatrixLayout_t ld, const cublasLtMatmulAlgo_t* algo, void* ws, size_t ws_bytes,
                                     cudaStream_t) {
  if (!h || h->magic != 0x17 || !algo) return CUBLAS_STATUS_NOT_INITIALIZED;
  (void)ws, (void)ws_bytes;
  const char* nb = std::getenv("DELTAC_EMU_NO_BROADCAST");
  if (nb && std::strcmp(nb, "matmul") == 0 && ((la->batch > 1 && la->stride == 0) || (lb->batch > 1 && lb->stride == 0)))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  ++emu_lt_matmuls;
  // op(A) is m×k, op(B) is k×n, D is m×n (column-major)
  const uint64_t m = ld->rows, n = ld->cols;
  const uint64_t k = d->ta == CUBLAS_OP_N ? la->cols : la->rows;
  if ((d->ta == CUBLAS_OP_N ? la->rows : la->cols) != m || (d->tb == CUBLAS_OP_N ? lb->cols : lb->rows) != n ||
      (d->tb == CUBLAS_OP_N ? lb->rows : lb->cols) != k || lc->rows != m || lc->cols != n)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (la->batch != ld->batch || lb->batch != ld->batch || lc->batch != ld->batch) return CUBLAS_STATUS_INVALID_VALUE;
  if (d->epilogue == CUBLASLT_EPILOGUE_BIAS && !d->bias) return CUBLAS_STATUS_INVALID_VALUE;
  const size_t esize = ld->type == CUDA_R_16F ? 2 : 4;
  for (int32_t bt = 0; bt < ld->batch; ++bt) {  // every batch as aligned as the algorithm was chosen for
    const void* at[5] = {static_cast<const char*>(A) + bt * la->stride * esize, static_cast<const char*>(B) + bt * lb->stride * esize,
                         static_cast<const char*>(C) + bt * lc->stride * esize, static_cast<const char*>(D) + bt * ld->stride * esize,
                         d->epilogue == CUBLASLT_EPILOGUE_BIAS ? static_cast<const char*>(d->bias) + bt * d->bias_stride * esize : nullptr};
    for (int i = 0; i < 5; ++i)
      if (at[i] && emu_lt_alignment(at[i]) < algo->data[i]) {
        std::fprintf(stderr, "cublasLtMatmul: %s of batch %d is %llu-byte aligned, its algorithm needs %llu\n", "A\0B\0C\0D\0bias" + 2 * i, bt,
                     static_cast<unsigned long long>(emu_lt_alignment(at[i])), static_cast<unsigned long long>(algo->data[i]));
        return CUBLAS_STATUS_INVALID_VALUE;
      }
  }
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  for (int32_t bt = 0; bt < ld->batch; ++bt) {
    for (uint64_t j = 0; j < n; ++j) {
      for (uint64_t i = 0; i < m; ++i) {
        float acc = 0.f;
        for (uint64_t p = 0; p < k; ++p) {
          const size_t ia = bt * la->stride + (d->ta == CUBLAS_OP_N ? i + p * la->ld : p + i * la->ld);
          const size_t ib = bt * lb->stride + (d->tb == CUBLAS_OP_N ? p + j * lb->ld : j + p * lb->ld);
          acc += emu_lt_load(A, la->type, ia) * emu_lt_load(B, lb->type, ib);
        }
        float v = al * acc;
        if (be != 0.f) v += be * emu_lt_load(C, lc->type, bt * lc->stride + i + j * lc->ld);
        if (d->epilogue == CUBLASLT_EPILOGUE_BIAS) v += emu_lt_load(d->bias, ld->type, bt * d->bias_stride + i);
        const size_t id = bt * ld->stride + i + j * ld->ld;
        if (ld->type == CUDA_R_16F) static_cast<__half*>(D)[id] = __float2half_rn(v);
        else static_cast<float*>(D)[id] = v;
      }
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}
