#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/http.h"
#include "daemon/rate_limiter.h"

namespace backpack {
namespace {

namespace bhttp = http::bhttp;

http::Response Named(const char* name) { return http::JsonResponse(bhttp::status::ok, name); }

TEST(Router, MatchesPatternsAndDecodesParams) {
  http::Router router;
  router.Add(bhttp::verb::get, "/api/v1/account", http::Exec::kWorker, [](http::Context&) { return Named("get"); });
  router.Add(bhttp::verb::delete_, "/api/v1/account/emails/{address}", http::Exec::kWorker,
             [](http::Context&) { return Named("del"); });
  std::vector<std::string> params;
  std::string allowed;
  auto* r = router.Find(bhttp::verb::delete_, "/api/v1/account/emails/ada%40Example.org", &params, &allowed);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->pattern, "/api/v1/account/emails/{address}");
  ASSERT_EQ(params.size(), 1u);
  EXPECT_EQ(params[0], "ada@Example.org");
  // Wrong method: 405 with Allow.
  EXPECT_EQ(router.Find(bhttp::verb::post, "/api/v1/account", &params, &allowed), nullptr);
  EXPECT_EQ(allowed, "GET");
  // No such path: 404.
  EXPECT_EQ(router.Find(bhttp::verb::get, "/api/v1/accounts/x", &params, &allowed), nullptr);
  EXPECT_TRUE(allowed.empty());
  // Malformed escape does not match.
  EXPECT_EQ(router.Find(bhttp::verb::delete_, "/api/v1/account/emails/%zz", &params, &allowed), nullptr);
}

TEST(Http, QueryParamAndPercentDecode) {
  EXPECT_EQ(http::QueryParam("a=1&b=two+words&c=%41", "b"), "two words");
  EXPECT_EQ(http::QueryParam("a=1&b=2", "c"), "");
  EXPECT_EQ(http::QueryParam("c=%41", "c"), "A");
  std::string out;
  EXPECT_FALSE(http::PercentDecode("%4", false, &out));
  EXPECT_TRUE(http::PercentDecode("a+b", false, &out));
  EXPECT_EQ(out, "a+b");
}

TEST(Http, StatusMapsToErrorsAndHidesInternals) {
  auto res = http::StatusResponse(AlreadyExists("taken"), "r1");
  EXPECT_EQ(res.result(), bhttp::status::conflict);
  auto j = nlohmann::json::parse(res.body());
  EXPECT_EQ(j["error"]["code"], "already_exists");
  EXPECT_EQ(j["error"]["message"], "taken");
  auto internal = http::StatusResponse(Internal("rocksdb: IO error /secret/path"), "r2");
  EXPECT_EQ(internal.result(), bhttp::status::internal_server_error);
  EXPECT_EQ(internal.body().find("secret"), std::string::npos);
  auto unauth = http::StatusResponse(Unauthenticated("no"), "r3");
  EXPECT_EQ(unauth.result(), bhttp::status::unauthorized);
  EXPECT_EQ(unauth[bhttp::field::www_authenticate], "Bearer");
  EXPECT_EQ(http::StatusResponse(ResourceExhausted("slow down"), "r4").result(), bhttp::status::too_many_requests);
}

TEST(RateLimiter, BurstThenRefill) {
  RateLimiter limiter(3, std::chrono::seconds(60));
  const auto t0 = RateLimiter::Clock::now();
  std::chrono::seconds wait{};
  EXPECT_TRUE(limiter.AllowAt("k", t0, &wait));
  EXPECT_TRUE(limiter.AllowAt("k", t0, &wait));
  EXPECT_TRUE(limiter.AllowAt("k", t0, &wait));
  EXPECT_FALSE(limiter.AllowAt("k", t0, &wait));
  EXPECT_EQ(wait.count(), 20);  // one token per 20 s
  EXPECT_TRUE(limiter.AllowAt("other", t0, &wait));
  EXPECT_TRUE(limiter.AllowAt("k", t0 + std::chrono::seconds(20), &wait));
  EXPECT_FALSE(limiter.AllowAt("k", t0 + std::chrono::seconds(20), &wait));
}

TEST(RateLimiter, MemoryIsBounded) {
  RateLimiter limiter(2, std::chrono::seconds(60), 100);
  const auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 10000; ++i) {
    std::chrono::seconds wait{};
    limiter.AllowAt("key" + std::to_string(i), t0 + std::chrono::milliseconds(i), &wait);
    ASSERT_LE(limiter.size(), 100u);
  }
}

}  // namespace
}  // namespace backpack
