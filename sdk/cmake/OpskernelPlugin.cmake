# opk_add_plugin(<target> SOURCES <files...> [OUTPUT_DIRECTORY <dir>])
#
# Builds an Opskernel plugin: a MODULE library against Opskernel::sdk with
# hidden visibility, no undefined symbols, and a version script that exports
# only the entry symbol. The file is named <target>.so (no "lib" prefix).
include_guard(GLOBAL)
set_property(GLOBAL PROPERTY OPK_PLUGIN_CMAKE_DIR ${CMAKE_CURRENT_LIST_DIR})

function(opk_add_plugin target)
  cmake_parse_arguments(ARG "" "OUTPUT_DIRECTORY" "SOURCES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "opk_add_plugin(${target}): SOURCES is required")
  endif()
  add_library(${target} MODULE ${ARG_SOURCES})
  if(TARGET Opskernel::sdk)
    target_link_libraries(${target} PRIVATE Opskernel::sdk)
  else()
    target_link_libraries(${target} PRIVATE opskernel_sdk)
  endif()
  get_property(_dir GLOBAL PROPERTY OPK_PLUGIN_CMAKE_DIR)
  set(_script ${_dir}/opk_plugin.version)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LINK_DEPENDS ${_script})
  target_link_options(${target} PRIVATE "LINKER:--no-undefined" "LINKER:--version-script=${_script}")
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
  endif()
endfunction()
