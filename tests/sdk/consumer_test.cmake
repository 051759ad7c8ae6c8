# Installs the SDK into a private prefix, builds tests/sdk/consumer against it
# with find_package alone, runs the vendor's test on the SDK's test host
# (Opskernel::testing), and has the kernel load the result: it runs the
# vendor's job, runs its alert source as the scheduled job
# alerts.acme-disk-quota, and an operator sees the alert through
# GET /api/v1/alerts (admin-http loaded beside it). Builds plugins/hello
# from its own folder the same way.
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
# The SDK's static libraries (the test host, nlohmann::json's parser and
# serializer that every plugin links) are instrumented in a sanitizer build
# of the kernel: a vendor's plugin and test that link them are built the
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
set(LIB ${WORK_DIR}/build/acme_alerts.so)
# The vendor's own test, on Opskernel::testing from the installed SDK.
if(NOT EXISTS ${PREFIX}/include/opskernel/testing.hpp)
  message(FATAL_ERROR "the SDK install lacks opskernel/testing.hpp under ${PREFIX}")
endif()
run(${WORK_DIR}/build/vendor_test)
if(NOT OUT MATCHES "vendor test passed on both stores: vendor ok")
  message(FATAL_ERROR "the vendor's test on the test host did not pass:\n${OUT}")
endif()
run(${KERNEL} plugins check ${LIB})
if(NOT OUT MATCHES "\"id\": \"com.acme.alerts\"" OR NOT OUT MATCHES "\"acme-disk-quota\"" OR NOT OUT MATCHES "would be loaded")
  message(FATAL_ERROR "plugins check did not accept the vendor plugin with its alert source:\n${OUT}")
endif()
set(PLUGINS ${WORK_DIR}/plugins)
set(DATA ${WORK_DIR}/data)
file(MAKE_DIRECTORY ${PLUGINS})
file(COPY ${LIB} ${BINARY_DIR}/plugins/admin-http.so DESTINATION ${PLUGINS})
set(K ${KERNEL} --plugins-dir ${PLUGINS} --data-dir ${DATA})
run(${K} jobs invoke vendor-check --tenant acme)
if(NOT OUT MATCHES "vendor check ran for acme" OR NOT OUT MATCHES "COMPLETED NORMAL")
  message(FATAL_ERROR "the kernel did not run the vendor job:\n${OUT}")
endif()
# The alert source: the kernel schedules it as the job alerts.acme-disk-quota;
# an operator runs it now, and the alert it raises is stored.
file(WRITE ${WORK_DIR}/nodes.json [=[{"nodes": [{"id": "distributor:d1", "parent": "platform"},
  {"id": "partner:p1", "parent": "distributor:d1"}, {"id": "tenant:acme", "parent": "partner:p1"},
  {"id": "tenant:other", "parent": "partner:p1"}]}]=])
run(${K} tenants import ${WORK_DIR}/nodes.json)
run(${K} jobs list)
if(NOT OUT MATCHES "alerts\\.acme-disk-quota")
  message(FATAL_ERROR "the kernel did not schedule the vendor's alert source as alerts.acme-disk-quota:\n${OUT}")
endif()
run(${K} jobs run alerts.acme-disk-quota --reason "check the vendor source")
if(NOT OUT MATCHES "COMPLETED NORMAL")
  message(FATAL_ERROR "the vendor's alert source did not complete as a job:\n${OUT}")
endif()
# Operators see it through the admin API: acme's administrator does, the
# administrator of another tenant does not.
function(token user scope)
  run(${K} users add ${user} --role TenantAdministrator --scope ${scope})
  string(REGEX MATCH "opk_[A-Za-z0-9_-]+" t "${OUT}")
  if(NOT t)
    message(FATAL_ERROR "users add ${user} printed no token:\n${OUT}")
  endif()
  set(TOKEN_${user} ${t} PARENT_SCOPE)
endfunction()
token(acme-ops tenant:acme)
token(other-ops tenant:other)
string(RANDOM LENGTH 4 ALPHABET 0123456789 r)
math(EXPR PORT "20000 + ${r}")
# The kernel serves in the background, bounded by `timeout` should this
# script stop on its way; stopped below.
execute_process(COMMAND bash -c "timeout 120 \"$0\" --plugins-dir \"$1\" --data-dir \"$2\" --listen 127.0.0.1:$3 run >\"$4/serve.out\" 2>&1 & echo $!"
                        ${KERNEL} ${PLUGINS} ${DATA} ${PORT} ${WORK_DIR}
                OUTPUT_VARIABLE PID OUTPUT_STRIP_TRAILING_WHITESPACE)
function(get path token)
  file(DOWNLOAD http://127.0.0.1:${PORT}${path} ${WORK_DIR}/answer.json HTTPHEADER "Authorization: Bearer ${token}"
       STATUS st TIMEOUT 10)
  list(GET st 0 code)
  file(READ ${WORK_DIR}/answer.json body)
  set(CODE ${code} PARENT_SCOPE)
  set(BODY "${body}" PARENT_SCOPE)
endfunction()
function(stop_kernel)
  execute_process(COMMAND kill ${PID})
endfunction()
foreach(i RANGE 100)
  get(/readyz ${TOKEN_acme-ops})
  if(CODE EQUAL 0)
    break()
  endif()
  execute_process(COMMAND sleep 0.1)
endforeach()
get("/api/v1/alerts?status=open&source=acme-disk-quota" ${TOKEN_acme-ops})
set(SEEN "${CODE}: ${BODY}")
get(/api/v1/alerts ${TOKEN_other-ops})
set(UNSEEN "${CODE}: ${BODY}")
stop_kernel()
file(READ ${WORK_DIR}/serve.out served)
if(NOT SEEN MATCHES "^0: " OR NOT SEEN MATCHES "\"source\": *\"acme-disk-quota\"" OR NOT SEEN MATCHES "\"scope\": *\"tenant:acme\""
   OR NOT SEEN MATCHES "\"title\": *\"Disk quota near its limit\"")
  message(FATAL_ERROR "GET /api/v1/alerts did not show acme's administrator the vendor's alert:\n${SEEN}\n${served}")
endif()
if(NOT UNSEEN MATCHES "^0: " OR NOT UNSEEN MATCHES "\"alerts\": *\\[\\]")
  message(FATAL_ERROR "GET /api/v1/alerts showed another tenant's administrator acme's alert:\n${UNSEEN}")
endif()
# hello, the reference plugin, builds from its own folder against the
# installed SDK too, and the kernel accepts it.
file(COPY ${SOURCE_DIR}/plugins/hello/ DESTINATION ${WORK_DIR}/hello-src)
run(${CMAKE_COMMAND} -S ${WORK_DIR}/hello-src -B ${WORK_DIR}/hello-build -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${PREFIX} -DCMAKE_BUILD_TYPE=Release ${FLAGS})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/hello-build)
run(${KERNEL} plugins check ${WORK_DIR}/hello-build/hello.so)
if(NOT OUT MATCHES "would be loaded")
  message(FATAL_ERROR "plugins check did not accept hello built out of tree:\n${OUT}")
endif()
message(STATUS "out-of-tree plugin built against the installed SDK and run by the kernel")
