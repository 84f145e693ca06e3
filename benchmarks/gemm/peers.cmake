# sasq_probe_peer(<name> <PEER> <label>): sets SASQ_PEER_<name> (cached) to whether the optional
# gemm_bench peer configures and links in a separate CMake run of peer_probe/. A missing or broken
# peer (e.g. a oneDNN CMake config that aborts on a missing OpenCL) then drops that peer from the
# benchmark with one configure message instead of failing sasq's configure. Delete the cache entry
# SASQ_PEER_<name> to probe again after installing the peer.
function(sasq_probe_peer name peer label)
  if(DEFINED CACHE{SASQ_PEER_${name}})
    if(NOT SASQ_PEER_${name})
      message(STATUS "sasq: gemm_bench without ${label} (probed before: ${SASQ_PEER_${name}_WHY})")
    endif()
    return()
  endif()
  set(flags "-DPEER=${peer}" "-DCMAKE_BUILD_TYPE=Release")
  foreach(var CMAKE_CXX_COMPILER CMAKE_CXX_COMPILER_LAUNCHER CMAKE_PREFIX_PATH dnnl_DIR)
    if(DEFINED ${var})
      list(APPEND flags "-D${var}=${${var}}")
    endif()
  endforeach()
  # execute_process, not try_compile: a probe that fails to configure must not be an error here.
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/peer_probe_${name})
  file(REMOVE_RECURSE ${dir})
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${CMAKE_CURRENT_SOURCE_DIR}/peer_probe -B ${dir} -G ${CMAKE_GENERATOR} ${flags}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc EQUAL 0)
    execute_process(COMMAND ${CMAKE_COMMAND} --build ${dir} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  endif()
  set(ok OFF)
  if(rc EQUAL 0)
    set(ok ON)
  endif()
  set(why "")
  if(NOT ok)
    # The first error line of the probe says why ("Could NOT find OpenCL", an undefined reference, ...).
    string(REGEX MATCH "(CMake Error[^\n]*\n[^\n]*|Could NOT find[^\n]*|[^\n]*undefined reference[^\n]*|[^\n]*fatal error[^\n]*|[^\n]*cannot find -l[^\n]*)" why "${out}")
    string(REGEX REPLACE "[ \t\r\n]+" " " why "${why}")
    string(STRIP "${why}" why)
    if(why STREQUAL "")
      set(why "the probe project failed to configure or link")
    endif()
    message(STATUS "sasq: gemm_bench without ${label}: ${why}")
  endif()
  set(SASQ_PEER_${name} ${ok} CACHE INTERNAL "optional gemm_bench peer ${label} usable")
  set(SASQ_PEER_${name}_WHY "${why}" CACHE INTERNAL "why ${label} is not usable")
endfunction()
