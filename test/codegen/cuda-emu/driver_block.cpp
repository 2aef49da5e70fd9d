// Runs one generated whole-block entry point on the CPU emulation:
//   driver_block <x.bin> <weights.bin> <out.bin> <batch> <height> <width> <out_elements> <element_bytes>
// (files in the configuration's dtype). Included after the generated .block.cu, which
// defines DELTAC_BLOCK_ENTRY. Prints the kernel launches and cuBLASLt calls it made.
#include "driver_io.h"

extern "C" int DELTAC_BLOCK_ENTRY(const void*, const void*, void*, int, int, int, void*, size_t, void*, void*);
extern "C" size_t DELTAC_CAT(DELTAC_BLOCK_ENTRY, _workspace_size)(int, int, int);

int main(int argc, char** argv) {
  if (argc != 9) return 2;
  const int b = std::atoi(argv[4]), h = std::atoi(argv[5]), w = std::atoi(argv[6]);
  std::vector<char> x = read_file(argv[1]), wt = read_file(argv[2]);
  const size_t out_bytes = std::strtoull(argv[7], nullptr, 10) * std::strtoull(argv[8], nullptr, 10);
  void* out = std::aligned_alloc(256, (out_bytes + 255) / 256 * 256);
  const size_t ws_bytes = DELTAC_CAT(DELTAC_BLOCK_ENTRY, _workspace_size)(b, h, w);
  void* ws = std::aligned_alloc(256, (ws_bytes + 255) / 256 * 256);
  std::memset(ws, 0xff, ws_bytes);  // garbage, as a fresh cudaMalloc may hold
  void* xa = std::aligned_alloc(256, (x.size() + 255) / 256 * 256);
  void* wa = std::aligned_alloc(256, (wt.size() + 255) / 256 * 256);
  std::memcpy(xa, x.data(), x.size());
  std::memcpy(wa, wt.data(), wt.size());
  EmuLtHandle handle{0x17};
  const size_t one_image = DELTAC_CAT(DELTAC_BLOCK_ENTRY, _workspace_size)(1, h, w);
  // bad calls are refused with the documented codes, before anything runs
  if (DELTAC_BLOCK_ENTRY(static_cast<char*>(xa) + 2, wa, out, b, h, w, ws, ws_bytes, &handle, nullptr) != cudaErrorMisalignedAddress) { std::fprintf(stderr, "misaligned x accepted\n"); return 1; }
  if (DELTAC_BLOCK_ENTRY(xa, wa, out, b, h, w, ws, ws_bytes, nullptr, nullptr) != cudaErrorInvalidValue) { std::fprintf(stderr, "null handle accepted\n"); return 1; }
  if (DELTAC_BLOCK_ENTRY(xa, wa, out, 0, h, w, ws, ws_bytes, &handle, nullptr) != cudaErrorInvalidValue) { std::fprintf(stderr, "batch 0 accepted\n"); return 1; }
  // less than one image's workspace is refused
  if (DELTAC_BLOCK_ENTRY(xa, wa, out, b, h, w, ws, one_image - 1, &handle, nullptr) == 0) { std::fprintf(stderr, "short workspace accepted\n"); return 1; }
  for (int call = 0; call < 2; ++call) {  // twice: the pool term's counters must be reusable
    const int rc = DELTAC_BLOCK_ENTRY(xa, wa, out, b, h, w, ws, ws_bytes, &handle, nullptr);
    if (rc != 0) { std::fprintf(stderr, "entry returned %d\n", rc); return 1; }
  }
  const int launches = deltac_emu::launches / 2, matmuls = emu_lt_matmuls / 2;
  // one image's workspace: the batch runs image by image, with the same result
  void* out1 = std::aligned_alloc(256, (out_bytes + 255) / 256 * 256);
  const int rc = DELTAC_BLOCK_ENTRY(xa, wa, out1, b, h, w, ws, one_image, &handle, nullptr);
  if (rc != 0) { std::fprintf(stderr, "entry (one image per pass) returned %d\n", rc); return 1; }
  const bool same = std::memcmp(out, out1, out_bytes) == 0;
  FILE* f = std::fopen(argv[3], "wb");
  std::fwrite(out, 1, out_bytes, f);
  std::fclose(f);
  std::printf("launches %d matmuls %d workspace %zu one-image %zu passes-equal %d launches-one-image %d\n", launches, matmuls, ws_bytes, one_image,
              same ? 1 : 0, deltac_emu::launches - 2 * launches);
  return 0;
}
