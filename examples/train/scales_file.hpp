// The scales file: learned static activation-quantizer scales, a versioned line-oriented text format.
//   sasq-scales 2
//   model fnv1a64:<16 hex digits>        fingerprint of the model the scales were trained for
//   layers <n>                           decoder layers of that model
//   bits <4|8>                           activation bits
//   grid <symmetric|symmetric_full>      q in [-(2^(b-1)-1), 2^(b-1)-1] or [-2^(b-1), 2^(b-1)-1], z = 0
//   granularity <per_tensor|per_channel> one scale per site, or one per input channel
//   weights <bits> <group> <method>      the weight quantization the scales were trained with
//                                        (bits 0|4|8, group 0|32|64|128, method: kWeightMethods),
//                                        or 'weights unknown' (version 1 files have no such line)
//   sites <m>
//   <layer> <site name> <count> <scale_1> ... <scale_count>     (m lines, any order, no duplicates)
//   end
// Lines starting with '#' are comments; fields are separated by spaces. Scales are written in the
// shortest decimal form that reads back to the same float (std::to_chars), so a round trip is exact.
// Every scale must be usable on the file's grid: sasq::validate_scale's rule (finite, > 0, finite
// reciprocal), a normal float, and s · 2^(bits-1) finite (the dequantized range does not overflow).
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <optional>
#include <utility>
#include <vector>

#include "common/atomic_file.hpp"
#include "llama/config.hpp"
#include "llama/model.hpp"
#include "sasq/core/status.hpp"
#include "sasq/quant/params.hpp"

namespace sasq::train {

inline constexpr int kScalesFormatVersion = 2;
inline constexpr const char* kScalesMagic = "sasq-scales";

/// Granularity of the learned activation scales.
enum class Granularity { kPerTensor, kPerChannel };

inline const char* granularity_name(Granularity g) {
  return g == Granularity::kPerTensor ? "per_tensor" : "per_channel";
}

/// Scales of one quantizer site.
struct SiteScales {
  int layer = 0;
  llama::Site site = llama::Site::kAttnIn;
  std::vector<float> scale;  ///< 1 value per tensor, or one per input channel; finite and > 0
};

/// Weight quantization methods a scales file may record (llama::weight_method_name's names); add
/// one here when sasq-train learns to train on top of a new method.
inline const std::vector<std::string> kWeightMethods = {"rtn", "mse", "gptq", "gptq-ao"};

/// The weight quantization a scales file was trained with.
struct WeightRecord {
  int bits = 8;            ///< 0 (float), 4 or 8
  int group_size = 0;      ///< 0 = per output channel
  std::string method = "rtn";
  bool operator==(const WeightRecord& o) const { return bits == o.bits && group_size == o.group_size && method == o.method; }
};

/// "W<bits> g<group> <method>", e.g. "W8 g0 rtn".
inline std::string weight_record_name(const WeightRecord& w) {
  return "W" + std::to_string(w.bits) + " g" + std::to_string(w.group_size) + " " + w.method;
}

/// Contents of a scales file.
struct ScalesFile {
  std::string model;  ///< fingerprint, e.g. "fnv1a64:0123456789abcdef"
  int n_layers = 0;
  int bits = 8;
  bool full_range = false;  ///< grid symmetric_full (qmin = -2^(b-1)) instead of symmetric
  Granularity granularity = Granularity::kPerTensor;
  std::optional<WeightRecord> weights;  ///< empty: not recorded ('weights unknown', version 1)
  std::vector<SiteScales> sites;

  /// Scales of (layer, site), or nullptr when the file has none for it.
  const SiteScales* find(int layer, llama::Site site) const {
    for (const SiteScales& s : sites)
      if (s.layer == layer && s.site == site) return &s;
    return nullptr;
  }
};

/// FNV-1a 64 of a byte range, as "fnv1a64:<16 lowercase hex digits>".
inline std::string fingerprint_bytes(const unsigned char* data, std::size_t size) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < size; ++i) {
    h ^= data[i];
    h *= 0x100000001b3ull;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
  return buf;
}

/// Fingerprint of a file's bytes (e.g. the checkpoint); throws kIoError when it cannot be read.
inline std::string fingerprint_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::kIoError, path, ": cannot open file");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail(ErrorCode::kIoError, path, ": read error");
  return fingerprint_bytes(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

/// Serialises `f` in the format above.
inline std::string format_scales(const ScalesFile& f) {
  std::ostringstream os;
  os << kScalesMagic << ' ' << kScalesFormatVersion << '\n'
     << "# static activation-quantizer scales (sasq-train); x^ = s * clamp(rne(x / s), qmin, qmax)\n"
     << "model " << f.model << '\n'
     << "layers " << f.n_layers << '\n'
     << "bits " << f.bits << '\n'
     << "grid " << (f.full_range ? "symmetric_full" : "symmetric") << '\n'
     << "granularity " << granularity_name(f.granularity) << '\n'
     << "weights "
     << (f.weights ? std::to_string(f.weights->bits) + " " + std::to_string(f.weights->group_size) + " " + f.weights->method
                   : std::string("unknown"))
     << '\n'
     << "sites " << f.sites.size() << '\n';
  char buf[64];
  for (const SiteScales& s : f.sites) {
    os << s.layer << ' ' << llama::site_name(s.site) << ' ' << s.scale.size();
    for (const float v : s.scale) {
      const auto r = std::to_chars(buf, buf + sizeof buf, v);
      os << ' ' << std::string_view(buf, static_cast<std::size_t>(r.ptr - buf));
    }
    os << '\n';
  }
  os << "end\n";
  return os.str();
}

namespace detail {

/// Splits text into lines and lines into space-separated fields, skipping blank and '#' lines.
class ScalesLexer {
 public:
  explicit ScalesLexer(std::string_view text) : text_(text) {}

  /// Next non-comment line's fields; false at the end of the text.
  bool next(std::vector<std::string_view>& fields) {
    while (pos_ < text_.size()) {
      std::size_t end = text_.find('\n', pos_);
      if (end == std::string_view::npos) end = text_.size();
      std::string_view line = text_.substr(pos_, end - pos_);
      pos_ = end + 1;
      ++line_no_;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      fields.clear();
      std::size_t i = 0;
      while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        const std::size_t b = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        if (i > b) fields.push_back(line.substr(b, i - b));
      }
      if (fields.empty() || fields[0].front() == '#') continue;
      return true;
    }
    return false;
  }
  int line() const { return line_no_; }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  int line_no_ = 0;
};

template <class Int>
bool parse_int(std::string_view s, Int& v) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

inline bool parse_float(std::string_view s, float& v) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

/// Empty when s is a usable scale on a grid of `bits` (the file comment's rule), else why not.
inline std::string scale_problem(float s, int bits) {
  try {
    validate_scale(s, "scale");
  } catch (const Error& e) {
    return e.what();
  }
  if (!std::isnormal(s)) return "scale is subnormal";
  if (!std::isfinite(s * static_cast<float>(1 << (bits - 1)))) return "scale times 2^(bits-1) overflows float";
  return {};
}

inline bool parse_site(std::string_view s, llama::Site& out) {
  for (int i = 0; i < llama::kNumSites; ++i)
    if (s == llama::site_name(static_cast<llama::Site>(i))) {
      out = static_cast<llama::Site>(i);
      return true;
    }
  return false;
}

}  // namespace detail

/// Parses a scales file held in memory into `out`. Never throws for malformed input: returns
/// Status(kCorruptData, "<source>:<line>: <what is wrong>"). Checks the magic and version, every
/// header field, site names, layer indices, per-site counts (1 per tensor), duplicate sites, that
/// each scale is usable on the file's grid (see the file comment), and the final "end" line.
inline Status parse_scales(std::string_view text, ScalesFile& out, const std::string& source = "scales") {
  detail::ScalesLexer lex(text);
  std::vector<std::string_view> f;
  auto bad = [&](const auto&... parts) {
    return Status(ErrorCode::kCorruptData, sasq::detail::concat(source, ":", lex.line(), ": ", parts...));
  };
  auto header = [&](const char* key) { return lex.next(f) && f.size() == 2 && f[0] == key; };
  ScalesFile r;
  int version = 0;
  if (!lex.next(f) || f.size() != 2 || f[0] != kScalesMagic)
    return bad("not a scales file (expected '", kScalesMagic, " ", kScalesFormatVersion, "')");
  if (!detail::parse_int(f[1], version) || version < 1 || version > kScalesFormatVersion)
    return bad("unsupported scales format version '", f[1], "' (this reader knows 1 to ", kScalesFormatVersion, ")");
  if (!header("model") || f[1].empty()) return bad("expected 'model <fingerprint>'");
  r.model = std::string(f[1]);
  if (!header("layers") || !detail::parse_int(f[1], r.n_layers) || r.n_layers < 1 || r.n_layers > llama::kMaxLayers)
    return bad("expected 'layers <n>' with n in [1, ", llama::kMaxLayers, "]");
  if (!header("bits") || !detail::parse_int(f[1], r.bits) || (r.bits != 4 && r.bits != 8))
    return bad("expected 'bits 4' or 'bits 8'");
  if (!header("grid") || (f[1] != "symmetric" && f[1] != "symmetric_full"))
    return bad("expected 'grid symmetric' or 'grid symmetric_full'");
  r.full_range = f[1] == "symmetric_full";
  if (!header("granularity") || (f[1] != "per_tensor" && f[1] != "per_channel"))
    return bad("expected 'granularity per_tensor' or 'granularity per_channel'");
  r.granularity = f[1] == "per_tensor" ? Granularity::kPerTensor : Granularity::kPerChannel;
  if (version >= 2) {
    if (!lex.next(f) || f[0] != "weights" || (f.size() != 2 && f.size() != 4))
      return bad("expected 'weights <bits> <group> <method>' or 'weights unknown'");
    if (f.size() == 2 && f[1] != "unknown") return bad("expected 'weights unknown', got 'weights ", f[1], "'");
    if (f.size() == 4) {
      WeightRecord w;
      w.method = std::string(f[3]);
      if (!detail::parse_int(f[1], w.bits) || (w.bits != 0 && w.bits != 4 && w.bits != 8))
        return bad("weight bits '", f[1], "' are not 0, 4 or 8");
      if (!detail::parse_int(f[2], w.group_size) ||
          (w.group_size != 0 && w.group_size != 32 && w.group_size != 64 && w.group_size != 128))
        return bad("weight group size '", f[2], "' is not 0, 32, 64 or 128");
      if (std::find(kWeightMethods.begin(), kWeightMethods.end(), w.method) == kWeightMethods.end())
        return bad("unknown weight method '", f[3], "'");
      r.weights = w;
    }
  }
  int n_sites = 0;
  const int max_sites = r.n_layers * llama::kNumSites;
  if (!header("sites") || !detail::parse_int(f[1], n_sites) || n_sites < 1 || n_sites > max_sites)
    return bad("expected 'sites <m>' with m in [1, ", max_sites, "]");
  std::vector<bool> seen(static_cast<std::size_t>(max_sites), false);
  for (int i = 0; i < n_sites; ++i) {
    if (!lex.next(f)) return bad("file ends after ", i, " of ", n_sites, " site lines");
    SiteScales s;
    std::size_t count = 0;
    if (f.size() < 3 || !detail::parse_int(f[0], s.layer) || !detail::parse_int(f[2], count))
      return bad("expected '<layer> <site> <count> <scales...>'");
    if (s.layer < 0 || s.layer >= r.n_layers) return bad("layer ", f[0], " outside [0, ", r.n_layers, ")");
    if (!detail::parse_site(f[1], s.site)) return bad("unknown site name '", f[1], "'");
    const std::size_t key = static_cast<std::size_t>(s.layer * llama::kNumSites + static_cast<int>(s.site));
    if (seen[key]) return bad("duplicate site ", s.layer, " ", f[1]);
    seen[key] = true;
    if (count < 1 || count != f.size() - 3)
      return bad("site ", s.layer, " ", f[1], " declares ", f[2], " scales but has ", f.size() - 3);
    if (r.granularity == Granularity::kPerTensor && count != 1)
      return bad("site ", s.layer, " ", f[1], " has ", count, " scales in a per_tensor file");
    s.scale.resize(count);
    for (std::size_t c = 0; c < count; ++c) {
      if (!detail::parse_float(f[3 + c], s.scale[c]))
        return bad("site ", s.layer, " ", f[1], " scale ", c, " = '", f[3 + c], "' is not a number");
      const std::string why = detail::scale_problem(s.scale[c], r.bits);
      if (!why.empty()) return bad("site ", s.layer, " ", f[1], " scale ", c, " = '", f[3 + c], "' is not usable: ", why);
    }
    r.sites.push_back(std::move(s));
  }
  if (!lex.next(f) || f.size() != 1 || f[0] != "end") return bad("expected 'end' after ", n_sites, " site lines");
  if (lex.next(f)) return bad("unexpected content after 'end'");
  out = std::move(r);
  return Status::ok();
}

/// What a consumer of a scales file requires; check_scales() throws on any mismatch.
struct ScalesExpectation {
  std::string model;  ///< fingerprint of the model that will use the scales
  llama::Config config;
  int bits = 8;
  bool full_range = false;
  std::vector<std::pair<int, llama::Site>> sites;  ///< every (layer, site) that must have scales
};

/// Number of input channels of a site of model `c`.
inline int site_channels(const llama::Config& c, llama::Site s) {
  switch (s) {
    case llama::Site::kDownIn: return c.hidden_dim;
    case llama::Site::kKCache: case llama::Site::kVCache: return c.kv_dim();
    default: return c.dim;
  }
}

/// Throws sasq::Error(kInvalidArgument) naming the first mismatch between a parsed file and what
/// the consumer needs: model fingerprint, layer count, bits, grid, missing/extra sites, and for
/// per-channel files the channel count of each site.
inline void check_scales(const ScalesFile& f, const ScalesExpectation& e, const std::string& source = "scales") {
  auto mismatch = [&](const auto&... parts) { fail(ErrorCode::kInvalidArgument, source, ": ", parts...); };
  if (f.model != e.model)
    mismatch("scales were trained for model ", f.model, ", but the model loaded is ", e.model);
  if (f.n_layers != e.config.n_layers)
    mismatch("scales are for ", f.n_layers, " layers, the model has ", e.config.n_layers);
  if (f.bits != e.bits) mismatch("scales are for ", f.bits, "-bit activations, requested ", e.bits, " bits");
  if (f.full_range != e.full_range)
    mismatch("scales are for the ", f.full_range ? "symmetric_full" : "symmetric", " grid, requested ",
             e.full_range ? "symmetric_full" : "symmetric");
  for (const auto& [layer, site] : e.sites) {
    const SiteScales* s = f.find(layer, site);
    if (!s) {
      mismatch("no scales for site ", layer, " ", llama::site_name(site));
      continue;
    }
    const std::size_t want = f.granularity == Granularity::kPerTensor
                                 ? 1u : static_cast<std::size_t>(site_channels(e.config, site));
    if (s->scale.size() != want)
      mismatch("site ", layer, " ", llama::site_name(site), " has ", s->scale.size(), " scales, expected ", want);
  }
  for (const SiteScales& s : f.sites) {
    bool wanted = false;
    for (const auto& [layer, site] : e.sites) wanted = wanted || (layer == s.layer && site == s.site);
    if (!wanted) mismatch("site ", s.layer, " ", llama::site_name(s.site), " is not quantized in this configuration");
  }
}

/// Empty when `f` was trained with the weight quantization `want`, else the mismatch in words.
inline std::string weight_mismatch(const ScalesFile& f, const WeightRecord& want) {
  if (!f.weights) return "the file does not record the weight quantization it was trained with";
  if (!(*f.weights == want))
    return "scales were trained with " + weight_record_name(*f.weights) + " weights, this run quantizes " +
           weight_record_name(want);
  return {};
}

/// Writes `f` to `path` whole or not at all (examples::write_file_atomic: an existing file survives a
/// failed write); throws kIoError naming the file.
inline void save_scales(const std::string& path, const ScalesFile& f) { examples::write_file_atomic(path, format_scales(f)); }

/// Reads and parses `path`; throws kIoError / kCorruptData naming the file and line.
inline ScalesFile load_scales(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::kIoError, path, ": cannot open file");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ScalesFile f;
  parse_scales(text, f, path).throw_if_error();
  return f;
}

}  // namespace sasq::train
