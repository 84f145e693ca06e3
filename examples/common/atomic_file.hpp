// Output files of the examples written whole or not at all: the text goes to a temporary file in
// the destination's folder, which is flushed to disk and renamed over the destination only when
// every write succeeded, so a full disk, a size limit or a crash never leaves a cut file and never
// destroys an existing one. Every failure is a sasq::Error naming the file.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "sasq/core/status.hpp"

namespace sasq::examples {

namespace detail {

/// Writes all of `text` to fd; false (errno set) on any failure, including a short write.
inline bool write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace detail

/// Replaces `path` with `text` atomically (temporary file in the same folder, fsync, rename). An
/// existing `path` that is not a regular file (/dev/stdout, a pipe) is written in place instead, every
/// write checked. Throws sasq::Error(kIoError) naming `path` and the system's reason.
inline void write_file_atomic(const std::string& path, std::string_view text) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail(ErrorCode::kIoError, path, ": cannot open for writing: ", std::strerror(errno));
    const bool ok = detail::write_all(fd, text);
    const int err = errno;
    if (::close(fd) != 0 || !ok) fail(ErrorCode::kIoError, path, ": write failed: ", std::strerror(ok ? errno : err));
    return;
  }
  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) fail(ErrorCode::kIoError, path, ": cannot create a temporary file next to it: ", std::strerror(errno));
  bool ok = detail::write_all(fd, text) && ::fsync(fd) == 0;
  int err = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  // mkstemp creates 0600; give the file the permissions a plain create would (0666 & ~umask).
  if (ok) {
    const mode_t mask = ::umask(0);
    ::umask(mask);
    if (::chmod(tmp.c_str(), 0666 & ~mask) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
      ok = false;
      err = errno;
    }
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    fail(ErrorCode::kIoError, path, ": write failed (", std::strerror(err), "); the file was left as it was");
  }
}

}  // namespace sasq::examples
