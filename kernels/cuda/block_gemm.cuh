// deltac whole-block entry: the GEMMs (conv_up, conv_out) through cuBLASLt (SPEC.md §1).
//
// Pasted into every generated `<id>.block.cu` after pyramid_conv.cuh. Row-major
// Linear layers map to column-major cuBLASLt as Dᵀ = op(W)·Aᵀ: W [n, k] row-major is a
// k×n column-major matrix used transposed, the activations A [rows, k] a k×rows one,
// the output D [rows, n] an n×rows one; the bias epilogue adds a vector of n per column
// of Dᵀ, i.e. per output channel, with its own stride per batch (the block's per-image
// pool term). fp16 or fp32 storage, fp32 accumulation (CUBLAS_COMPUTE_32F: no TF32).
// The heuristic is told the real alignment of every matrix (and sees the least aligned bias),
// since it cannot see the pointers and would otherwise assume 256 bytes; a shared W (batch
// stride 0) that cuBLASLt refuses, in the heuristic or at the call, falls back to one call per batch.
//
// Nothing here allocates device memory or synchronises: the cuBLASLt workspace is a
// slice of the caller's workspace, descriptors are host objects, and the heuristic's
// choice is cached per shape, so a call can be captured into a CUDA graph.
#pragma once

#include <cublasLt.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include <mutex>

namespace deltac {

/// Entry points return 0, a cudaError_t, or kCublasErrorBase + a cublasStatus_t.
constexpr int kCublasErrorBase = 100000;

template <typename T> struct LtType;
template <> struct LtType<float> {
  static constexpr cudaDataType_t value = CUDA_R_32F;
};
template <> struct LtType<__half> {
  static constexpr cudaDataType_t value = CUDA_R_16F;
};

/// Largest power of two up to 256 dividing every address a matrix's batches start at: its pointer
/// and, with more than one batch, its batch stride in bytes. cuBLASLt's heuristic does not see the
/// matrix pointers and assumes 256-byte alignment unless told (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*,
/// default 256), so the preference states what the call really passes.
inline uint32_t matrix_alignment(const void* p, long long stride_bytes, int batch) {
  uintptr_t bits = reinterpret_cast<uintptr_t>(p) | 256u;
  if (batch > 1) bits |= static_cast<uintptr_t>(stride_bytes);
  return static_cast<uint32_t>(bits & (~bits + 1));
}

/// The alignments of one call: cuBLASLt's A (= our W), B (= our activations), C/D (= our output)
/// and the bias (the heuristic reads that one from the bias pointer it is given).
struct LtAlign {
  uint32_t w = 256, a = 256, d = 256, bias = 256;
  unsigned long long key() const { return w + 257ull * (a + 257ull * (d + 257ull * bias)); }
};

/// The descriptors of one Linear call; destroyed with the object.
struct LtCall {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t w = nullptr, a = nullptr, d = nullptr;
  cublasStatus_t status = CUBLAS_STATUS_SUCCESS;

  void check(cublasStatus_t s) {
    if (status == CUBLAS_STATUS_SUCCESS) status = s;
  }
  LtCall(cudaDataType_t type, const void* bias, long long bias_stride, int rows, int n, int k, int batch) {
    check(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    if (status != CUBLAS_STATUS_SUCCESS) return;
    const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
    check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof(transa)));
    check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof(transb)));
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
    check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    check(cublasLtMatrixLayoutCreate(&w, type, k, n, k));
    check(cublasLtMatrixLayoutCreate(&a, type, k, rows, k));
    check(cublasLtMatrixLayoutCreate(&d, type, n, rows, n));
    if (status != CUBLAS_STATUS_SUCCESS || batch == 1) return;
    const int32_t count = batch;
    const int64_t w_stride = 0, a_stride = static_cast<int64_t>(rows) * k, d_stride = static_cast<int64_t>(rows) * n;
    const int64_t b_stride = bias_stride;
    check(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, &b_stride, sizeof(b_stride)));
    check(cublasLtMatrixLayoutSetAttribute(w, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    check(cublasLtMatrixLayoutSetAttribute(w, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &w_stride, sizeof(w_stride)));
    check(cublasLtMatrixLayoutSetAttribute(a, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    check(cublasLtMatrixLayoutSetAttribute(a, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &a_stride, sizeof(a_stride)));
    check(cublasLtMatrixLayoutSetAttribute(d, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    check(cublasLtMatrixLayoutSetAttribute(d, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &d_stride, sizeof(d_stride)));
  }
  ~LtCall() {
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (w) cublasLtMatrixLayoutDestroy(w);
    if (op) cublasLtMatmulDescDestroy(op);
  }
  LtCall(const LtCall&) = delete;
  LtCall& operator=(const LtCall&) = delete;
};

/// The heuristic's first algorithm for a shape, remembered (small direct-mapped cache).
struct LtAlgoCache {
  struct Entry {
    bool used = false;
    void* handle = nullptr;
    int device = 0, type = 0, rows = 0, n = 0, k = 0, batch = 0;
    unsigned long long align = 0;
    size_t ws = 0;
    bool found = false;
    cublasLtMatmulAlgo_t algo;
  };
  std::mutex mutex;
  Entry entries[64];
};

inline LtAlgoCache& lt_algo_cache() {
  static LtAlgoCache cache;
  return cache;
}

/// The cache entry of a shape (the caller holds the cache's mutex).
inline LtAlgoCache::Entry& lt_algo_entry(LtAlgoCache& cache, int rows, int n, int k, int batch, unsigned long long align, int device) {
  const size_t h = (static_cast<size_t>(rows) * 31 + n) * 31 + k + static_cast<size_t>(batch) * 7 + align + device;
  return cache.entries[h % 64];
}

/// The entry holds the algorithm of exactly this call (a hash slot may hold another shape's).
inline bool lt_algo_matches(const LtAlgoCache::Entry& e, cublasLtHandle_t handle, int device, cudaDataType_t type, int rows, int n, int k,
                            int batch, unsigned long long align, size_t ws_bytes) {
  return e.used && e.handle == handle && e.device == device && e.type == static_cast<int>(type) && e.rows == rows && e.n == n &&
         e.k == k && e.batch == batch && e.align == align && e.ws == ws_bytes;
}

/// Remembers that a shape's algorithm was refused at run time (next calls go straight to the fallback).
inline void lt_algo_refused(cublasLtHandle_t handle, cudaDataType_t type, int rows, int n, int k, int batch, unsigned long long align,
                            size_t ws_bytes) {
  int device = 0;
  cudaGetDevice(&device);
  LtAlgoCache& cache = lt_algo_cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  LtAlgoCache::Entry& e = lt_algo_entry(cache, rows, n, k, batch, align, device);
  if (lt_algo_matches(e, handle, device, type, rows, n, k, batch, align, ws_bytes))
    e.found = false;
}

/// Looks up (or asks the heuristic for) an algorithm; found = false when cuBLASLt has none.
inline cublasStatus_t lt_algo(cublasLtHandle_t handle, LtCall& call, cudaDataType_t type, int rows, int n, int k, int batch,
                              const LtAlign& alignment, size_t ws_bytes, bool& found, cublasLtMatmulAlgo_t& algo) {
  const unsigned long long align = alignment.key();
  int device = 0;
  cudaGetDevice(&device);
  LtAlgoCache& cache = lt_algo_cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  LtAlgoCache::Entry& e = lt_algo_entry(cache, rows, n, k, batch, align, device);
  if (lt_algo_matches(e, handle, device, type, rows, n, k, batch, align, ws_bytes)) {
    found = e.found;
    algo = e.algo;
    return CUBLAS_STATUS_SUCCESS;
  }
  cublasLtMatmulPreference_t pref = nullptr;
  cublasStatus_t s = cublasLtMatmulPreferenceCreate(&pref);
  if (s != CUBLAS_STATUS_SUCCESS) return s;
  s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof(ws_bytes));
  const cublasLtMatmulPreferenceAttributes_t which[4] = {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                         CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  const uint32_t bytes[4] = {alignment.w, alignment.a, alignment.d, alignment.d};
  for (int i = 0; i < 4 && s == CUBLAS_STATUS_SUCCESS; ++i) s = cublasLtMatmulPreferenceSetAttribute(pref, which[i], &bytes[i], sizeof(bytes[i]));
  cublasLtMatmulHeuristicResult_t result = {};
  int count = 0;
  if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulAlgoGetHeuristic(handle, call.op, call.w, call.a, call.d, call.d, pref, 1, &result, &count);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s == CUBLAS_STATUS_NOT_SUPPORTED) s = CUBLAS_STATUS_SUCCESS, count = 0;
  if (s != CUBLAS_STATUS_SUCCESS) return s;
  found = count > 0 && result.state == CUBLAS_STATUS_SUCCESS;
  algo = result.algo;
  e.used = true, e.handle = handle, e.device = device, e.type = static_cast<int>(type), e.rows = rows, e.n = n, e.k = k;
  e.batch = batch, e.align = align, e.ws = ws_bytes, e.found = found, e.algo = algo;
  return CUBLAS_STATUS_SUCCESS;
}

/// D[b] = A[b] · Wᵀ + bias[b] for b < batch (row-major; A[b] [rows, k], D[b] [rows, n], W [n, k]
/// shared, bias[b] = bias + b·bias_stride). One batched cuBLASLt call when cuBLASLt takes a
/// shared W (batch stride 0), otherwise one call per batch.
template <typename T>
inline int lt_linear(cublasLtHandle_t handle, const T* a, const T* w, const T* bias, long long bias_stride, T* d, int rows,
                     int n, int k, int batch, void* ws, size_t ws_bytes, cudaStream_t stream) {
  const cudaDataType_t type = LtType<T>::value;
  const float alpha = 1.f, beta = 0.f;
  // every batch's matrices and bias: the per-batch fallback moves the pointers by the strides
  const long long es = static_cast<long long>(sizeof(T));
  LtAlign align;
  align.w = matrix_alignment(w, 0, 1);
  align.a = matrix_alignment(a, static_cast<long long>(rows) * k * es, batch);
  align.d = matrix_alignment(d, static_cast<long long>(rows) * n * es, batch);
  align.bias = matrix_alignment(bias, bias_stride * es, batch);
  // the heuristic takes the bias alignment from the bias pointer: show it the least aligned one
  const T* bias_probe = matrix_alignment(bias, 0, 1) > align.bias ? bias + bias_stride : bias;
  for (int batched = batch > 1 ? 1 : 0; batched >= 0; --batched) {
    const int count = batched ? batch : 1;
    LtCall call(type, bias_probe, bias_stride, rows, n, k, count);
    if (call.status != CUBLAS_STATUS_SUCCESS) return kCublasErrorBase + call.status;
    bool found = false;
    cublasLtMatmulAlgo_t algo;
    cublasStatus_t s = lt_algo(handle, call, type, rows, n, k, count, align, ws_bytes, found, algo);
    if (s != CUBLAS_STATUS_SUCCESS) return kCublasErrorBase + s;
    if (!found) {
      if (batched) continue;
      return kCublasErrorBase + CUBLAS_STATUS_NOT_SUPPORTED;
    }
    const int calls = batched || batch == 1 ? 1 : batch;
    for (int b = 0; b < calls; ++b) {
      if (b > 0 || bias_probe != bias) {  // this batch's term (the heuristic may have seen bias_probe)
        const T* bias_b = bias + b * bias_stride;
        s = cublasLtMatmulDescSetAttribute(call.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_b, sizeof(bias_b));
        if (s != CUBLAS_STATUS_SUCCESS) return kCublasErrorBase + s;
      }
      s = cublasLtMatmul(handle, call.op, &alpha, w, call.w, a + static_cast<size_t>(b) * rows * k, call.a, &beta,
                         d + static_cast<size_t>(b) * rows * n, call.d, d + static_cast<size_t>(b) * rows * n, call.d, &algo, ws,
                         ws_bytes, stream);
      if (s == CUBLAS_STATUS_NOT_SUPPORTED && batched) {  // the shared W (stride 0) refused at run time: per batch
        lt_algo_refused(handle, type, rows, n, k, count, align.key(), ws_bytes);
        break;
      }
      if (s != CUBLAS_STATUS_SUCCESS) return kCublasErrorBase + s;
    }
    if (batched && s == CUBLAS_STATUS_NOT_SUPPORTED) continue;
    return 0;
  }
  return kCublasErrorBase + CUBLAS_STATUS_NOT_SUPPORTED;
}

}  // namespace deltac
