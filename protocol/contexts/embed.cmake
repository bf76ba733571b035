# Turns the context files listed in MANIFEST into OUTPUT, a C++ source with
# one raw string literal per file and a URL -> bytes table.
#   cmake -DMANIFEST=<contexts.txt> -DOUTPUT=<file.cc> -P embed.cmake
get_filename_component(dir "${MANIFEST}" DIRECTORY)
file(STRINGS "${MANIFEST}" lines)
set(body "")
set(count 0)
foreach(line IN LISTS lines)
  string(STRIP "${line}" line)
  if(line STREQUAL "" OR line MATCHES "^#")
    continue()
  endif()
  separate_arguments(parts UNIX_COMMAND "${line}")
  list(LENGTH parts n)
  if(NOT n EQUAL 2)
    message(FATAL_ERROR "${MANIFEST}: expected 'URL FILE', got: ${line}")
  endif()
  list(GET parts 0 url)
  list(GET parts 1 name)
  file(READ "${dir}/${name}" content)
  string(FIND "${content}" ")bpctx\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${name} contains the raw string delimiter")
  endif()
  string(APPEND body "    {\"${url}\", R\"bpctx(${content})bpctx\"},\n")
  math(EXPR count "${count} + 1")
endforeach()
set(text "// Made from protocol/contexts/contexts.txt by protocol/contexts/embed.cmake.
#include \"protocol/bundled_contexts_data.h\"

namespace backpack::protocol::internal {

const BundledContextFile kBundledContextFiles[] = {
${body}};
const size_t kBundledContextFileCount = ${count};

}  // namespace backpack::protocol::internal
")
# Rewrite only on change, so dependants are not rebuilt for nothing.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${text}")
