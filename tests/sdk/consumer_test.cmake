# Installs the SDK into a private prefix, builds tests/sdk/consumer against it
# with find_package alone, runs the vendor's test on the SDK's test host
# (Opskernel::testing), and has the kernel load the result; builds
# plugins/hello from its own folder the same way.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(OUT "${out}${err}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(PREFIX ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${PREFIX} --component sdk)
if(NOT EXISTS ${PREFIX}/include/opskernel/opk_abi.h OR NOT EXISTS ${PREFIX}/lib/cmake/Opskernel/OpskernelConfig.cmake)
  message(FATAL_ERROR "SDK install layout incomplete under ${PREFIX}")
endif()
# Copy the consumer away from the source tree so nothing can reach sdk/ by path.
file(COPY ${SOURCE_DIR}/tests/sdk/consumer/ DESTINATION ${WORK_DIR}/src)
# The SDK's test host is a static library: in a sanitizer build of the
# kernel it is instrumented, and a vendor's test that links it is built the
# same way.
set(FLAGS)
if(SANITIZE)
  set(FLAGS "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-omit-frame-pointer"
            "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined"
            "-DCMAKE_MODULE_LINKER_FLAGS=-fsanitize=address,undefined")
endif()
run(${CMAKE_COMMAND} -S ${WORK_DIR}/src -B ${WORK_DIR}/build -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${PREFIX} -DCMAKE_BUILD_TYPE=Release ${FLAGS})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
set(LIB ${WORK_DIR}/build/vendor_source.so)
# The vendor's own test, on Opskernel::testing from the installed SDK.
if(NOT EXISTS ${PREFIX}/include/opskernel/testing.hpp)
  message(FATAL_ERROR "the SDK install lacks opskernel/testing.hpp under ${PREFIX}")
endif()
run(${WORK_DIR}/build/vendor_test)
if(NOT OUT MATCHES "vendor test passed: vendor ok")
  message(FATAL_ERROR "the vendor's test on the test host did not pass:\n${OUT}")
endif()
run(${KERNEL} plugins check ${LIB})
if(NOT OUT MATCHES "\"id\": \"com.example.quota\"" OR NOT OUT MATCHES "would be loaded")
  message(FATAL_ERROR "plugins check did not accept the vendor plugin:\n${OUT}")
endif()
# Until the kernel evaluates alert sources, it says so instead of loading
# them without a word.
if(NOT OUT MATCHES "does not evaluate alert sources yet")
  message(FATAL_ERROR "plugins check did not say that alert sources are not evaluated:\n${OUT}")
endif()
file(MAKE_DIRECTORY ${WORK_DIR}/plugins)
file(COPY ${LIB} DESTINATION ${WORK_DIR}/plugins)
run(${KERNEL} --plugins-dir ${WORK_DIR}/plugins --data-dir ${WORK_DIR}/data jobs invoke vendor-check --tenant acme)
if(NOT OUT MATCHES "vendor check ran for acme" OR NOT OUT MATCHES "COMPLETED NORMAL")
  message(FATAL_ERROR "the kernel did not run the vendor job:\n${OUT}")
endif()
# hello, the reference plugin, builds from its own folder against the
# installed SDK too, and the kernel accepts it.
file(COPY ${SOURCE_DIR}/plugins/hello/ DESTINATION ${WORK_DIR}/hello-src)
run(${CMAKE_COMMAND} -S ${WORK_DIR}/hello-src -B ${WORK_DIR}/hello-build -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${PREFIX} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/hello-build)
run(${KERNEL} plugins check ${WORK_DIR}/hello-build/hello.so)
if(NOT OUT MATCHES "would be loaded")
  message(FATAL_ERROR "plugins check did not accept hello built out of tree:\n${OUT}")
endif()
message(STATUS "out-of-tree plugin built against the installed SDK and run by the kernel")
