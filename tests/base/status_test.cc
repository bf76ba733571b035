#include <gtest/gtest.h>

#include "base/status.h"
#include "base/time.h"

namespace backpack {
namespace {

Status FailsWith(StatusCode code) { return {code, "why"}; }

Status Chain(StatusCode code, bool* reached_end) {
  BP_RETURN_IF_ERROR(FailsWith(code));
  *reached_end = true;
  return Status::Ok();
}

TEST(Status, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "ok");
  Status s = AlreadyExists("taken");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(s.ToString(), "already_exists: taken");
}

TEST(Status, ReturnIfErrorStopsAtTheFirstError) {
  bool reached = false;
  EXPECT_EQ(Chain(StatusCode::kUnavailable, &reached).code(), StatusCode::kUnavailable);
  EXPECT_FALSE(reached);
  EXPECT_TRUE(Chain(StatusCode::kOk, &reached).ok());
  EXPECT_TRUE(reached);
}

TEST(Result, HoldsValueOrStatus) {
  Result<int> v = 7;
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 7);
  EXPECT_TRUE(v.status().ok());
  Result<int> e = NotFound("missing");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(e.status().message(), "missing");
}

TEST(Time, FormatsRfc3339InUtc) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(1795749884), "2026-11-27T03:24:44Z");
}

}  // namespace
}  // namespace backpack
