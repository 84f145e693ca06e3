// Error reporting: sasq::Error (thrown by CPU entry points) and Status (returned by CUDA launchers).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace sasq {

/// What kind of failure an Error or Status carries.
enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,  // bad shape, bad scale, non-finite input, bad option
  kOutOfRange,       // a value or size beyond a documented bound (e.g. K overflowing int32)
  kUnsupported,      // the ISA, device or scheme is not available
  kCorruptData,      // a file or buffer that does not match its format
  kIoError,          // a file that cannot be opened or read
  kCudaError,        // an error reported by the CUDA runtime
};

inline const char* to_string(ErrorCode c) noexcept {
  switch (c) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kOutOfRange: return "out of range";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kCorruptData: return "corrupt data";
    case ErrorCode::kIoError: return "I/O error";
    case ErrorCode::kCudaError: return "CUDA error";
  }
  return "unknown";
}

/// Exception thrown by sasq entry points; what() says what was wrong and where.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

/// Result of an operation that does not throw (CUDA launchers, parsers used by fuzzers).
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return {}; }

  bool is_ok() const noexcept { return code_ == ErrorCode::kOk; }
  explicit operator bool() const noexcept { return is_ok(); }
  ErrorCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  /// Throws sasq::Error when the status is not ok.
  void throw_if_error() const {
    if (!is_ok()) throw Error(code_, message_);
  }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

/// Throws sasq::Error(code, message) built from the streamed arguments.
template <class... Args>
[[noreturn]] void fail(ErrorCode code, const Args&... args) {
  throw Error(code, detail::concat(args...));
}

}  // namespace sasq

/// Validates an API precondition: throws sasq::Error(kInvalidArgument, "<fn>: <message>").
#define SASQ_REQUIRE(cond, ...)                                                           \
  do {                                                                                    \
    if (!(cond)) ::sasq::fail(::sasq::ErrorCode::kInvalidArgument, __func__, ": ", __VA_ARGS__); \
  } while (0)
