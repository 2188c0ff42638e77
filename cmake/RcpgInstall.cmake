# `cmake --install BUILD [--prefix P]`: the daemon, the operator tool, the client
# libraries with their headers (in directories of rcpg's own, beside corosync's), and a
# systemd unit.
install(TARGETS rcpgd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS rcpg-cpgtool RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS cpg evs corosync_common LIBRARY DESTINATION ${RCPG_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/libcpg/include/corosync
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rcpg)
# libcpg finds the libcorosync_common.so.4 beside it, whatever the program's own paths.
set_target_properties(cpg evs PROPERTIES INSTALL_RPATH "$ORIGIN")

# The unit names rcpgd where it is installed, so it is written at install time, when
# the prefix (also one given with --prefix) is known; DESTDIR stays out of it.
install(CODE "
  set(RCPGD_PATH \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SBINDIR}/rcpgd\")
  configure_file(\"${PROJECT_SOURCE_DIR}/packaging/rcpgd.service.in\"
                 \"${PROJECT_BINARY_DIR}/packaging/rcpgd.service\" @ONLY)
  file(INSTALL \"${PROJECT_BINARY_DIR}/packaging/rcpgd.service\"
       DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\")
")
