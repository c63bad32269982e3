#include "mmx/error.hpp"

namespace mmx {

void rethrow_with_context(const Error& e, const std::string& context) {
  throw Error(e.kind(), context + ": " + e.what(), e.hint());
}

}  // namespace mmx
