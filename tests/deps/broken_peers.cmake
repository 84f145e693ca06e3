# cmake -DSOURCE=<sasq> -DWORK=<dir> [-DGENERATOR=...] -P broken_peers.cmake
# Configures sasq (library + benchmarks) with a oneDNN CMake config that aborts (as Debian's did
# without OpenCL) and an openblas.pc that points to no library: the configure must succeed, name
# each dropped peer once, and build gemm_bench without them.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/dnnl ${WORK}/pc)
file(WRITE ${WORK}/dnnl/dnnl-config.cmake "message(FATAL_ERROR \"Could NOT find OpenCL (missing: OpenCL_LIBRARY OpenCL_INCLUDE_DIR)\")\n")
file(WRITE ${WORK}/pc/openblas.pc
     "Name: openblas\nDescription: broken on purpose\nVersion: 0.3.21\nLibs: -L${WORK}/none -lsasq_no_such_openblas\nCflags:\n")
if(NOT GENERATOR)
  set(GENERATOR Ninja)
endif()
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${WORK}/pc
          ${CMAKE_COMMAND} -S ${SOURCE} -B ${WORK}/build -G ${GENERATOR} -DSASQ_BUILD_TESTS=OFF
          -DSASQ_BUILD_EXAMPLES=OFF -DSASQ_BUILD_BENCHMARKS=ON -DSASQ_ENABLE_CUDA=OFF -DSASQ_INSTALL=OFF
          -Ddnnl_DIR=${WORK}/dnnl
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configure failed with broken optional peers (exit ${rc})")
endif()
foreach(peer oneDNN OpenBLAS)
  string(REGEX MATCHALL "gemm_bench without ${peer}:" hits "${out}")
  list(LENGTH hits n)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "expected one message dropping ${peer}, got ${n}")
  endif()
endforeach()
file(READ ${WORK}/build/build.ninja ninja)
if(ninja MATCHES "SASQ_BENCH_ONEDNN|SASQ_BENCH_OPENBLAS")
  message(FATAL_ERROR "gemm_bench still uses a broken peer")
endif()
