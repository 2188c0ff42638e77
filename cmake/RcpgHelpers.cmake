# Build settings are attached to targets through this interface library, never set globally.
add_library(rcpg_build_flags INTERFACE)
target_compile_options(rcpg_build_flags INTERFACE
  -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers
  $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor>)
if(RCPG_SANITIZE STREQUAL "address")
  target_compile_options(rcpg_build_flags INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(rcpg_build_flags INTERFACE -fsanitize=address,undefined)
elseif(RCPG_SANITIZE STREQUAL "thread")
  target_compile_options(rcpg_build_flags INTERFACE -fsanitize=thread -fno-omit-frame-pointer)
  target_link_options(rcpg_build_flags INTERFACE -fsanitize=thread)
elseif(RCPG_FUZZ)
  # Coverage for libFuzzer in every library; the fuzz targets add the fuzzer main.
  target_compile_options(rcpg_build_flags INTERFACE -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  target_link_options(rcpg_build_flags INTERFACE -fsanitize=address,undefined)
elseif(NOT RCPG_SANITIZE STREQUAL "")
  message(FATAL_ERROR "RCPG_SANITIZE must be '', 'address' or 'thread', not '${RCPG_SANITIZE}'")
endif()

# rcpg_test(NAME SOURCES... LABELS ... LIBS ...): a GoogleTest program registered with CTest.
function(rcpg_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LABELS;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE rcpg_build_flags GTest::gtest GTest::gtest_main ${ARG_LIBS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name})
  if(NOT ARG_TIMEOUT)
    # A bound for a hang, three times and more above the slowest run measured on a busy
    # 2-core machine; the sanitizer builds (-O0, TSan's tenfold) get three times as long.
    if(RCPG_SANITIZE STREQUAL "")
      set(ARG_TIMEOUT 300)
    else()
      set(ARG_TIMEOUT 900)
    endif()
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()
