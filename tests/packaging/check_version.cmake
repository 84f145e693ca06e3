# Fails unless SASQ_VERSION_STRING in HEADER equals EXPECTED (project(VERSION)).
file(STRINGS ${HEADER} line REGEX "#define SASQ_VERSION_STRING")
string(REGEX MATCH "\"([0-9.]+)\"" _ "${line}")
if(NOT CMAKE_MATCH_1 STREQUAL EXPECTED)
  message(FATAL_ERROR "sasq/version.hpp says '${CMAKE_MATCH_1}', project(VERSION) says '${EXPECTED}'")
endif()
message(STATUS "version ${EXPECTED} agrees")
