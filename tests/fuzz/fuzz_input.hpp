// The fuzz input as a file: the readers under test open paths (they mmap weights), so each input is
// written to one scratch file per process, named with the extension the reader expects.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

inline const std::string& fuzz_input_file(const uint8_t* data, size_t size, const char* extension) {
  static const std::string path = "/tmp/mmx-fuzz-" + std::to_string(getpid()) + extension;
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  return path;
}
