// Hugging Face tokenizer.json (tokenizers library format) for LLaMA-style BPE vocabularies -> Tokenizer.
//   model:          {"type": "BPE", "vocab": {piece: id}, "merges": ["a b" | ["a", "b"]], "unk_token",
//                    "byte_fallback", "fuse_unk"}   (no dropout, no subword prefix/suffix)
//   added_tokens:   [{"id", "content", "special"}]   matched verbatim before normalization
//   normalizer:     null | Prepend | Replace (String pattern) | Sequence of those
//   pre_tokenizer:  null (LLaMA-2, TinyLlama, Mistral); byte-level BPE (LLaMA-3) is refused
//   post_processor: null | TemplateProcessing: "single" = [special...] A [special...]
//   decoder:        null | Replace (String) | ByteFallback | Fuse | Strip (" ", start <= 1, stop 0) | Sequence
#pragma once

#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "llama/tokenizer.hpp"
#include "sasq/core/status.hpp"

namespace sasq::llama {

namespace detail {

using Json = nlohmann::json;

inline const Json& member(const Json& j, const char* key, const std::string& where, const std::string& source) {
  if (!j.is_object() || !j.contains(key)) fail(ErrorCode::kCorruptData, source, ": ", where, " has no '", key, "'");
  return j[key];
}

inline std::string string_member(const Json& j, const char* key, const std::string& where, const std::string& source) {
  const Json& v = member(j, key, where, source);
  if (!v.is_string()) fail(ErrorCode::kCorruptData, source, ": ", where, ".", key, " is not a string");
  return v.get<std::string>();
}

/// The steps of a normalizer or decoder: a Sequence is flattened, null gives none.
inline std::vector<Json> steps(const Json& j, const char* list_key) {
  if (j.is_null()) return {};
  if (j.is_object() && j.contains("type") && j["type"] == "Sequence" && j.contains(list_key) && j[list_key].is_array())
    return std::vector<Json>(j[list_key].begin(), j[list_key].end());
  return {j};
}

/// Replace {"pattern": {"String": p}, "content": c} -> (p, c); a Regex pattern is refused.
inline std::pair<std::string, std::string> replace_step(const Json& s, const std::string& where, const std::string& source) {
  const Json& pattern = member(s, "pattern", where, source);
  if (!pattern.is_object() || !pattern.contains("String") || !pattern["String"].is_string())
    fail(ErrorCode::kUnsupported, source, ": ", where, " pattern ", pattern.dump(), " (only String patterns)");
  return {pattern["String"].get<std::string>(), string_member(s, "content", where, source)};
}

}  // namespace detail

/// Parses tokenizer.json text; `source` names it in errors. Throws sasq::Error naming the file and
/// the field: invalid JSON, a model other than BPE, a component type outside the subset above
/// (kUnsupported), malformed vocab/merges/added tokens, unknown token names in the template, and
/// every check of Tokenizer::from_bpe.
inline Tokenizer parse_tokenizer_json(const std::string& text, const std::string& source) {
  using detail::Json;
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {
    fail(ErrorCode::kCorruptData, source, ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail(ErrorCode::kCorruptData, source, ": not a JSON object");
  const Json& model = detail::member(j, "model", "tokenizer", source);
  const std::string type = model.is_object() && model.contains("type") ? model["type"].dump() : "null";
  if (type != "\"BPE\"") fail(ErrorCode::kUnsupported, source, ": model type ", type, " (only BPE)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix", "dropout"})
    if (model.contains(key) && !model[key].is_null())
      fail(ErrorCode::kUnsupported, source, ": model.", key, " = ", model[key].dump(), " is not supported");

  BpeSpec spec;
  const Json& vocab = detail::member(model, "vocab", "model", source);
  if (!vocab.is_object()) fail(ErrorCode::kCorruptData, source, ": model.vocab is not an object");
  auto place = [&](int id, const std::string& piece, const char* what) {
    if (id < 0 || id >= kMaxVocab) fail(ErrorCode::kCorruptData, source, ": ", what, " '", piece, "' has id ", id);
    if (static_cast<std::size_t>(id) >= spec.pieces.size()) spec.pieces.resize(static_cast<std::size_t>(id) + 1);
    std::string& slot = spec.pieces[static_cast<std::size_t>(id)];
    if (!slot.empty() && slot != piece)
      fail(ErrorCode::kCorruptData, source, ": id ", id, " names both '", slot, "' and '", piece, "'");
    slot = piece;
  };
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer()) fail(ErrorCode::kCorruptData, source, ": model.vocab['", it.key(), "'] is not an integer id");
    if (it.key().empty()) fail(ErrorCode::kCorruptData, source, ": model.vocab has an empty piece");
    place(it.value().get<int>(), it.key(), "piece");
  }
  std::string unk;
  if (model.contains("unk_token") && !model["unk_token"].is_null()) unk = detail::string_member(model, "unk_token", "model", source);
  spec.byte_fallback = model.value("byte_fallback", false);
  spec.fuse_unk = model.value("fuse_unk", false);

  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) fail(ErrorCode::kCorruptData, source, ": added_tokens is not an array");
    for (const Json& t : j["added_tokens"]) {
      const Json& id = detail::member(t, "id", "added_tokens[]", source);
      if (!id.is_number_integer()) fail(ErrorCode::kCorruptData, source, ": added token id ", id.dump(), " is not an integer");
      const std::string content = detail::string_member(t, "content", "added_tokens[]", source);
      if (content.empty()) fail(ErrorCode::kCorruptData, source, ": added token ", id.get<int>(), " is empty");
      for (const char* flag : {"lstrip", "rstrip", "single_word"})
        if (t.value(flag, false))
          fail(ErrorCode::kUnsupported, source, ": added token '", content, "' sets ", flag, " (not supported)");
      if (t.value("normalized", false))
        fail(ErrorCode::kUnsupported, source, ": added token '", content, "' is matched after normalization (not supported)");
      place(id.get<int>(), content, "added token");
      spec.added.push_back(id.get<int>());
      if (t.value("special", false)) spec.special.push_back(id.get<int>());
    }
  }
  for (std::size_t id = 0; id < spec.pieces.size(); ++id)
    if (spec.pieces[id].empty()) fail(ErrorCode::kCorruptData, source, ": no piece has id ", id, " (ids must be dense)");
  auto id_of = [&](const std::string& piece, const std::string& where) {
    const auto v = vocab.find(piece);
    if (v != vocab.end()) return v->get<int>();
    for (const int a : spec.added)
      if (spec.pieces[static_cast<std::size_t>(a)] == piece) return a;
    fail(ErrorCode::kCorruptData, source, ": ", where, " names '", piece, "', which is not a token");
  };
  if (!unk.empty()) spec.unk_id = id_of(unk, "model.unk_token");

  const Json& merges = detail::member(model, "merges", "model", source);
  if (!merges.is_array()) fail(ErrorCode::kCorruptData, source, ": model.merges is not an array");
  spec.merges.reserve(merges.size());
  for (std::size_t r = 0; r < merges.size(); ++r) {
    const Json& m = merges[r];
    std::string a, b;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const std::size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        fail(ErrorCode::kCorruptData, source, ": merge ", r, " '", s, "' is not two pieces separated by one space");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      fail(ErrorCode::kCorruptData, source, ": merge ", r, " is ", m.dump(), ", not \"a b\" or [\"a\", \"b\"]");
    }
    const std::string where = "merge " + std::to_string(r);
    spec.merges.emplace_back(id_of(a, where), id_of(b, where));
  }

  for (const Json& n : detail::steps(j.value("normalizer", Json()), "normalizers")) {
    const std::string t = n.value("type", "");
    if (t == "Prepend") {
      if (!spec.replace.empty())
        fail(ErrorCode::kUnsupported, source, ": normalizer Prepend after Replace (only Prepend, then Replace)");
      spec.prepend += detail::string_member(n, "prepend", "normalizer Prepend", source);
    } else if (t == "Replace") {
      spec.replace.push_back(detail::replace_step(n, "normalizer Replace", source));
    } else {
      fail(ErrorCode::kUnsupported, source, ": normalizer ", n.dump(), " (only Prepend and Replace)");
    }
  }
  if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null())
    fail(ErrorCode::kUnsupported, source, ": pre_tokenizer ", j["pre_tokenizer"].value("type", std::string("?")),
         " (only LLaMA-2-style tokenizers without a pre-tokenizer are supported)");

  const Json post = j.value("post_processor", Json());
  if (!post.is_null()) {
    if (post.value("type", "") != "TemplateProcessing")
      fail(ErrorCode::kUnsupported, source, ": post_processor ", post.value("type", std::string("?")), " (only TemplateProcessing)");
    const Json& single = detail::member(post, "single", "post_processor", source);
    bool seen_a = false;
    for (const Json& piece : single) {
      if (piece.contains("Sequence")) {
        if (seen_a || piece["Sequence"].value("id", "") != "A")
          fail(ErrorCode::kUnsupported, source, ": post_processor.single must hold the sequence A once");
        seen_a = true;
      } else if (piece.contains("SpecialToken")) {
        const std::string name = piece["SpecialToken"].value("id", "");
        const Json& specials = detail::member(post, "special_tokens", "post_processor", source);
        if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array())
          fail(ErrorCode::kCorruptData, source, ": post_processor names special token '", name, "' without ids");
        for (const Json& id : specials[name]["ids"]) {
          if (!id.is_number_integer()) fail(ErrorCode::kCorruptData, source, ": special token '", name, "' id ", id.dump());
          (seen_a ? spec.eos : spec.bos).push_back(id.get<int>());
        }
      } else {
        fail(ErrorCode::kCorruptData, source, ": post_processor.single holds ", piece.dump());
      }
    }
    if (!seen_a) fail(ErrorCode::kCorruptData, source, ": post_processor.single has no sequence A");
  }
  // EOS for encode(eos = true) when the template adds none: the "</s>" token (LLaMA-2).
  if (spec.eos.empty())
    for (const int a : spec.added)
      if (spec.pieces[static_cast<std::size_t>(a)] == "</s>") spec.eos.push_back(a);

  for (const Json& d : detail::steps(j.value("decoder", Json()), "decoders")) {
    const std::string t = d.value("type", "");
    if (t == "Replace") {
      spec.decode_replace.push_back(detail::replace_step(d, "decoder Replace", source));
    } else if (t == "ByteFallback") {
      spec.decode_bytes = true;
    } else if (t == "Fuse") {
      // Decoding concatenates anyway.
    } else if (t == "Strip") {
      if (d.value("content", "") != " " || d.value("start", 0) > 1 || d.value("stop", 0) != 0)
        fail(ErrorCode::kUnsupported, source, ": decoder ", d.dump(), " (only Strip of one leading space)");
      spec.decode_strip_space = d.value("start", 0) == 1;
    } else {
      fail(ErrorCode::kUnsupported, source, ": decoder ", d.dump(), " (only Replace, ByteFallback, Fuse, Strip)");
    }
  }
  return Tokenizer::from_bpe(std::move(spec), source);
}

/// Loads a tokenizer.json file (see parse_tokenizer_json).
inline Tokenizer load_tokenizer_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::kIoError, path, ": cannot open file");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_tokenizer_json(text, path);
}

}  // namespace sasq::llama
