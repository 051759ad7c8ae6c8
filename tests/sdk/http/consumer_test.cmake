# Installs the SDK into a private prefix and builds tests/sdk/http/consumer
# against it with find_package alone, twice: asking for the http component
# (its program, linked with Opskernel::http and Poco, runs a GET to a closed
# port and names the refusal), and without it, with Poco out of reach, which
# must configure, build and run all the same.
# A step that fails stops the test with what it printed.
macro(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE STEP_RC OUTPUT_VARIABLE OUT ERROR_VARIABLE OUT)
  if(NOT STEP_RC EQUAL 0)
    message(FATAL_ERROR "${ARGN}: exit ${STEP_RC}\n${OUT}")
  endif()
endmacro()

file(REMOVE_RECURSE ${WORK_DIR})
set(PREFIX ${WORK_DIR}/prefix)
step(${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${PREFIX} --component sdk)
foreach(f include/opskernel/http.hpp lib/libopskernel_http.a lib/cmake/Opskernel/OpskernelHttpTargets.cmake)
  if(NOT EXISTS ${PREFIX}/${f})
    message(FATAL_ERROR "the SDK install lacks ${f} under ${PREFIX}")
  endif()
endforeach()
file(COPY ${SOURCE_DIR}/tests/sdk/http/consumer/ DESTINATION ${WORK_DIR}/src)
# The SDK's static libraries are instrumented in a sanitizer build; a
# program that links them is built the same way.
set(FLAGS)
if(SANITIZE)
  set(FLAGS "-DCMAKE_CXX_FLAGS=-fsanitize=address,undefined -fno-omit-frame-pointer"
            "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined")
endif()

step(${CMAKE_COMMAND} -S ${WORK_DIR}/src -B ${WORK_DIR}/with-http -G ${GENERATOR} -DWITH_HTTP=ON
    -DCMAKE_PREFIX_PATH=${PREFIX} -DCMAKE_BUILD_TYPE=Release ${FLAGS})
step(${CMAKE_COMMAND} --build ${WORK_DIR}/with-http)
# Port 1 on 127.0.0.1: nobody listens there.
step(${WORK_DIR}/with-http/http_probe http://127.0.0.1:1/health)
if(NOT OUT MATCHES "^connect 127\\.0\\.0\\.1:1: connection refused")
  message(FATAL_ERROR "the vendor's program on Opskernel::http did not name the refused connection:\n${OUT}")
endif()

step(${CMAKE_COMMAND} -S ${WORK_DIR}/src -B ${WORK_DIR}/without-http -G ${GENERATOR} -DWITH_HTTP=OFF
    -DCMAKE_DISABLE_FIND_PACKAGE_Poco=TRUE -DCMAKE_PREFIX_PATH=${PREFIX} -DCMAKE_BUILD_TYPE=Release ${FLAGS})
step(${CMAKE_COMMAND} --build ${WORK_DIR}/without-http)
step(${WORK_DIR}/without-http/no_http)
if(NOT OUT MATCHES "sdk without http: ok")
  message(FATAL_ERROR "the program without Opskernel::http did not run:\n${OUT}")
endif()
message(STATUS "Opskernel::http used out of tree; the SDK without it needs no Poco")
