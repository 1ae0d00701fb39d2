# Runs at install time (install(SCRIPT)), with ARCHIVER_SOURCE_DIR and ARCHIVER_BINARY_DIR set by
# the install(CODE) before it. The configuration and the systemd unit go where Debian keeps them,
# /etc and /lib/systemd/system, when the prefix is /usr (the package: cpack installs with that
# prefix), as GNUInstallDirs does for /usr; under any other prefix (cmake --install --prefix DIR)
# they stay inside it. Decided here rather than at configure time, so that one build tree serves
# both. The unit's commands name the binary under the prefix.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(config_dir "/etc/certn-archiver")
  set(unit_dir "/lib/systemd/system")
else()
  set(config_dir "${CMAKE_INSTALL_PREFIX}/etc/certn-archiver")
  set(unit_dir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()

file(INSTALL "${ARCHIVER_SOURCE_DIR}/config/certn-archiver.example.toml"
     DESTINATION "${config_dir}" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     RENAME certn-archiver.toml)

file(READ "${ARCHIVER_SOURCE_DIR}/systemd/certn-archiver.service" unit)
string(REPLACE "/usr/local/bin/certn-archiver " "${CMAKE_INSTALL_PREFIX}/bin/certn-archiver " unit
               "${unit}")
set(staged_unit "${ARCHIVER_BINARY_DIR}/generated/certn-archiver.service")
file(WRITE "${staged_unit}" "${unit}")
file(INSTALL "${staged_unit}" DESTINATION "${unit_dir}"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
