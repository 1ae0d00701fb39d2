# Runs at install time (install(SCRIPT)), with ARCHIVER_SOURCE_DIR and ARCHIVER_BINARY_DIR set by
# the install(CODE) before it. The configuration and the systemd unit go where Debian keeps them,
# /etc and /lib/systemd/system, when the prefix is /usr (the package: cpack installs with that
# prefix), as GNUInstallDirs does for /usr; under any other prefix (cmake --install --prefix DIR)
# they stay inside it. Decided here rather than at configure time, so that one build tree serves
# both. The unit names the binary and the configuration where they were installed.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(config_dir "/etc/certn-archiver")
  set(unit_dir "/lib/systemd/system")
else()
  set(config_dir "${CMAKE_INSTALL_PREFIX}/etc/certn-archiver")
  set(unit_dir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()

# An operator's edited configuration is never replaced: a source install installs it only where
# there is none (the package's staging tree is always empty; dpkg handles the conffile).
if(EXISTS "$ENV{DESTDIR}${config_dir}/certn-archiver.toml")
  message(STATUS "Keeping: $ENV{DESTDIR}${config_dir}/certn-archiver.toml (installing the example "
                 "beside it as certn-archiver.toml.example)")
  set(config_name certn-archiver.toml.example)
else()
  set(config_name certn-archiver.toml)
endif()
file(INSTALL "${ARCHIVER_SOURCE_DIR}/config/certn-archiver.example.toml"
     DESTINATION "${config_dir}" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     RENAME ${config_name})

file(READ "${ARCHIVER_SOURCE_DIR}/systemd/certn-archiver.service" unit)
string(REPLACE "/usr/local/bin/certn-archiver " "${CMAKE_INSTALL_PREFIX}/bin/certn-archiver " unit
               "${unit}")
string(REPLACE "/etc/certn-archiver" "${config_dir}" unit "${unit}")
# One staging file per destination: installs into different prefixes may run at once.
string(MD5 destination "$ENV{DESTDIR}${unit_dir}")
set(staged_unit "${ARCHIVER_BINARY_DIR}/generated/unit-${destination}/certn-archiver.service")
file(WRITE "${staged_unit}" "${unit}")
file(INSTALL "${staged_unit}" DESTINATION "${unit_dir}"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
