# Writes OUTPUT, a C++ file defining one `extern const char NAME[]` per asset, so the
# dashboard page is part of the binary. Run at build time by ops/CMakeLists.txt:
#   cmake -DOUTPUT=file.cc -DASSETS="kName=path;kOther=path" -P embed.cmake
set(body "// Generated from ops/dashboard/ by ops/dashboard/embed.cmake; do not edit.\n#include \"ops/dashboard_assets.h\"\n\nnamespace freshet::ops {\n")
foreach(pair ${ASSETS})
  string(REPLACE "=" ";" parts "${pair}")
  list(GET parts 0 name)
  list(GET parts 1 path)
  file(READ "${path}" content)
  string(FIND "${content}" ")FRESHET_ASSET\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${path} contains the raw-string delimiter )FRESHET_ASSET\"")
  endif()
  string(APPEND body "extern const char ${name}[] = R\"FRESHET_ASSET(${content})FRESHET_ASSET\";\n")
endforeach()
string(APPEND body "}  // namespace freshet::ops\n")
file(WRITE "${OUTPUT}.tmp" "${body}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUTPUT}.tmp" "${OUTPUT}")
