// Loader for llama2.c checkpoints: legacy v0 float32 and "ak42" v1 float32 / v2 Q8_0 exports.
//   v0: int32[7] header (vocab < 0: separate wcls), float32 tensors, optional freq_cis tables
//   v1: 256-byte header (magic 0x616b3432, version, int32[7], uint8 shared), float32 tensors
//   v2: as v1 plus int32 group_size; float32 norms, then int8 tensors, then their float32 scales
// Layouts follow karpathy/llama2.c export.py (legacy_export, version1_export, version2_export).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "llama/config.hpp"
#include "llama/weights.hpp"
#include "sasq/core/status.hpp"

namespace sasq::llama {

/// Magic of the versioned exports: uint32 "ak42" written little endian.
inline constexpr std::uint32_t kCheckpointMagic = 0x616b3432u;
/// Size of the versioned header, padded with zeros.
inline constexpr std::size_t kVersionedHeaderBytes = 256;
/// Size of the legacy header (7 x int32).
inline constexpr std::size_t kLegacyHeaderBytes = 28;

namespace detail {

/// One tensor of a checkpoint layout: where it starts and how many elements of what it holds.
struct TensorSpec {
  std::string name;
  std::uint64_t offset = 0;  // bytes from the start of the file
  std::uint64_t count = 0;   // elements
  int elem_bytes = 4;        // 4 float32, 1 int8
  std::uint64_t end() const { return offset + count * static_cast<std::uint64_t>(elem_bytes); }
};

/// Appends tensors to a layout, tracking the running offset.
class LayoutBuilder {
 public:
  explicit LayoutBuilder(std::uint64_t start) : offset_(start) {}
  void add(std::string name, std::uint64_t count, int elem_bytes = 4) {
    specs_.push_back({std::move(name), offset_, count, elem_bytes});
    offset_ = specs_.back().end();
  }
  std::uint64_t end() const { return offset_; }
  const std::vector<TensorSpec>& specs() const { return specs_; }
  const TensorSpec& find(const std::string& name) const {
    for (const auto& s : specs_)
      if (s.name == name) return s;
    fail(ErrorCode::kInvalidArgument, "checkpoint layout has no tensor ", name);
  }

 private:
  std::uint64_t offset_;
  std::vector<TensorSpec> specs_;
};

inline std::string layer_name(int l, const char* t) { return "layers." + std::to_string(l) + "." + t; }

/// Throws unless the file size equals the layout's end; names the tensor a truncation cuts.
inline void check_size(const LayoutBuilder& layout, std::uint64_t size, const std::string& source,
                       const char* format) {
  if (size == layout.end()) return;
  if (size > layout.end())
    fail(ErrorCode::kCorruptData, source, ": oversized ", format, " checkpoint: expected ",
         layout.end(), " bytes for the header's dimensions, file has ", size, " (",
         size - layout.end(), " trailing bytes)");
  for (const auto& s : layout.specs())
    if (s.end() > size)
      fail(ErrorCode::kCorruptData, source, ": truncated ", format, " checkpoint: tensor ", s.name,
           " needs bytes [", s.offset, ", ", s.end(), "), file has ", size, " (expected ",
           layout.end(), ")");
  fail(ErrorCode::kCorruptData, source, ": truncated ", format, " checkpoint header: file has ",
       size, " bytes");
}

inline std::int32_t read_i32(const unsigned char* p) {
  std::int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

/// Copies `rows * cols` float32 values of `spec` into a row-major matrix, rejecting NaN/Inf.
inline void read_floats(const unsigned char* data, const TensorSpec& spec, float* out,
                        const std::string& source) {
  std::memcpy(out, data + spec.offset, spec.count * sizeof(float));
  for (std::uint64_t i = 0; i < spec.count; ++i)
    if (!std::isfinite(out[i]))
      fail(ErrorCode::kCorruptData, source, ": tensor ", spec.name, " has a non-finite value (",
           out[i], ") at element ", i);
}

inline Matrix read_matrix(const unsigned char* data, const TensorSpec& spec, int rows, int cols,
                          std::uint64_t index, const std::string& source) {
  Matrix m(rows, cols);
  TensorSpec one = spec;
  const std::uint64_t n = static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols);
  one.offset = spec.offset + index * n * 4;
  one.count = n;
  read_floats(data, one, m.data(), source);
  return m;
}

inline Vector read_vector(const unsigned char* data, const TensorSpec& spec, int n,
                          std::uint64_t index, const std::string& source) {
  Matrix m = read_matrix(data, spec, 1, n, index, source);
  return Eigen::Map<const Vector>(m.data(), n);
}

/// Shapes of the matrices in export order (embedding, then wq..w3 layer-major, then wcls).
struct MatrixShape {
  std::string name;
  int rows;
  int cols;
};

inline std::vector<MatrixShape> matrix_shapes(const Config& c) {
  std::vector<MatrixShape> s{{"token_embedding", c.vocab_size, c.dim}};
  const int q = c.n_heads * c.head_size();
  const struct {
    const char* name;
    int rows, cols;
  } per_layer[] = {{"wq", q, c.dim},          {"wk", c.kv_dim(), c.dim},
                   {"wv", c.kv_dim(), c.dim}, {"wo", c.dim, q},
                   {"w1", c.hidden_dim, c.dim}, {"w2", c.dim, c.hidden_dim},
                   {"w3", c.hidden_dim, c.dim}};
  for (const auto& t : per_layer)
    for (int l = 0; l < c.n_layers; ++l) s.push_back({layer_name(l, t.name), t.rows, t.cols});
  if (!c.shared_classifier) s.push_back({"wcls", c.vocab_size, c.dim});
  return s;
}

/// Stores a matrix (by export-order name) into its place in Weights.
inline Matrix& matrix_slot(Weights& w, const std::string& name) {
  if (name == "token_embedding") return w.token_embedding;
  if (name == "wcls") return w.wcls;
  // "layers.<l>.<t>"
  const auto dot = name.find('.', 7);
  const int l = std::stoi(name.substr(7, dot - 7));
  const std::string t = name.substr(dot + 1);
  LayerWeights& L = w.layers[static_cast<std::size_t>(l)];
  if (t == "wq") return L.wq;
  if (t == "wk") return L.wk;
  if (t == "wv") return L.wv;
  if (t == "wo") return L.wo;
  if (t == "w1") return L.w1;
  if (t == "w2") return L.w2;
  return L.w3;
}

inline Config read_dims(const unsigned char* p) {
  Config c;
  c.dim = read_i32(p + 0);
  c.hidden_dim = read_i32(p + 4);
  c.n_layers = read_i32(p + 8);
  c.n_heads = read_i32(p + 12);
  c.n_kv_heads = read_i32(p + 16);
  c.vocab_size = read_i32(p + 20);
  c.seq_len = read_i32(p + 24);
  return c;
}

inline void read_norms(const unsigned char* data, const LayoutBuilder& layout, Weights& w,
                       const std::string& source) {
  const Config& c = w.config;
  for (int l = 0; l < c.n_layers; ++l) {
    w.layers[static_cast<std::size_t>(l)].rms_att =
        read_vector(data, layout.find("rms_att_weight"), c.dim, static_cast<std::uint64_t>(l), source);
    w.layers[static_cast<std::size_t>(l)].rms_ffn =
        read_vector(data, layout.find("rms_ffn_weight"), c.dim, static_cast<std::uint64_t>(l), source);
  }
  w.rms_final = read_vector(data, layout.find("rms_final_weight"), c.dim, 0, source);
}

inline std::uint64_t u64(int v) { return static_cast<std::uint64_t>(v); }

inline Weights parse_legacy(const unsigned char* data, std::size_t size, const std::string& source) {
  Weights w;
  w.format_version = 0;
  Config& c = w.config;
  c = read_dims(data);
  c.shared_classifier = c.vocab_size > 0;
  if (c.vocab_size < 0 && c.vocab_size > -kMaxVocab - 1) c.vocab_size = -c.vocab_size;
  validate(c, source);
  const std::uint64_t L = u64(c.n_layers), D = u64(c.dim), H = u64(c.hidden_dim),
                      KV = u64(c.kv_dim()), V = u64(c.vocab_size);
  auto build = [&](bool with_freq) {
    LayoutBuilder b(kLegacyHeaderBytes);
    b.add("token_embedding", V * D);
    b.add("rms_att_weight", L * D);
    b.add("wq", L * D * D);
    b.add("wk", L * KV * D);
    b.add("wv", L * KV * D);
    b.add("wo", L * D * D);
    b.add("rms_ffn_weight", L * D);
    b.add("w1", L * H * D);
    b.add("w2", L * D * H);
    b.add("w3", L * H * D);
    b.add("rms_final_weight", D);
    if (with_freq) {
      b.add("freq_cis_real", u64(c.seq_len) * u64(c.head_size() / 2));
      b.add("freq_cis_imag", u64(c.seq_len) * u64(c.head_size() / 2));
    }
    if (!c.shared_classifier) b.add("wcls", V * D);
    return b;
  };
  const LayoutBuilder with_freq = build(true), without_freq = build(false);
  const LayoutBuilder& layout = size == without_freq.end() ? without_freq : with_freq;
  check_size(layout, size, source, "legacy (v0)");
  w.layers.resize(static_cast<std::size_t>(c.n_layers));
  read_norms(data, layout, w, source);
  for (const auto& m : matrix_shapes(c)) {
    const bool per_layer = m.name.rfind("layers.", 0) == 0;
    const std::string tensor = per_layer ? m.name.substr(m.name.find('.', 7) + 1) : m.name;
    const std::uint64_t l = per_layer ? std::stoull(m.name.substr(7)) : 0;
    matrix_slot(w, m.name) = read_matrix(data, layout.find(tensor), m.rows, m.cols, l, source);
  }
  return w;
}

inline Weights parse_versioned(const unsigned char* data, std::size_t size, const std::string& source) {
  if (size < kVersionedHeaderBytes)
    fail(ErrorCode::kCorruptData, source, ": truncated ak42 header: ", size, " bytes, need ",
         kVersionedHeaderBytes);
  Weights w;
  const std::int32_t version = read_i32(data + 4);
  if (version != 1 && version != 2)
    fail(ErrorCode::kCorruptData, source, ": header field version = ", version,
         " is not supported (expected 1 or 2)");
  w.format_version = version;
  Config& c = w.config;
  c = read_dims(data + 8);
  const unsigned char shared = data[36];
  if (shared > 1)
    fail(ErrorCode::kCorruptData, source, ": header field shared_classifier = ", int(shared),
         " is not 0 or 1");
  c.shared_classifier = shared == 1;
  validate(c, source);
  w.layers.resize(static_cast<std::size_t>(c.n_layers));
  const std::uint64_t L = u64(c.n_layers), D = u64(c.dim);
  const std::vector<MatrixShape> shapes = matrix_shapes(c);

  LayoutBuilder layout(kVersionedHeaderBytes);
  layout.add("rms_att_weight", L * D);
  layout.add("rms_ffn_weight", L * D);
  layout.add("rms_final_weight", D);
  if (version == 1) {
    for (const auto& m : shapes) layout.add(m.name, u64(m.rows) * u64(m.cols));
    check_size(layout, size, source, "v1");
    read_norms(data, layout, w, source);
    for (const auto& m : shapes)
      matrix_slot(w, m.name) = read_matrix(data, layout.find(m.name), m.rows, m.cols, 0, source);
    return w;
  }

  const std::int32_t gs = read_i32(data + 37);
  if (gs <= 0 || gs > c.dim || c.dim % gs != 0)
    fail(ErrorCode::kCorruptData, source, ": header field group_size = ", gs,
         " must be positive and divide dim = ", c.dim);
  for (const auto& m : shapes) layout.add(m.name, u64(m.rows) * u64(m.cols), 1);
  for (const auto& m : shapes) {
    const std::uint64_t n = u64(m.rows) * u64(m.cols);
    if (n % u64(gs) != 0)
      fail(ErrorCode::kCorruptData, source, ": tensor ", m.name, " has ", n,
           " elements, not a multiple of group_size = ", gs);
    layout.add(m.name + ".scale", n / u64(gs));
  }
  check_size(layout, size, source, "v2 (Q8_0)");
  read_norms(data, layout, w, source);
  for (const auto& m : shapes) {
    Q8Tensor t;
    t.name = m.name;
    t.rows = m.rows;
    t.cols = m.cols;
    t.group_size = gs;
    const TensorSpec& qs = layout.find(m.name);
    const TensorSpec& ss = layout.find(m.name + ".scale");
    t.q.resize(qs.count);
    std::memcpy(t.q.data(), data + qs.offset, qs.count);
    t.scale.resize(ss.count);
    read_floats(data, ss, t.scale.data(), source);
    for (std::size_t g = 0; g < t.scale.size(); ++g)
      if (t.scale[g] < 0.0f)
        fail(ErrorCode::kCorruptData, source, ": tensor ", ss.name, " has a negative scale (",
             t.scale[g], ") at group ", g);
    for (std::size_t i = 0; i < t.q.size(); ++i)
      if (t.q[i] == -128)
        fail(ErrorCode::kCorruptData, source, ": tensor ", m.name,
             " holds -128 at element ", i, " (Q8_0 values lie in [-127, 127])");
    Matrix& dst = matrix_slot(w, m.name);
    dst.resize(m.rows, m.cols);
    for (std::size_t i = 0; i < t.q.size(); ++i)
      dst.data()[i] = t.scale[i / static_cast<std::size_t>(gs)] * static_cast<float>(t.q[i]);
    w.q8.push_back(std::move(t));
  }
  return w;
}

}  // namespace detail

/// Parses a checkpoint held in memory. `source` names it in error messages. Throws
/// sasq::Error(kCorruptData) naming the file and the field or tensor for every inconsistency:
/// truncated/oversized data, bad dimensions, unknown version, NaN/Inf weights or scales.
inline Weights parse_checkpoint(const unsigned char* data, std::size_t size, const std::string& source) {
  if (size < kLegacyHeaderBytes)
    fail(ErrorCode::kCorruptData, source, ": truncated checkpoint: ", size,
         " bytes, shorter than the 28-byte header");
  std::uint32_t magic;
  std::memcpy(&magic, data, sizeof magic);
  return magic == kCheckpointMagic ? detail::parse_versioned(data, size, source)
                                   : detail::parse_legacy(data, size, source);
}

/// Reads a whole file into memory; throws sasq::Error(kIoError) naming it when it cannot be read.
inline std::vector<unsigned char> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::kIoError, path, ": cannot open file");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail(ErrorCode::kIoError, path, ": read error");
  return bytes;
}

/// Loads a llama2.c checkpoint file (any supported version).
inline Weights load_checkpoint(const std::string& path) {
  const std::vector<unsigned char> bytes = read_file_bytes(path);
  return parse_checkpoint(bytes.data(), bytes.size(), path);
}

}  // namespace sasq::llama
