// Arithmetic on numbers read from files: a shape's element count, a zip offset plus a size, a config
// width times a height. A file can hold any 64-bit value, so a product or sum that wraps would be read as
// another (small, plausible) size; here it is an error naming what was being computed instead.
#pragma once
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "mmx/error.hpp"

namespace mmx {

// `what` names the quantity and its source, e.g. "model.bin: storage 'w' in bytes".
template <class T>
T checked_add(T a, T b, std::string_view what) {
  static_assert(std::is_integral_v<T>);
  T out;
  if (__builtin_add_overflow(a, b, &out)) fail(what, ": ", a, " + ", b, " overflows a ", sizeof(T) * 8, "-bit size");
  return out;
}

template <class T>
T checked_mul(T a, T b, std::string_view what) {
  static_assert(std::is_integral_v<T>);
  T out;
  if (__builtin_mul_overflow(a, b, &out)) fail(what, ": ", a, " × ", b, " overflows a ", sizeof(T) * 8, "-bit size");
  return out;
}

// The product of a shape's dimensions (each checked non-negative by the caller) times an item size.
template <class It>
int64_t checked_numel(It begin, It end, std::string_view what) {
  int64_t n = 1;
  for (It it = begin; it != end; ++it) n = checked_mul<int64_t>(n, static_cast<int64_t>(*it), what);
  return n;
}

}  // namespace mmx
