// sasq version; kept equal to project(VERSION) in CMakeLists.txt (a ctest checks it).
#pragma once

#define SASQ_VERSION_MAJOR 0
#define SASQ_VERSION_MINOR 1
#define SASQ_VERSION_PATCH 0
#define SASQ_VERSION_STRING "0.1.0"

namespace sasq {
/// Library version as "MAJOR.MINOR.PATCH".
inline constexpr const char* kVersion = SASQ_VERSION_STRING;
}  // namespace sasq
