// The dashboard page and script (ops/dashboard/index.html, dashboard.js), embedded at
// build time by ops/dashboard/embed.cmake so the `freshet` binary is self-contained.
#pragma once

namespace freshet::ops {

extern const char kDashboardHtml[];
extern const char kDashboardJs[];

}  // namespace freshet::ops
