// Helpers shared by the fuzz targets.
#pragma once

#include <cstdlib>

#include "protocol/verification_report.h"

namespace backpack::fuzz {

// Stops the fuzzer on a broken promise (a crash is what libFuzzer reports).
inline void Require(bool condition) {
  if (!condition) std::abort();
}

// A report keeps its promises whatever the input: capped messages, exact
// counts, valid exactly when there is no error, renderable.
inline void RequireConsistent(const protocol::VerificationReport& report) {
  Require(report.messages().size() <= protocol::VerificationReport::kDefaultMaxMessages);
  int errors = 0;
  for (const auto& m : report.messages()) errors += m.level == protocol::MessageLevel::kError ? 1 : 0;
  Require(errors <= report.error_count());
  Require(report.valid() == (report.error_count() == 0));
  Require(!report.ToJson().empty());
}

}  // namespace backpack::fuzz
