// What both drivers (driver.cpp, driver_block.cpp) share: token pasting for the entry
// point's sibling functions, and reading a whole file.
#pragma once
#include <cstdio>
#include <vector>

#define DELTAC_CAT2(a, b) a##b
#define DELTAC_CAT(a, b) DELTAC_CAT2(a, b)

// The file's bytes; empty when it cannot be read.
static std::vector<char> read_file(const char* path) {
  std::vector<char> v;
  if (FILE* f = std::fopen(path, "rb")) {
    std::fseek(f, 0, SEEK_END);
    v.resize(static_cast<size_t>(std::ftell(f)));
    std::fseek(f, 0, SEEK_SET);
    if (std::fread(v.data(), 1, v.size(), f) != v.size()) v.clear();
    std::fclose(f);
  }
  return v;
}
