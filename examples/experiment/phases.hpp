// Where the experiment's time goes: process CPU time (all threads) and wall time per named phase.
// Phases nest exclusively: entering one pauses the enclosing phase until it ends, so the phase
// totals add up to the time spent inside any phase.
#pragma once

#include <time.h>

#include <chrono>
#include <map>
#include <string>

namespace sasq::experiment {

/// Process CPU time in seconds (every thread, user + system).
inline double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

class PhaseTimes {
 public:
  struct Totals {
    double cpu_s = 0, wall_s = 0;
  };

  /// RAII: the phase `name` runs from construction to destruction.
  class Scope {
   public:
    Scope(PhaseTimes& t, std::string name) : t_(t), outer_(t.current_) { t_.switch_to(std::move(name)); }
    ~Scope() { t_.switch_to(outer_); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    PhaseTimes& t_;
    std::string outer_;
  };

  const std::map<std::string, Totals>& totals() const { return totals_; }

 private:
  void switch_to(std::string next) {
    const double cpu = process_cpu_seconds();
    const auto wall = std::chrono::steady_clock::now();
    if (!current_.empty()) {
      Totals& t = totals_[current_];
      t.cpu_s += cpu - cpu0_;
      t.wall_s += std::chrono::duration<double>(wall - wall0_).count();
    }
    current_ = std::move(next);
    cpu0_ = cpu;
    wall0_ = wall;
  }

  std::map<std::string, Totals> totals_;
  std::string current_;
  double cpu0_ = 0;
  std::chrono::steady_clock::time_point wall0_{};
};

}  // namespace sasq::experiment
