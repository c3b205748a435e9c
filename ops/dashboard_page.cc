// The dashboard's HTTP side: the embedded page and script, Chart.js from the
// distribution's package, and the JSON feed (see dashboard.h).
#include <fstream>
#include <sstream>

#include "ops/dashboard.h"
#include "ops/dashboard_assets.h"

namespace freshet::ops {
namespace {

// Chart.js as installed by Debian's libjs-chart.js; "" when the file is unreadable.
std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string MissingChartJsPage(const std::string& path) {
  return "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Freshet dashboard: Chart.js missing</title>"
         "</head><body><h1>The dashboard cannot draw its charts</h1><p>Chart.js was not found at <code>" +
         path +
         "</code>. Install Debian's <code>libjs-chart.js</code> package (<code>ops/install-deps.sh</code> does) "
         "and reload this page; the raw data stays available at <a href=\"/dashboard/data\">/dashboard/data</a>."
         "</p></body></html>";
}

}  // namespace

void Dashboard::Register(AdminServer* admin) {
  const std::string chart_path = options_.chart_js_path;
  admin->Handle("/dashboard", [chart_path](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    if (!std::ifstream(chart_path).good()) {
      r.status = 503;
      r.body = MissingChartJsPage(chart_path);
    } else {
      r.body = kDashboardHtml;
    }
    return r;
  });
  admin->Handle("/dashboard/dashboard.js", [](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "text/javascript; charset=utf-8";
    r.body = kDashboardJs;
    return r;
  });
  admin->Handle("/dashboard/chart.js", [chart_path](const HttpRequest&) {
    HttpResponse r;
    r.body = ReadFile(chart_path);
    if (r.body.empty()) return HttpResponse::Text(404, "Chart.js not found at " + chart_path + ": install libjs-chart.js\n");
    r.content_type = "text/javascript; charset=utf-8";
    return r;
  });
  admin->Handle("/dashboard/data", [this](const HttpRequest&) { return HttpResponse::Json(200, DataJson()); });
}

}  // namespace freshet::ops
