# Fails unless the preprocessor, given a layout target's include directories, takes
# corosync/cpg.h and corosync/corotypes.h from EXPECTED_HEADER_DIR. rcpg's header and
# corosync's share include guards and file names, so a wrong include order would otherwise
# go unnoticed: the layout assertions would pass against the other header.
#
# cmake -DCOMPILER=... -DLANGUAGE_FLAG=-xc|-xc++ -DINCLUDE_DIRS="a|b" -DSOURCE=...
#       -DEXPECTED_HEADER_DIR=... -P check_header_origin.cmake

foreach(required COMPILER LANGUAGE_FLAG SOURCE EXPECTED_HEADER_DIR)
  if(NOT DEFINED ${required} OR "${${required}}" STREQUAL "")
    message(FATAL_ERROR "check_header_origin.cmake: -D${required}=... is required")
  endif()
endforeach()

set(include_flags "")
if(NOT "${INCLUDE_DIRS}" STREQUAL "")
  string(REPLACE "|" ";" include_dirs "${INCLUDE_DIRS}")
  foreach(dir IN LISTS include_dirs)
    list(APPEND include_flags "-I${dir}")
  endforeach()
endif()

# -H lists every header opened, one per line, prefixed by dots giving the nesting depth.
execute_process(
  COMMAND ${COMPILER} ${LANGUAGE_FLAG} -H -E -o /dev/null
          -DABI_LAYOUT_VARIANT=header_origin ${include_flags} ${SOURCE}
  RESULT_VARIABLE preprocess_status
  ERROR_VARIABLE opened_headers)
if(NOT preprocess_status EQUAL 0)
  message(FATAL_ERROR "preprocessing ${SOURCE} failed (${preprocess_status}):\n${opened_headers}")
endif()

file(REAL_PATH "${EXPECTED_HEADER_DIR}/corosync" expected_dir)
string(REPLACE "\n" ";" lines "${opened_headers}")
foreach(header cpg.h corotypes.h)
  set(found FALSE)
  foreach(line IN LISTS lines)
    if(line MATCHES "^\\.+ (.*/corosync/${header})$")
      get_filename_component(opened_dir "${CMAKE_MATCH_1}" DIRECTORY)
      file(REAL_PATH "${opened_dir}" opened_dir)
      if(NOT opened_dir STREQUAL expected_dir)
        message(FATAL_ERROR "corosync/${header} came from ${opened_dir}, expected ${expected_dir}")
      endif()
      set(found TRUE)
    endif()
  endforeach()
  if(NOT found)
    message(FATAL_ERROR "corosync/${header} was never opened; headers seen:\n${opened_headers}")
  endif()
  message(STATUS "corosync/${header}: ${expected_dir}")
endforeach()
