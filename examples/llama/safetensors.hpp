// safetensors reader: memory-mapped files, sharded folders through model.safetensors.index.json.
//   file:  u64 little-endian N, an N-byte JSON header
//          {name: {"dtype": D, "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
//          then the tensor bytes (offsets relative to byte 8 + N, little endian, row-major)
//   index: {"metadata": {..}, "weight_map": {name: shard file name}}
// Tensors are converted to float32 from F32, F16 and BF16 (exact: every F16/BF16 value is a float).
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sasq/core/status.hpp"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the safetensors reader assumes a little-endian host"
#endif

namespace sasq::llama {

/// Largest JSON header accepted (the Rust reference implementation's limit).
inline constexpr std::uint64_t kMaxSafetensorsHeader = 100u << 20;

/// Element types of the safetensors format. Only F32, F16 and BF16 convert to float32.
enum class Dtype { kBool, kU8, kI8, kF8E4M3, kF8E5M2, kI16, kU16, kF16, kBF16, kI32, kU32, kF32, kF64, kI64, kU64 };

namespace detail {

struct DtypeName {
  const char* name;
  Dtype dtype;
  int bytes;
};
inline constexpr DtypeName kDtypes[] = {
    {"BOOL", Dtype::kBool, 1}, {"U8", Dtype::kU8, 1},   {"I8", Dtype::kI8, 1},   {"F8_E4M3", Dtype::kF8E4M3, 1},
    {"F8_E5M2", Dtype::kF8E5M2, 1}, {"I16", Dtype::kI16, 2}, {"U16", Dtype::kU16, 2}, {"F16", Dtype::kF16, 2},
    {"BF16", Dtype::kBF16, 2}, {"I32", Dtype::kI32, 4}, {"U32", Dtype::kU32, 4}, {"F32", Dtype::kF32, 4},
    {"F64", Dtype::kF64, 8}, {"I64", Dtype::kI64, 8}, {"U64", Dtype::kU64, 8}};

/// IEEE binary16 -> float (exact; subnormals, infinities and NaN included).
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
  std::uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else {
    const float f = std::ldexp(static_cast<float>(mant), -24);  // subnormal or zero
    std::memcpy(&bits, &f, 4);
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float bf16_to_float(std::uint16_t b) {
  const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// A read-only private mapping of a whole file (an empty file maps to nothing).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(ErrorCode::kIoError, path, ": cannot open file");
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      fail(ErrorCode::kIoError, path, ": not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        fail(ErrorCode::kIoError, path, ": mmap failed");
      }
      data_ = static_cast<const unsigned char*>(p);
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<unsigned char*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  /// Drops the pages of [offset, offset + n) from this process's resident set (they are clean file
  /// pages: a later read faults them in again), so converting a model does not keep both copies.
  void release(std::size_t offset, std::size_t n) const {
    if (!data_ || n == 0) return;
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t begin = offset / page * page, end = std::min(size_, offset + n);
    ::madvise(const_cast<unsigned char*>(data_) + begin, end - begin, MADV_DONTNEED);
  }

 private:
  std::string path_;
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace detail

/// One tensor of a safetensors file, as its header describes it (offsets relative to the file).
struct SafetensorInfo {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::string dtype_name;           ///< as written in the header, e.g. "BF16"
  std::vector<std::int64_t> shape;  ///< empty for a scalar
  std::uint64_t begin = 0;          ///< first byte, from the start of the file
  std::uint64_t end = 0;            ///< one past the last byte
  std::uint64_t numel() const {
    std::uint64_t n = 1;
    for (const auto d : shape) n *= static_cast<std::uint64_t>(d);
    return n;
  }
};

/// A parsed safetensors file over bytes it does not own (a mapping held by the caller, or fuzz input).
/// Parsing checks the whole header; tensor bytes are read only by to_float().
class SafetensorsView {
 public:
  /// Parses the header of `size` bytes at `data`; `source` names the file in errors. Throws
  /// sasq::Error(kCorruptData) naming the file (and the tensor) on: fewer than 8 bytes, a header
  /// length beyond the file or 100 MiB, invalid JSON, a non-object header or entry, unknown keys or
  /// dtype, bad shape or data_offsets, duplicate names, offsets out of range, overlapping tensors,
  /// and shape x dtype size != byte count.
  static SafetensorsView parse(const unsigned char* data, std::size_t size, const std::string& source) {
    SafetensorsView v;
    v.data_ = data;
    v.size_ = size;
    v.source_ = source;
    if (size < 8)
      fail(ErrorCode::kCorruptData, source, ": ", size, " bytes, shorter than the 8-byte header length");
    std::uint64_t n;
    std::memcpy(&n, data, 8);
    if (n > kMaxSafetensorsHeader)
      fail(ErrorCode::kCorruptData, source, ": header length ", n, " exceeds the 100 MiB limit");
    if (n > size - 8)
      fail(ErrorCode::kCorruptData, source, ": header length ", n, " exceeds the file (", size - 8,
           " bytes after the length)");
    v.data_begin_ = 8 + n;
    const char* text = reinterpret_cast<const char*>(data + 8);

    std::set<std::string> keys;  // nlohmann::json keeps the last of duplicate keys: catch them here
    const nlohmann::json::parser_callback_t on_key = [&](int depth, nlohmann::json::parse_event_t event,
                                                         nlohmann::json& parsed) {
      if (event == nlohmann::json::parse_event_t::key && depth == 1 && !keys.insert(parsed.get<std::string>()).second)
        fail(ErrorCode::kCorruptData, source, ": duplicate tensor name '", parsed.get<std::string>(), "' in the header");
      return true;
    };
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(text, text + n, on_key);
    } catch (const nlohmann::json::exception& e) {
      fail(ErrorCode::kCorruptData, source, ": header is not valid JSON (", e.what(), ")");
    }
    if (!header.is_object()) fail(ErrorCode::kCorruptData, source, ": header is not a JSON object");

    const std::uint64_t payload = size - v.data_begin_;
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      const nlohmann::json& entry = it.value();
      if (name == "__metadata__") {
        if (!entry.is_object()) fail(ErrorCode::kCorruptData, source, ": __metadata__ is not an object");
        continue;
      }
      auto bad = [&](const auto&... what) { fail(ErrorCode::kCorruptData, source, ": tensor '", name, "': ", what...); };
      if (!entry.is_object()) bad("entry is not an object");
      for (auto k = entry.begin(); k != entry.end(); ++k)
        if (k.key() != "dtype" && k.key() != "shape" && k.key() != "data_offsets") bad("unknown key '", k.key(), "'");
      if (!entry.contains("dtype") || !entry["dtype"].is_string()) bad("no string 'dtype'");
      if (!entry.contains("shape") || !entry["shape"].is_array()) bad("no array 'shape'");
      if (!entry.contains("data_offsets") || !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2)
        bad("no 'data_offsets' [begin, end]");
      SafetensorInfo t;
      t.name = name;
      t.dtype_name = entry["dtype"].get<std::string>();
      int elem = 0;
      for (const auto& d : detail::kDtypes)
        if (t.dtype_name == d.name) {
          t.dtype = d.dtype;
          elem = d.bytes;
        }
      if (elem == 0) bad("unknown dtype '", t.dtype_name, "'");
      std::uint64_t numel = 1;
      for (const auto& d : entry["shape"]) {
        if (!d.is_number_unsigned()) bad("shape holds ", d.dump(), ", not a non-negative integer");
        const std::uint64_t x = d.get<std::uint64_t>();
        if (x > (std::uint64_t{1} << 40) || (x != 0 && numel > (std::uint64_t{1} << 50) / x))
          bad("shape ", entry["shape"].dump(), " is too large");
        numel *= x;
        t.shape.push_back(static_cast<std::int64_t>(x));
      }
      for (const auto& o : entry["data_offsets"])
        if (!o.is_number_unsigned()) bad("data_offsets holds ", o.dump(), ", not a non-negative integer");
      const std::uint64_t b = entry["data_offsets"][0].get<std::uint64_t>(), e = entry["data_offsets"][1].get<std::uint64_t>();
      if (b > e) bad("data_offsets [", b, ", ", e, "] end before they begin");
      if (e > payload) bad("data_offsets [", b, ", ", e, "] exceed the ", payload, " data bytes of the file");
      if (numel * static_cast<std::uint64_t>(elem) != e - b)
        bad("shape ", entry["shape"].dump(), " x ", t.dtype_name, " is ", numel * static_cast<std::uint64_t>(elem),
            " bytes, data_offsets hold ", e - b);
      t.begin = v.data_begin_ + b;
      t.end = v.data_begin_ + e;
      v.tensors_.push_back(std::move(t));
    }
    std::vector<const SafetensorInfo*> by_offset;
    for (const auto& t : v.tensors_)
      if (t.end > t.begin) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
    for (std::size_t i = 1; i < by_offset.size(); ++i)
      if (by_offset[i]->begin < by_offset[i - 1]->end)
        fail(ErrorCode::kCorruptData, source, ": tensors '", by_offset[i - 1]->name, "' and '", by_offset[i]->name,
             "' overlap");
    for (std::size_t i = 0; i < v.tensors_.size(); ++i) v.index_[v.tensors_[i].name] = i;
    return v;
  }

  const std::string& source() const { return source_; }
  const std::vector<SafetensorInfo>& tensors() const { return tensors_; }
  /// The tensor called `name`, or nullptr.
  const SafetensorInfo* find(const std::string& name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
  }

  /// Converts tensor `t` to float32 into out[t.numel()]. Throws sasq::Error naming the file and the
  /// tensor for a dtype other than F32/F16/BF16 (kUnsupported) and a non-finite value (kCorruptData).
  void to_float(const SafetensorInfo& t, float* out) const {
    const unsigned char* p = data_ + t.begin;
    const std::uint64_t n = t.numel();
    switch (t.dtype) {
      case Dtype::kF32:
        if (n) std::memcpy(out, p, n * 4);
        break;
      case Dtype::kF16:
      case Dtype::kBF16:
        for (std::uint64_t i = 0; i < n; ++i) {
          std::uint16_t h;
          std::memcpy(&h, p + 2 * i, 2);
          out[i] = t.dtype == Dtype::kF16 ? detail::half_to_float(h) : detail::bf16_to_float(h);
        }
        break;
      default:
        fail(ErrorCode::kUnsupported, source_, ": tensor '", t.name, "' has dtype ", t.dtype_name,
             " (only F32, F16 and BF16 convert to float32)");
    }
    for (std::uint64_t i = 0; i < n; ++i)
      if (!std::isfinite(out[i]))
        fail(ErrorCode::kCorruptData, source_, ": tensor '", t.name, "' has a non-finite value (", out[i],
             ") at element ", i);
  }

 private:
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
  std::uint64_t data_begin_ = 0;
  std::string source_;
  std::vector<SafetensorInfo> tensors_;
  std::map<std::string, std::size_t> index_;
};

/// The tensors of a Hugging Face model folder: `model.safetensors.index.json` and its shards, or a
/// single `model.safetensors`. Each shard is memory-mapped once; tensors are read on demand.
class SafetensorsFolder {
 public:
  /// Opens `dir`. Throws sasq::Error naming the folder, file and tensor when neither file exists,
  /// the index is malformed or names a shard outside the folder, a tensor listed in the index is
  /// missing from its shard, a shard holds a tensor the index does not list or lists elsewhere, or
  /// a tensor appears in two shards.
  explicit SafetensorsFolder(const std::string& dir) : dir_(dir) {
    const std::string index_path = dir + "/model.safetensors.index.json";
    if (std::ifstream(index_path).good()) {
      open_index(index_path);
    } else if (std::ifstream(dir + "/model.safetensors").good()) {
      add_shard("model.safetensors");
      for (std::size_t i = 0; i < shards_[0].view.tensors().size(); ++i)
        where_[shards_[0].view.tensors()[i].name] = 0;
    } else {
      fail(ErrorCode::kIoError, dir, ": no model.safetensors or model.safetensors.index.json");
    }
  }

  const std::string& dir() const { return dir_; }
  /// Names of every tensor, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& kv : where_) out.push_back(kv.first);
    return out;
  }
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  /// The header entry of `name`; throws naming the folder and tensor when it is absent.
  const SafetensorInfo& info(const std::string& name) const {
    const auto it = where_.find(name);
    if (it == where_.end()) fail(ErrorCode::kCorruptData, dir_, ": tensor '", name, "' is missing");
    return *shards_[it->second].view.find(name);
  }
  /// File holding `name` (for messages).
  const std::string& file_of(const std::string& name) const {
    info(name);
    return shards_[where_.at(name)].view.source();
  }
  /// Converts `name` to float32 into out[numel] and drops its file pages from the resident set.
  void to_float(const std::string& name, float* out) const {
    const SafetensorInfo& t = info(name);
    const Shard& s = shards_[where_.at(name)];
    s.view.to_float(t, out);
    s.file->release(static_cast<std::size_t>(t.begin), static_cast<std::size_t>(t.end - t.begin));
  }

 private:
  struct Shard {
    std::unique_ptr<detail::MappedFile> file;
    SafetensorsView view;
  };

  std::size_t add_shard(const std::string& file) {
    for (std::size_t i = 0; i < shards_.size(); ++i)
      if (shard_names_[i] == file) return i;
    auto mapped = std::make_unique<detail::MappedFile>(dir_ + "/" + file);
    SafetensorsView view = SafetensorsView::parse(mapped->data(), mapped->size(), mapped->path());
    shards_.push_back({std::move(mapped), std::move(view)});
    shard_names_.push_back(file);
    return shards_.size() - 1;
  }

  void open_index(const std::string& path) {
    nlohmann::json index;
    try {
      std::ifstream in(path);
      index = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      fail(ErrorCode::kCorruptData, path, ": not valid JSON (", e.what(), ")");
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      fail(ErrorCode::kCorruptData, path, ": no object 'weight_map'");
    for (const auto& [name, file] : index["weight_map"].items()) {
      if (!file.is_string()) fail(ErrorCode::kCorruptData, path, ": tensor '", name, "' maps to ", file.dump(), ", not a file name");
      const std::string f = file.get<std::string>();
      if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
        fail(ErrorCode::kCorruptData, path, ": tensor '", name, "' maps to '", f, "', not a file in the folder");
      const std::size_t s = add_shard(f);
      if (!shards_[s].view.find(name))
        fail(ErrorCode::kCorruptData, path, ": tensor '", name, "' is listed in shard ", f, " but missing from it");
      where_[name] = s;
    }
    for (std::size_t s = 0; s < shards_.size(); ++s)
      for (const auto& t : shards_[s].view.tensors()) {
        const auto it = where_.find(t.name);
        if (it == where_.end())
          fail(ErrorCode::kCorruptData, shards_[s].view.source(), ": tensor '", t.name, "' is not in ", path);
        if (it->second != s)
          fail(ErrorCode::kCorruptData, shards_[s].view.source(), ": tensor '", t.name, "' is also in ",
               shards_[it->second].view.source(), " (duplicate name; the index lists the latter)");
      }
  }

  std::string dir_;
  std::vector<Shard> shards_;
  std::vector<std::string> shard_names_;
  std::map<std::string, std::size_t> where_;  // tensor name -> shard
};

}  // namespace sasq::llama
