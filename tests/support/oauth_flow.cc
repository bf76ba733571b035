#include "tests/support/oauth_flow.h"

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

namespace backpack::testing {

namespace {

std::string Decode(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      out.push_back(static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(text[i] == '+' ? ' ' : text[i]);
    }
  }
  return out;
}

std::string HtmlUnescape(std::string s) {
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"&quot;", "\""}, {"&#39;", "'"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}}) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
      s.replace(at, from.size(), to);
    }
  }
  return s;
}

}  // namespace

std::string FormEncode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string Form(const FormFields& fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    out += FormEncode(k) + "=" + FormEncode(v);
  }
  return out;
}

std::map<std::string, std::string> QueryOf(const std::string& url) {
  std::map<std::string, std::string> out;
  const size_t q = url.find('?');
  if (q == std::string::npos) return out;
  std::stringstream pairs(url.substr(q + 1));
  std::string pair;
  while (std::getline(pairs, pair, '&')) {
    const size_t eq = pair.find('=');
    out[Decode(pair.substr(0, eq))] = eq == std::string::npos ? "" : Decode(pair.substr(eq + 1));
  }
  return out;
}

FormFields HiddenFields(const std::string& html) {
  FormFields out;
  static const std::regex re("<input type=\"hidden\" name=\"([^\"]+)\" value=\"([^\"]*)\">");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), re); it != std::sregex_iterator(); ++it) {
    out.emplace_back(HtmlUnescape((*it)[1]), HtmlUnescape((*it)[2]));
  }
  return out;
}

std::string Field(const FormFields& fields, const std::string& name) {
  for (const auto& [k, v] : fields) {
    if (k == name) return v;
  }
  return {};
}

std::string Base64(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s : {18, 12, 6, 0}) out += kAlphabet[(n >> s) & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t n = uint8_t(in[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    for (int s : {18, 12, 6}) out += kAlphabet[(n >> s) & 63];
    out += "=";
  }
  return out;
}

void CookieJar::Take(const Reply& r) {
  const std::string header = r.Header("set-cookie");
  if (header.empty()) return;
  const std::string pair = header.substr(0, header.find(';'));
  const size_t eq = pair.find('=');
  cookies_[pair.substr(0, eq)] = pair.substr(eq + 1);
  attributes_[pair.substr(0, eq)] = header.substr(std::min(header.size(), header.find(';')));
}

std::string CookieJar::Header() const {
  std::string out;
  for (const auto& [k, v] : cookies_) out += (out.empty() ? "" : "; ") + k + "=" + v;
  return out;
}

std::string CookieJar::Get(const std::string& name) const {
  auto it = cookies_.find(name);
  return it == cookies_.end() ? std::string() : it->second;
}

std::string CookieJar::Attributes(const std::string& name) const {
  auto it = attributes_.find(name);
  return it == attributes_.end() ? std::string() : it->second;
}

Client RegisterClient(const NodeProcess& node, const std::string& metadata_json) {
  Reply r = node.Call({"POST", "/oauth/register", metadata_json, "application/json", "", {}});
  if (r.status != 201) return {};
  const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object()) return {};
  return {j.value("client_id", ""), j.value("client_secret", "")};
}

std::string AuthorizeTarget(const Client& client, const std::string& redirect_uri, const std::string& scope,
                            const FormFields& overrides) {
  FormFields params = {{"response_type", "code"},  {"client_id", client.id},
                       {"redirect_uri", redirect_uri}, {"scope", scope},
                       {"state", "xyz<&>"},          {"code_challenge", kPkceChallenge},
                       {"code_challenge_method", "S256"}};
  for (const auto& [k, v] : overrides) {
    bool replaced = false;
    for (auto& p : params) {
      if (p.first == k) p.second = v, replaced = true;
    }
    if (!replaced) params.emplace_back(k, v);
  }
  FormFields kept;
  for (const auto& p : params) {
    if (!p.second.empty()) kept.push_back(p);
  }
  return "/oauth/authorize?" + Form(kept);
}

Reply ClientPost(const NodeProcess& node, const std::string& target, const Client& client, FormFields fields,
                 bool basic) {
  RequestSpec spec{"POST", target, "", "application/x-www-form-urlencoded", "", {}};
  if (basic) {
    spec.headers["Authorization"] = "Basic " + Base64(FormEncode(client.id) + ":" + FormEncode(client.secret));
  } else {
    fields.emplace_back("client_id", client.id);
    if (!client.secret.empty()) fields.emplace_back("client_secret", client.secret);
  }
  spec.body = Form(fields);
  return node.Call(spec);
}

Reply ExchangeCode(const NodeProcess& node, const Client& client, const std::string& code,
                   const std::string& redirect_uri, const std::string& verifier) {
  return ClientPost(node, "/oauth/token", client,
                    {{"grant_type", "authorization_code"},
                     {"code", code},
                     {"redirect_uri", redirect_uri},
                     {"code_verifier", verifier}});
}

Reply OAuthBrowser::Browse(const std::string& method, const std::string& target, const std::string& form) {
  RequestSpec spec{method, target, form, form.empty() && method == "GET" ? "" : "application/x-www-form-urlencoded",
                   "",     {}};
  if (!jar_.Header().empty()) spec.headers["Cookie"] = jar_.Header();
  Reply r = node_->Call(spec);
  jar_.Take(r);
  return r;
}

Reply OAuthBrowser::SignIn(const Reply& page, const std::string& password) {
  const FormFields fields = HiddenFields(page.body);
  Reply posted = Browse("POST", "/oauth/sign-in",
                        Form({{"csrf", Field(fields, "csrf")},
                              {"request", Field(fields, "request")},
                              {"email", email_},
                              {"password", password.empty() ? password_ : password}}));
  if (posted.status != 303) return posted;
  return Browse("GET", posted.Header("location"));
}

Reply OAuthBrowser::Decide(const Reply& consent, const std::string& decision) {
  FormFields fields = HiddenFields(consent.body);
  fields.emplace_back("decision", decision);
  return Browse("POST", "/oauth/authorize", Form(fields));
}

std::string OAuthBrowser::Code(const std::string& authorize_target) {
  Reply page = Browse("GET", authorize_target);
  if (page.body.find("Sign in to your backpack") != std::string::npos) page = SignIn(page);
  if (page.status != 200) return {};
  Reply redirect = Decide(page, "approve");
  if (redirect.status != 302) return {};
  return QueryOf(redirect.Header("location"))["code"];
}

}  // namespace backpack::testing
