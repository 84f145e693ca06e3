# Compiles eigen_rejects.cpp (expected to fail) and checks every static_assert message appears.
# Usage: cmake -DCXX=<compiler> -DFLAGS=<flags separated by |> -DSRC=<file> -P eigen_rejects.cmake
string(REPLACE "|" ";" flags "${FLAGS}")
execute_process(COMMAND ${CXX} ${flags} ${SRC} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "eigen_rejects.cpp compiled, but every function in it must be rejected")
endif()
foreach(msg "needs a storage-backed Eigen object" "needs row-major storage" "would dangle"
            "takes an Eigen vector")
  string(FIND "${out}${err}" "${msg}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "missing static_assert message '${msg}' in:\n${err}")
  endif()
endforeach()
message(STATUS "all four misuses rejected at compile time")
