// expect_error: the llama tests' check that a call throws sasq::Error with a given code and message.
#pragma once

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>

#include "sasq/core/status.hpp"

namespace sasq::llama::test {

/// Expects `f()` to throw a sasq::Error of `code` whose message holds every fragment.
template <class F>
void expect_error(F&& f, sasq::ErrorCode code, std::initializer_list<std::string> fragments) {
  try {
    f();
    FAIL("no error");
  } catch (const sasq::Error& e) {
    const std::string msg = e.what();
    CHECK_MESSAGE(e.code() == code, msg);
    for (const auto& s : fragments) CHECK_MESSAGE(msg.find(s) != std::string::npos, msg, " lacks ", s);
  }
}

}  // namespace sasq::llama::test
