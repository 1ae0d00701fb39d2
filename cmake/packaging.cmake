# Debian packages built by CPack (`cmake --build BUILD --target package`, or `cpack -G DEB` in the
# build tree): certn-archiver (the daemon, its unit, configuration, migrations, man page and the
# ops/ rules and dashboard) and certn-archiver-sim (the simulator). Included by the top-level
# CMakeLists.txt after every install() rule; the components are named there.

# Man pages from the programs' own --help and --version (help2man), so they never drift. Not in
# the sanitizer build, whose binaries print leak reports of their own.
find_program(HELP2MAN help2man)
set(man_pages "")
if(HELP2MAN AND NOT ARCHIVER_SANITIZE)
  function(archiver_man_page target name summary)
    set(page ${CMAKE_CURRENT_BINARY_DIR}/man/${target}.1)
    add_custom_command(
      OUTPUT ${page}.gz
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
      COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section 1 --name ${summary}
              --output ${page} $<TARGET_FILE:${target}>
      COMMAND gzip -9nf ${page}
      DEPENDS ${target}
      COMMENT "Writing the man page of ${target} (help2man)"
      VERBATIM)
    set(man_pages ${man_pages} ${page}.gz PARENT_SCOPE)
  endfunction()
  archiver_man_page(certn-archiver certn-archiver
                    "archives Certn background-check results into your own storage")
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/man/certn-archiver.1.gz
          DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT archiver)
  if(TARGET certn-sim)
    archiver_man_page(certn-sim certn-sim "a stand-in for Certn's Cases API, for tests and demos")
    install(FILES ${CMAKE_CURRENT_BINARY_DIR}/man/certn-sim.1.gz
            DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT sim)
  endif()
  add_custom_target(man_pages ALL DEPENDS ${man_pages})
else()
  message(STATUS "help2man not found (or a sanitizer build): no man pages, no complete package")
endif()

# Debian's documentation files: copyright as is, the changelog gzipped without a timestamp (named
# changelog.gz: the version has no Debian revision, so the package is a native one).
configure_file(packaging/debian/changelog.in ${CMAKE_CURRENT_BINARY_DIR}/debian/changelog @ONLY)
execute_process(COMMAND gzip -9nc ${CMAKE_CURRENT_BINARY_DIR}/debian/changelog
                OUTPUT_FILE ${CMAKE_CURRENT_BINARY_DIR}/debian/changelog.gz
                COMMAND_ERROR_IS_FATAL ANY)
foreach(component_package IN ITEMS "archiver;certn-archiver" "sim;certn-archiver-sim")
  list(GET component_package 0 component)
  list(GET component_package 1 package)
  install(FILES packaging/debian/copyright ${CMAKE_CURRENT_BINARY_DIR}/debian/changelog.gz
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${package} COMPONENT ${component})
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME certn-archiver)
set(CPACK_PACKAGE_VENDOR "certn-archiver")
set(CPACK_PACKAGE_CONTACT "certn-archiver maintainers <certn-archiver@example.com>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Install into the staging tree with DESTDIR and the real prefix, so that the install script sees
# /usr (cmake/install_system_files.cmake) and absolute paths land where they belong.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)  # the prefix cpack installs with when CPACK_SET_DESTDIR is on
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL archiver sim)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.com/certn-archiver")

set(CPACK_DEBIAN_ARCHIVER_PACKAGE_NAME certn-archiver)
set(CPACK_DEBIAN_ARCHIVER_PACKAGE_RECOMMENDS "postgresql-client")
set(CPACK_DEBIAN_ARCHIVER_PACKAGE_CONTROL_EXTRA ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/conffiles
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/prerm
    ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_COMPONENT_ARCHIVER_DESCRIPTION
    "archives Certn background-check results into your own storage
certn-archiver receives Certn's webhooks, records each event durably in
PostgreSQL, and archives every case's report and supplementary files to
S3-compatible object storage or a local directory, with checksums,
retention, legal holds and an audit trail. It runs as a systemd service.")

set(CPACK_DEBIAN_SIM_PACKAGE_NAME certn-archiver-sim)
set(CPACK_COMPONENT_SIM_DESCRIPTION
    "simulator of Certn's Cases API for certn-archiver's tests
certn-sim stands in for Certn's Cases API, its presigned downloads and its
webhooks, with injectable faults and response shapes, for tests, demos and
benchmarks of certn-archiver. Never expose it to a network.")

include(CPack)
