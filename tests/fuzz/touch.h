// For the fuzz targets: reads every byte of a view, so ASan reports one that points into freed
// or foreign memory.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace handoffd::fuzz {

inline size_t Touch(std::string_view s) {
  size_t sum = 0;
  for (char c : s) sum += static_cast<unsigned char>(c);
  return sum;
}

inline size_t Touch(const std::optional<std::string_view>& s) { return s ? Touch(*s) : 0; }

}  // namespace handoffd::fuzz
