// Runs one generated entry point on the CPU emulation:
//   driver <u.bin> <w.bin> <out.bin> <batch> <height> <width> <out_elements> <element_bytes>
// (element files in the configuration's dtype, raw little-endian). Included after
// the generated .cu, which defines DELTAC_ENTRY.
#include "driver_io.h"

// The entry point is defined inside its configuration namespace; C linkage makes it this function.
extern "C" int DELTAC_ENTRY(const void*, const void*, void*, int, int, int, void*);
extern "C" int DELTAC_CAT(DELTAC_ENTRY, _launch_info)(int, int, int, int*);

int main(int argc, char** argv) {
  if (argc != 9) return 2;
  std::vector<char> u = read_file(argv[1]), w = read_file(argv[2]);
  const size_t out_bytes = std::strtoull(argv[7], nullptr, 10) * std::strtoull(argv[8], nullptr, 10);
  std::vector<char> out(out_bytes + 16);
  const int rc = DELTAC_ENTRY(u.data(), w.data(), out.data(), std::atoi(argv[4]), std::atoi(argv[5]), std::atoi(argv[6]), nullptr);
  if (rc != 0) { std::fprintf(stderr, "entry returned %d\n", rc); return 1; }
  FILE* f = std::fopen(argv[3], "wb");
  std::fwrite(out.data(), 1, out_bytes, f);
  std::fclose(f);
  int info[5] = {};
  if (DELTAC_CAT(DELTAC_ENTRY, _launch_info)(std::atoi(argv[4]), std::atoi(argv[5]), std::atoi(argv[6]), info) != 0) return 1;
  std::printf("launches %d ctas %d threads %d\n", deltac_emu::launches, info[0], info[1]);
  return 0;
}
