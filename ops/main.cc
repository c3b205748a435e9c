// The `freshet` command: one binary, one subcommand per daemon or tool.
#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  std::fprintf(stderr, "freshet: not wired yet\n");
  return 2;
}
