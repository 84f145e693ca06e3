// The command-line layer of sasq-llama, sasq-train and sasq-experiment (CLI11): one adder per
// option, each with the one validation every program applies to it, --version, and the exit-code
// convention (0 ok, 1 runtime error, 2 usage error; README "Exit codes").
#pragma once

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sasq/core/status.hpp"
#include "sasq/version.hpp"

namespace sasq::cli {

/// Exit codes of the three programs.
enum ExitCode : int {
  kExitOk = 0,
  kExitRuntimeError = 1,  ///< bad data, unreadable or unwritable file, non-finite result, ...
  kExitUsageError = 2,    ///< unknown option, malformed or out-of-range value, options that conflict
};

/// A usage error found after parsing (options that cannot work together): exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Throws UsageError with the streamed arguments as its message.
template <class... Args>
[[noreturn]] void usage_fail(const Args&... args) {
  throw UsageError(sasq::detail::concat(args...));
}

/// Weight group sizes sasq::pack_weights accepts (0 = one scale per output channel).
inline const std::vector<int> kWeightGroupSizes = {0, 32, 64, 128};

namespace detail {

/// Parses a decimal integer: optional sign and digits only, so "3.9", "1e10", "0x10" and "12abc" are
/// refused instead of cut, "010" is ten (not octal 8), and values beyond long long are refused.
inline bool parse_decimal(const std::string& s, long long& v) {
  const std::size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i == s.size() || s.find_first_not_of("0123456789", i) != std::string::npos) return false;
  errno = 0;
  v = std::strtoll(s.c_str(), nullptr, 10);
  return errno != ERANGE;
}

/// Validates an integer option's text: a decimal integer in [lo, hi]; rewrites it without leading zeros.
inline CLI::Validator int_in(long long lo, long long hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        long long v = 0;
        if (!parse_decimal(s, v)) return "'" + s + "' is not a decimal integer";
        if (v < lo || v > hi) return "'" + s + "' is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
        s = std::to_string(v);
        return {};
      },
      "", "integer range");
}

inline std::string join(const std::vector<std::string>& v) {
  std::string t;
  for (const auto& a : v) t += (t.empty() ? "" : "|") + a;
  return t;
}

/// Validates an integer option's text: one of `allowed`.
inline CLI::Validator int_member(const std::vector<int>& allowed) {
  std::vector<std::string> names;
  for (const int a : allowed) names.push_back(std::to_string(a));
  return CLI::Validator(
      [allowed, names](std::string& s) -> std::string {
        long long v = 0;
        if (!parse_decimal(s, v)) return "'" + s + "' is not a decimal integer";
        for (const int a : allowed)
          if (v == a) {
            s = std::to_string(v);
            return {};
          }
        return "'" + s + "' is not one of " + join(names);
      },
      "", "integer set");
}

/// Validates a word option: one of `allowed`.
inline CLI::Validator word_member(const std::vector<std::string>& allowed) {
  return CLI::Validator(
      [allowed](std::string& s) -> std::string {
        for (const auto& a : allowed)
          if (s == a) return {};
        return "'" + s + "' is not one of " + join(allowed);
      },
      "", "word set");
}

/// Validates a real option's text: a finite number in [lo, hi].
inline CLI::Validator real_in(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v)) return "'" + s + "' is not a finite number";
        if (v < lo || v > hi) {
          std::ostringstream os;
          os << "'" << s << "' is outside [" << lo << ", " << hi << "]";
          return os.str();
        }
        return {};
      },
      "", "real range");
}

/// Validates an input path: an existing file (kind 'f') or folder (kind 'd').
inline CLI::Validator existing(char kind) {
  return CLI::Validator(
      [kind](std::string& s) -> std::string {
        std::error_code ec;
        const auto st = std::filesystem::status(s, ec);
        if (!std::filesystem::exists(st)) return s + " does not exist";
        if (kind == 'f' && std::filesystem::is_directory(st)) return s + " is a folder, not a file";
        if (kind == 'd' && !std::filesystem::is_directory(st)) return s + " is not a folder";
        if (::access(s.c_str(), R_OK) != 0) return s + " is not readable";
        return {};
      },
      "", "existing path");
}

}  // namespace detail

// ---- option adders -------------------------------------------------------------------------------

/// An integer option restricted to [lo, hi].
template <class Int>
CLI::Option* add_int(CLI::App& app, const std::string& name, Int& v, Int lo, Int hi, const std::string& help) {
  return app.add_option(name, v, help)
      ->transform(detail::int_in(lo, hi))
      ->type_name("INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]")
      ->capture_default_str();
}

/// An integer option restricted to the listed values.
inline CLI::Option* add_int_choice(CLI::App& app, const std::string& name, int& v, const std::vector<int>& allowed,
                                   const std::string& help) {
  std::vector<std::string> names;
  for (const int a : allowed) names.push_back(std::to_string(a));
  return app.add_option(name, v, help)->transform(detail::int_member(allowed))->type_name(detail::join(names))->capture_default_str();
}

/// A finite real option restricted to [lo, hi].
inline CLI::Option* add_real(CLI::App& app, const std::string& name, double& v, double lo, double hi,
                             const std::string& help) {
  std::ostringstream range;
  range << "X in [" << lo << ", " << hi << "]";
  return app.add_option(name, v, help)->check(detail::real_in(lo, hi))->type_name(range.str())->capture_default_str();
}

/// A string option restricted to the listed words.
inline CLI::Option* add_choice(CLI::App& app, const std::string& name, std::string& v,
                               const std::vector<std::string>& allowed, const std::string& help) {
  return app.add_option(name, v, help)->check(detail::word_member(allowed))->type_name(detail::join(allowed))->capture_default_str();
}

/// --wbits: weight bits, 0 (float), 4 or 8.
inline CLI::Option* add_wbits(CLI::App& app, int& v) {
  return add_int_choice(app, "--wbits", v, {0, 4, 8}, "weight bits (0 = float weights)");
}
/// --wgroup: weight group size along K, one of kWeightGroupSizes.
inline CLI::Option* add_wgroup(CLI::App& app, int& v) {
  return add_int_choice(app, "--wgroup", v, kWeightGroupSizes, "weight group size along K (0 = per output channel)");
}
/// --abits: activation bits; `allowed` is {0, 4, 8} where 0 (no activation quantization) makes sense.
inline CLI::Option* add_abits(CLI::App& app, int& v, const std::vector<int>& allowed) {
  return add_int_choice(app, "--abits", v, allowed, "activation bits" + std::string(allowed.front() == 0 ? " (0 = float)" : ""));
}
/// --wquant: how weights are quantized (llama::parse_weight_method's names): round to nearest, MSE-optimal
/// clip, or GPTQ on calibration Hessians.
inline CLI::Option* add_wquant(CLI::App& app, std::string& v) {
  return add_choice(app, "--wquant", v, {"rtn", "mse", "gptq", "gptq-ao"},
                    "weight quantization: round to nearest, MSE-optimal clip, or GPTQ (Hessians from the calibration "
                    "text, MSE-clip scales; gptq-ao: columns in act-order, static groups)");
}
/// --act-clip: clip ratio c of dynamic per-token activation scales, s = c · absmax / qmax (QuaRot: 0.9).
inline CLI::Option* add_act_clip(CLI::App& app, double& v) {
  return add_real(app, "--act-clip", v, 0.01, 1.0, "dynamic per-token clip ratio c: s = c * absmax / qmax (QuaRot uses 0.9)");
}
/// --observer: the static-scale observer (llama::parse_observer's names).
inline CLI::Option* add_observer(CLI::App& app, std::string& v, const std::string& help) {
  return add_choice(app, "--observer", v, {"minmax", "meanabsmax", "ema", "percentile", "mse"}, help);
}
/// --threads: worker threads, 1..256.
inline CLI::Option* add_threads(CLI::App& app, int& v) { return add_int(app, "--threads", v, 1, 256, "worker threads"); }

/// An input file that must exist (checked before any work).
inline CLI::Option* add_input_file(CLI::App& app, const std::string& name, std::string& v, const std::string& help) {
  return app.add_option(name, v, help)->check(detail::existing('f'))->type_name("FILE");
}
/// A folder that must exist.
inline CLI::Option* add_input_dir(CLI::App& app, const std::string& name, std::string& v, const std::string& help) {
  return app.add_option(name, v, help)->check(detail::existing('d'))->type_name("DIR");
}

/// --model: a llama2.c checkpoint file or a Hugging Face folder (one holding config.json).
inline CLI::Option* add_model(CLI::App& app, std::string& v, const std::string& default_text) {
  return app
      .add_option("--model", v,
                  "llama2.c checkpoint file or Hugging Face folder (config.json, safetensors) (default " + default_text + ")")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            std::error_code ec;
            if (std::filesystem::is_directory(s, ec))
              return std::filesystem::exists(std::filesystem::path(s) / "config.json", ec)
                         ? std::string()
                         : s + " is a folder without config.json (not a Hugging Face model)";
            std::string f = s;
            return detail::existing('f')(f);
          },
          "", "model path"))
      ->type_name("FILE|DIR");
}
/// --tokenizer: a llama2.c tokenizer file or a tokenizer.json; a model folder's tokenizer.json is used
/// when this is not given.
inline CLI::Option* add_tokenizer(CLI::App& app, std::string& v, const std::string& default_text) {
  return add_input_file(app, "--tokenizer", v,
                        "llama2.c tokenizer or tokenizer.json (default: the model folder's tokenizer.json, else " +
                            default_text + ")");
}

/// Empty when `dir` is an existing folder this process can create files in (tried), else why not.
inline std::string check_writable_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  const auto st = std::filesystem::status(dir, ec);
  if (!std::filesystem::exists(st)) return "folder " + dir.string() + " does not exist";
  if (!std::filesystem::is_directory(st)) return dir.string() + " is not a folder";
  // Creating a file is the test that counts (permissions, read-only mounts, root): try one.
  std::string probe = (dir / ".sasq-write-test-XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) return "folder " + dir.string() + " is not writable (" + std::strerror(errno) + ")";
  ::close(fd);
  ::unlink(probe.c_str());
  return {};
}

/// Empty when `file` can be written: a folder-less or existing folder that is writable and, when the
/// file exists, not a folder and writable itself.
inline std::string check_output_file(const std::string& file) {
  namespace fs = std::filesystem;
  if (file.empty()) return "empty path";
  const fs::path p(file);
  std::error_code ec;
  const auto st = fs::status(p, ec);
  if (fs::is_directory(st)) return file + " is a folder";
  if (fs::exists(st) && !fs::is_regular_file(st)) {  // a device or pipe (/dev/stdout): written in place
    return ::access(file.c_str(), W_OK) == 0 ? std::string() : file + " is not writable";
  }
  const fs::path parent = p.has_parent_path() ? p.parent_path() : fs::path(".");
  const std::string why = check_writable_dir(parent);
  if (!why.empty()) return "cannot write " + file + ": " + why;
  return {};
}

/// Empty when `dir` is a writable folder or can be created (its nearest existing ancestor is writable).
inline std::string check_output_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  if (dir.empty()) return "empty path";
  fs::path p = fs::absolute(fs::path(dir)).lexically_normal();
  std::error_code ec;
  if (fs::exists(p, ec)) return check_writable_dir(p);
  while (p.has_parent_path() && p != p.parent_path()) {
    p = p.parent_path();
    const auto st = fs::status(p, ec);
    if (fs::exists(st)) {
      if (!fs::is_directory(st)) return "cannot create " + dir + ": " + p.string() + " is not a folder";
      const std::string why = check_writable_dir(p);
      return why.empty() ? why : "cannot create " + dir + ": " + why;
    }
  }
  return "cannot create " + dir;
}

/// An output file: its folder must exist and be writable (checked before any work).
inline CLI::Option* add_output_file(CLI::App& app, const std::string& name, std::string& v, const std::string& help) {
  return app.add_option(name, v, help)
      ->check(CLI::Validator([](std::string& s) { return check_output_file(s); }, "", "writable file"))
      ->type_name("FILE")
      ->capture_default_str();
}
/// An output folder: writable, or creatable (checked before any work).
inline CLI::Option* add_output_dir(CLI::App& app, const std::string& name, std::string& v, const std::string& help) {
  return app.add_option(name, v, help)
      ->check(CLI::Validator([](std::string& s) { return check_output_dir(s); }, "", "writable folder"))
      ->type_name("DIR")
      ->capture_default_str();
}

/// A story range FIRST-LAST (1-based, inclusive).
struct StoryRange {
  int first = 0, last = 0;
};

/// Parses "FIRST-LAST" with lo <= FIRST <= LAST <= hi; throws CLI::ValidationError naming `option`.
inline StoryRange parse_story_range(const std::string& option, const std::string& s, int lo, int hi) {
  const auto dash = s.find('-');
  auto number = [&](const std::string& t, int& out) {
    if (t.empty() || t.size() > 9 || t.find_first_not_of("0123456789") != std::string::npos) return false;
    out = std::stoi(t);
    return true;
  };
  StoryRange r;
  if (dash == std::string::npos || !number(s.substr(0, dash), r.first) || !number(s.substr(dash + 1), r.last))
    throw CLI::ValidationError(option, "'" + s + "' is not FIRST-LAST (e.g. 501-1000)");
  if (r.first < lo || r.last > hi || r.first > r.last)
    throw CLI::ValidationError(option, "'" + s + "' is not a range within " + std::to_string(lo) + "-" + std::to_string(hi));
  return r;
}

/// --NAME FIRST-LAST: a story range within [lo, hi].
inline CLI::Option* add_story_range(CLI::App& app, const std::string& name, StoryRange& v, int lo, int hi,
                                    const std::string& help) {
  return app
      .add_option_function<std::string>(
          name, [&v, name, lo, hi](const std::string& s) { v = parse_story_range(name, s, lo, hi); }, help)
      ->type_name("FIRST-LAST")
      ->default_str(std::to_string(v.first) + "-" + std::to_string(v.last));
}

// ---- the program ---------------------------------------------------------------------------------

/// Sets up `app` the same way for the three programs: --version and help formatting.
inline void init(CLI::App& app) {
  app.set_version_flag("--version", std::string(app.get_name()) + " (sasq " + sasq::kVersion + ")");
  app.get_formatter()->column_width(34);
}

/// Parses argv into `app` and runs body() with the exit-code convention: --help and --version exit 0;
/// a parse error or UsageError prints one line "<program>: usage error: ..." and exits 2; any other
/// exception, and standard output that could not be written, prints "<program>: error: ..." and
/// exits 1.
template <class Body>
int run(CLI::App& app, int argc, char** argv, Body&& body) {
  const std::string prog = app.get_name();
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 checks requirements (a subcommand) before unknown arguments; the unknown ones say more.
    std::string what = e.what();
    if (!app.remaining().empty() && dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
      what = "unknown command or option:";
      for (const auto& r : app.remaining()) what += " " + r;
    }
    std::fprintf(stderr, "%s: usage error: %s (see %s --help)\n", prog.c_str(), what.c_str(), prog.c_str());
    return kExitUsageError;
  }
  try {
    const int rc = body();
    // Results printed to stdout count as output: a failed write (a full disk, a closed pipe) is an error.
    std::cout.flush();
    if (!std::cout || std::fflush(stdout) != 0 || std::ferror(stdout))
      throw sasq::Error(sasq::ErrorCode::kIoError, "cannot write the results to standard output");
    return rc;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: usage error: %s (see %s --help)\n", prog.c_str(), e.what(), prog.c_str());
    return kExitUsageError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", prog.c_str(), e.what());
    return kExitRuntimeError;
  }
}

}  // namespace sasq::cli
