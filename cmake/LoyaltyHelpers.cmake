# Small helpers so every target is declared the same way.

set(LOYALTY_GEN_DIR ${CMAKE_BINARY_DIR}/gen)
file(MAKE_DIRECTORY ${LOYALTY_GEN_DIR})

# loyalty_cc_library(NAME n [SRCS ...] [DEPS ...])
# A library of our own code: warnings on, the repository root on the include
# path. A library with no sources becomes an INTERFACE (header-only) target.
function(loyalty_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  if(ARG_SRCS)
    add_library(${ARG_NAME} STATIC ${ARG_SRCS})
    target_include_directories(${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
    target_compile_options(${ARG_NAME} PRIVATE ${LOYALTY_WARNINGS})
    target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS})
  else()
    add_library(${ARG_NAME} INTERFACE)
    target_include_directories(${ARG_NAME} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${ARG_NAME} INTERFACE ${ARG_DEPS})
  endif()
endfunction()

# loyalty_cc_binary(NAME n SRCS ... [DEPS ...])
function(loyalty_cc_binary)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(${ARG_NAME} PRIVATE ${LOYALTY_WARNINGS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
endfunction()

# loyalty_cc_test(NAME n SRCS ... [DEPS ...] [LABELS ...] [RUN_SERIAL])
# A GoogleTest binary; each TEST becomes its own ctest entry.
function(loyalty_cc_test)
  cmake_parse_arguments(ARG "RUN_SERIAL" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  loyalty_cc_binary(NAME ${ARG_NAME} SRCS ${ARG_SRCS}
                    DEPS ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  set(props LABELS "${ARG_LABELS}")
  if(ARG_RUN_SERIAL)
    list(APPEND props RUN_SERIAL TRUE)
  endif()
  gtest_discover_tests(${ARG_NAME} DISCOVERY_TIMEOUT 60 PROPERTIES ${props})
endfunction()

# loyalty_proto_library(NAME n PROTOS a.proto ... [DEPS other_proto_libs] [GRPC])
# Generates C++ for protos under protos/ into build/gen: library `n` holds the
# messages; with GRPC, library `n_grpc` holds the service stubs.
function(loyalty_proto_library)
  cmake_parse_arguments(ARG "GRPC" "NAME" "PROTOS;DEPS" ${ARGN})
  set(proto_root ${PROJECT_SOURCE_DIR}/protos)
  set(srcs)
  set(hdrs)
  foreach(proto ${ARG_PROTOS})
    get_filename_component(abs ${proto} ABSOLUTE)
    file(RELATIVE_PATH rel ${proto_root} ${abs})
    string(REGEX REPLACE "\\.proto$" "" stem ${rel})
    set(outs ${LOYALTY_GEN_DIR}/${stem}.pb.cc ${LOYALTY_GEN_DIR}/${stem}.pb.h)
    set(grpc_args)
    if(ARG_GRPC)
      list(APPEND outs ${LOYALTY_GEN_DIR}/${stem}.grpc.pb.cc
                       ${LOYALTY_GEN_DIR}/${stem}.grpc.pb.h)
      set(grpc_args --grpc_out=${LOYALTY_GEN_DIR}
                    --plugin=protoc-gen-grpc=${LOYALTY_GRPC_CPP_PLUGIN})
    endif()
    add_custom_command(
      OUTPUT ${outs}
      COMMAND protobuf::protoc
        -I ${proto_root} -I ${Protobuf_INCLUDE_DIRS}
        --cpp_out=${LOYALTY_GEN_DIR} ${grpc_args} ${abs}
      DEPENDS ${abs} protobuf::protoc
      COMMENT "protoc ${rel}"
      VERBATIM)
    foreach(o ${outs})
      if(o MATCHES "\\.cc$")
        list(APPEND srcs ${o})
      endif()
    endforeach()
  endforeach()
  # Messages and gRPC stubs are separate targets: domain code may use the
  # messages without being able to link gRPC.
  set(msg_srcs)
  set(grpc_srcs)
  foreach(src ${srcs})
    if(src MATCHES "\\.grpc\\.pb\\.cc$")
      list(APPEND grpc_srcs ${src})
    else()
      list(APPEND msg_srcs ${src})
    endif()
  endforeach()
  add_library(${ARG_NAME} STATIC ${msg_srcs})
  target_include_directories(${ARG_NAME} PUBLIC ${LOYALTY_GEN_DIR})
  target_link_libraries(${ARG_NAME} PUBLIC protobuf::libprotobuf ${ARG_DEPS})
  if(ARG_GRPC)
    add_library(${ARG_NAME}_grpc STATIC ${grpc_srcs})
    target_link_libraries(${ARG_NAME}_grpc PUBLIC ${ARG_NAME} gRPC::grpc++)
  endif()
endfunction()

# loyalty_migrations_library(NAME n SERVICE s DIR dir)
# Embeds the versioned .sql files of a service into the binary, so a deployed
# service carries exactly the migrations it was built with. Editing or adding
# a file re-runs the configure step. Defines
#   const std::vector<loyalty::db::MigrationFile>& loyalty::<s>::Migrations();
function(loyalty_migrations_library)
  cmake_parse_arguments(ARG "" "NAME;SERVICE;DIR" "" ${ARGN})
  file(GLOB sql_files CONFIGURE_DEPENDS ${ARG_DIR}/*.sql)
  list(SORT sql_files)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${sql_files})
  set(entries "")
  foreach(f ${sql_files})
    get_filename_component(fname ${f} NAME)
    file(READ ${f} body)
    string(FIND "${body}" ")__sql__\"" clash)
    if(NOT clash EQUAL -1)
      message(FATAL_ERROR "${f} contains the raw-string delimiter )__sql__\"")
    endif()
    string(APPEND entries
      "      {\"${fname}\", R\"__sql__(${body})__sql__\"},\n")
  endforeach()
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${ARG_SERVICE}_migrations.cc)
  file(CONFIGURE OUTPUT ${out} CONTENT
"// Generated by loyalty_migrations_library from ${ARG_DIR}. Do not edit.
#include <vector>

#include \"common/db/migrations.h\"

namespace loyalty::${ARG_SERVICE} {

const std::vector<loyalty::db::MigrationFile>& Migrations() {
  static const auto* const kFiles = new std::vector<loyalty::db::MigrationFile>{
${entries}  };
  return *kFiles;
}

}  // namespace loyalty::${ARG_SERVICE}
" @ONLY)
  add_library(${ARG_NAME} STATIC ${out})
  target_link_libraries(${ARG_NAME} PUBLIC loyalty_db)
endfunction()
