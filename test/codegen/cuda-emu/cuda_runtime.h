// CPU emulation of the CUDA subset the generated kernels use, so that the emitted
// .cu files can be compiled with g++ and executed in tests on machines without a GPU.
// Every CUDA thread of a CTA is a std::thread; __syncthreads is a std::barrier.
// Kernel launches `k<<<grid, block, smem, stream>>>(args)` are rewritten by the test
// to `deltac_emu::launch(k, grid, block, smem, stream, args)` before compiling.
#pragma once
#include <barrier>
#include <cmath>
#include <cstddef>
#include <cstdint>
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

/// Runs every CTA of the grid in turn; the CTA's threads run concurrently.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t, Args... args) {
  ++launches;
  const unsigned threads = block.x * block.y * block.z;
  std::vector<float4> shared((smem + sizeof(float4) - 1) / sizeof(float4) + 1);
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        std::memset(shared.data(), 0xff, shared.size() * sizeof(float4));  // NaN garbage, like uninitialised smem
        std::barrier<> bar(threads);
        std::vector<std::thread> pool;
        for (unsigned t = 0; t < threads; ++t) {
          pool.emplace_back([&, t] {
            tl_thread = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
            tl_block = dim3(bx, by, bz);
            tl_block_dim = block;
            tl_grid_dim = grid;
            tl_shared = shared.data();
            tl_barrier = &bar;
            kernel(static_cast<Params>(args)...);
            bar.arrive_and_drop();
          });
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
template <typename T> inline T __ldg(const T* p) { return *p; }

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
