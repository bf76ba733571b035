// The helpers the issuer-facing APIs share (daemon/api_util.h): paging
// parameters, Link headers, RFC 3339 parsing and the earner's profile id.
#include <gtest/gtest.h>

#include "daemon/api_util.h"
#include "daemon/http.h"

namespace backpack {
namespace {

// Paging read from `query` (what follows '?').
std::variant<api::Paging, std::string> Read(std::string_view query) {
  http::Request request;
  http::Context ctx{request, "/x", query, {}, "req", "127.0.0.1"};
  return api::ReadPaging(ctx, 10, 100);
}

TEST(ApiUtil, ParsesRfc3339WithTimeZonesOnly) {
  EXPECT_EQ(api::ParseRfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(api::ParseRfc3339("2024-02-29T12:00:00Z"), 1709208000);
  EXPECT_EQ(api::ParseRfc3339("2024-02-29T14:00:00.123+02:00"), 1709208000);
  EXPECT_EQ(api::ParseRfc3339("2024-02-29t07:30:00-04:30"), 1709208000);
  EXPECT_EQ(api::ParseRfc3339("1969-12-31T23:59:59Z"), -1);
  for (const char* bad : {"", "2024-02-29", "2024-02-29T12:00:00", "2024-13-01T00:00:00Z", "2024-02-29T12:00:00.Z",
                          "2024-02-29T12:00:00+0200", "2024-02-29T12:00:00Zjunk", "yesterday"}) {
    EXPECT_FALSE(api::ParseRfc3339(bad).has_value()) << bad;
  }
}

TEST(ApiUtil, ReadsPagingWithDefaultsAndACap) {
  auto p = std::get<api::Paging>(Read(""));
  EXPECT_EQ(p.limit, 10u);
  EXPECT_EQ(p.offset, 0u);
  EXPECT_FALSE(p.since.has_value());
  p = std::get<api::Paging>(Read("limit=500&offset=7&since=2024-02-29T12%3A00%3A00Z"));
  EXPECT_EQ(p.limit, 100u);  // cut to the maximum
  EXPECT_EQ(p.offset, 7u);
  EXPECT_EQ(p.since, 1709208000);
  EXPECT_EQ(p.since_text, "2024-02-29T12:00:00Z");
  for (const char* bad : {"limit=0", "limit=-1", "limit=1x", "offset=-1", "offset=+1", "since=2024"}) {
    EXPECT_TRUE(std::holds_alternative<std::string>(Read(bad))) << bad;
  }
  // An empty value counts as absent.
  EXPECT_EQ(std::get<api::Paging>(Read("offset=")).offset, 0u);
}

TEST(ApiUtil, LinksNameFirstLastAndTheNeighbours) {
  api::Paging p{.limit = 2, .offset = 2, .since = std::nullopt, .since_text = ""};
  EXPECT_EQ(api::PageLinks("https://n.example/c", p, 5),
            "<https://n.example/c?limit=2&offset=4>; rel=\"next\", "
            "<https://n.example/c?limit=2&offset=4>; rel=\"last\", "
            "<https://n.example/c?limit=2&offset=0>; rel=\"first\", "
            "<https://n.example/c?limit=2&offset=0>; rel=\"prev\"");
  p.offset = 0;
  p.since_text = "2024-01-01T00:00:00+01:00";
  EXPECT_EQ(api::PageLinks("https://n.example/c", p, 0),
            "<https://n.example/c?limit=2&offset=0&since=2024-01-01T00%3A00%3A00%2B01%3A00>; rel=\"last\", "
            "<https://n.example/c?limit=2&offset=0&since=2024-01-01T00%3A00%3A00%2B01%3A00>; rel=\"first\"");
}

TEST(ApiUtil, ProfileIdIsAStableUuidThatHidesTheAccount) {
  const std::string id = api::EarnerProfileId("https://n.example", "0123456789abcdef");
  EXPECT_EQ(id, api::EarnerProfileId("https://n.example", "0123456789abcdef"));
  EXPECT_NE(id, api::EarnerProfileId("https://n.example", "0123456789abcdee"));
  EXPECT_NE(id, api::EarnerProfileId("https://m.example", "0123456789abcdef"));
  ASSERT_EQ(id.size(), 45u);
  EXPECT_EQ(id.rfind("urn:uuid:", 0), 0u);
  EXPECT_EQ(id[23], '8');  // version 8
  EXPECT_NE(std::string("89ab").find(id[28]), std::string::npos);  // RFC 9562 variant
  EXPECT_EQ(id.find("0123456789abcdef"), std::string::npos);
}

}  // namespace
}  // namespace backpack
