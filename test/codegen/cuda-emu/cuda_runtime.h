// CPU emulation of the CUDA subset the generated kernels use, so that the emitted
// .cu files can be compiled with g++ and executed in tests on machines without a GPU.
// Every CUDA thread of a CTA is a std::thread; __syncthreads is a std::barrier.
// Kernel launches `k<<<grid, block, smem, stream>>>(args)` are rewritten by the test
// to `deltac_emu::launch(k, grid, block, smem, stream, args)` before compiling.
// CTAs run one after another in grid order, unless DELTAC_EMU_CTA_ORDER=reverse|shuffle
// (shuffle: a fixed pseudo-random order) and DELTAC_EMU_CONCURRENT_CTAS=n (n CTAs at a
// time, each with its own shared memory): code must not rely on the order CTAs run in,
// nor on one CTA finishing before another starts (e.g. the pool term's ticket counter).
#pragma once
#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

using std::max;
using std::min;

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct float2 { float x, y; };
struct float4 { float x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

typedef int cudaError_t;
enum : int { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2, cudaErrorInvalidDevice = 101, cudaErrorMisalignedAddress = 716 };
typedef void* cudaStream_t;
typedef void* cudaMemPool_t;
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaMemAllocationType { cudaMemAllocationTypePinned = 1 };
enum cudaMemLocationType { cudaMemLocationTypeDevice = 1 };
enum cudaMemPoolAttr { cudaMemPoolAttrReleaseThreshold = 4 };
struct cudaMemLocation { cudaMemLocationType type; int id; };
struct cudaMemPoolProps { cudaMemAllocationType allocType; int handleTypes; cudaMemLocation location; };

namespace deltac_emu {
inline thread_local dim3 tl_thread, tl_block, tl_block_dim, tl_grid_dim;
inline thread_local void* tl_shared = nullptr;
inline thread_local std::barrier<>* tl_barrier = nullptr;
inline int launches = 0;

template <typename T> T* shared_memory() { return static_cast<T*>(tl_shared); }

/// The order CTAs (linear index x + X·(y + Y·z)) run in (DELTAC_EMU_CTA_ORDER).
inline std::vector<size_t> cta_order(size_t n) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  const char* how = std::getenv("DELTAC_EMU_CTA_ORDER");
  if (how && std::strcmp(how, "reverse") == 0) std::reverse(order.begin(), order.end());
  if (how && std::strcmp(how, "shuffle") == 0) {
    uint64_t state = 0x9e3779b97f4a7c15ull;
    for (size_t i = n; i > 1; --i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      std::swap(order[i - 1], order[(state >> 33) % i]);
    }
  }
  return order;
}

/// Runs every CTA of the grid, DELTAC_EMU_CONCURRENT_CTAS (default 1) at a time; a CTA's threads run concurrently.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t, Args... args) {
  ++launches;
  const unsigned threads = block.x * block.y * block.z;
  const size_t ctas = static_cast<size_t>(grid.x) * grid.y * grid.z;
  const char* conc = std::getenv("DELTAC_EMU_CONCURRENT_CTAS");
  const size_t group = conc && std::atoi(conc) > 1 ? static_cast<size_t>(std::atoi(conc)) : 1;
  const std::vector<size_t> order = cta_order(ctas);
  for (size_t g0 = 0; g0 < ctas; g0 += group) {
    const size_t g1 = std::min(ctas, g0 + group);
    std::vector<std::vector<float4>> shared(g1 - g0);
    std::vector<std::unique_ptr<std::barrier<>>> bars;
    std::vector<std::thread> pool;
    for (size_t c = g0; c < g1; ++c) {
      std::vector<float4>& sh = shared[c - g0];
      sh.assign((smem + sizeof(float4) - 1) / sizeof(float4) + 1, float4{});
      std::memset(sh.data(), 0xff, sh.size() * sizeof(float4));  // NaN garbage, like uninitialised smem
      bars.push_back(std::make_unique<std::barrier<>>(threads));
      std::barrier<>* bar = bars.back().get();
      const size_t i = order[c];
      const dim3 cta(static_cast<unsigned>(i % grid.x), static_cast<unsigned>((i / grid.x) % grid.y),
                     static_cast<unsigned>(i / (static_cast<size_t>(grid.x) * grid.y)));
      float4* mem = sh.data();
      for (unsigned t = 0; t < threads; ++t) {
        pool.emplace_back([&, t, cta, mem, bar] {
          tl_thread = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
          tl_block = cta;
          tl_block_dim = block;
          tl_grid_dim = grid;
          tl_shared = mem;
          tl_barrier = bar;
          kernel(static_cast<Params>(args)...);
          bar->arrive_and_drop();
        });
      }
    }
    for (auto& th : pool) th.join();
  }
}
}  // namespace deltac_emu

#define threadIdx (deltac_emu::tl_thread)
#define blockIdx (deltac_emu::tl_block)
#define blockDim (deltac_emu::tl_block_dim)
#define gridDim (deltac_emu::tl_grid_dim)
inline void __syncthreads() { deltac_emu::tl_barrier->arrive_and_wait(); }
// A GPU faults on a load of a vector type (float2, __half2, float4) from an address that is not a
// multiple of its size; so does the emulation, which would otherwise read it fine.
template <typename T> inline T __ldg(const T* p) {
  if (reinterpret_cast<uintptr_t>(p) % sizeof(T) != 0) {
    std::fprintf(stderr, "misaligned address: __ldg of %zu bytes at %p\n", sizeof(T), static_cast<const void*>(p));
    std::abort();
  }
  return *p;
}

inline cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
template <typename K> inline cudaError_t cudaFuncSetAttribute(K, cudaFuncAttribute, int) { return cudaSuccess; }
inline cudaError_t cudaMemPoolCreate(cudaMemPool_t* p, const cudaMemPoolProps*) { *p = reinterpret_cast<void*>(1); return cudaSuccess; }
inline cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, cudaMemPoolAttr, void*) { return cudaSuccess; }
inline cudaError_t cudaMallocFromPoolAsync(void** p, size_t n, cudaMemPool_t, cudaStream_t) {
  *p = std::aligned_alloc(256, (n + 255) / 256 * 256);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaFreeAsync(void* p, cudaStream_t) { std::free(p); return cudaSuccess; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) { std::memset(p, v, n); return cudaSuccess; }
// The threads of a CTA run concurrently: atomics are real atomics; CTAs run one after another.
inline float atomicAdd(float* p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return std::atomic_ref<unsigned>(*p).fetch_add(v); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
template <typename T> inline T __ldcg(const T* p) { return *p; }
struct cudaFuncAttributes { int numRegs = 32; };
template <typename K> inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* a, K) { *a = cudaFuncAttributes{}; return cudaSuccess; }
template <typename K> inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* n, K, int, size_t) { *n = 1; return cudaSuccess; }
