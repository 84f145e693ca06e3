// libFuzzer target for the scales-file parser: never crashes on any input, and anything it accepts
// formats back to text that parses to the same contents (round trip).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "train/scales_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sasq::train::ScalesFile f;
  if (!sasq::train::parse_scales(text, f, "fuzz").is_ok()) return 0;
  const std::string again = sasq::train::format_scales(f);
  sasq::train::ScalesFile g;
  if (!sasq::train::parse_scales(again, g, "fuzz").is_ok() || sasq::train::format_scales(g) != again) std::abort();
  return 0;
}
