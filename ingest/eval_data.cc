// Helpers shared by the data-set readers; see eval_data.h.
#include "ingest/eval_data.h"

#include <zlib.h>

namespace freshet::ingest {

uint64_t HashId(std::string_view text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  return h == 0 ? 1 : h;
}

bool ReadGzLine(gzFile_s* file, std::string* line) {
  line->clear();
  char buf[4096];
  while (gzgets(file, buf, sizeof(buf)) != nullptr) {
    line->append(buf);
    if (!line->empty() && line->back() == '\n') break;
  }
  if (line->empty()) return false;
  while (!line->empty() && (line->back() == '\n' || line->back() == '\r')) line->pop_back();
  return true;
}

}  // namespace freshet::ingest
