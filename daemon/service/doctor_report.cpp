#include <algorithm>
#include <cstdio>

#include "certn/key_expiry.hpp"
#include "encoding/encoding.hpp"
#include "encoding/json.hpp"
#include "service/doctor.hpp"

namespace archiver::service::doctor {

const char* to_string(status s) {
  switch (s) {
    case status::ok:
      return "ok";
    case status::warn:
      return "warn";
    case status::fail:
      return "fail";
    case status::skip:
      return "skip";
  }
  return "fail";
}

bool report::failed() const {
  return std::any_of(lines.begin(), lines.end(),
                     [](const line& l) { return l.result == status::fail; });
}

std::string to_text(const report& r) {
  std::size_t width = 0;
  for (const line& l : r.lines) {
    width = std::max(width, l.check.size());
  }
  std::string out;
  for (const line& l : r.lines) {
    std::string head = to_string(l.result);
    head.resize(6, ' ');
    std::string check = l.check;
    check.resize(width + 2, ' ');
    out += head + check + l.detail;
    if (!l.action.empty()) {
      out += " -> " + l.action;
    }
    out += "\n";
  }
  return out;
}

std::string to_json(const report& r) {
  encoding::json_writer out;
  out.begin_object().key("ok").boolean(!r.failed()).key("checks").begin_array();
  for (const line& l : r.lines) {
    out.begin_object()
        .key("check")
        .value(l.check)
        .key("status")
        .value(to_string(l.result))
        .key("detail")
        .value(l.detail)
        .key("action")
        .value(l.action)
        .end_object();
  }
  out.end_array().end_object();
  return out.str() + "\n";
}

int exit_code(const report& r) { return r.failed() ? 1 : 0; }

line certn_check(const std::optional<certn::call_failure>& failure, std::string_view base_url) {
  const std::string where(base_url);
  if (!failure) {
    return {"certn", status::ok, "the API key is accepted at " + where + " (one call: GET /cases/)",
            ""};
  }
  const std::string seen = failure->message;
  switch (failure->kind) {
    case retry::failure_class::authentication:
      return {"certn", status::fail, "Certn refuses the API key at " + where + " (401): " + seen,
              "check certn.api_key, and that certn.base_url is the key's region (a key works in "
              "one region only: api.certn.co, api.ca.certn.co, api.uk.certn.co, api.au.certn.co)"};
    case retry::failure_class::forbidden:
      return {"certn", status::fail, "the API key may not list cases (403): " + seen,
              "give the key's user access to the Cases API in Certn"};
    case retry::failure_class::rate_limited:
      return {"certn", status::warn, "Certn answered 429 (rate limited); the key was not checked",
              "run doctor again in a minute"};
    case retry::failure_class::retryable:
    case retry::failure_class::permanent:
    case retry::failure_class::expired_url:
      break;
  }
  if (failure->http_status == 0) {
    return {"certn", status::fail, "no answer from " + where + ": " + seen,
            "check certn.base_url, DNS, the firewall and HTTPS_PROXY"};
  }
  return {"certn", status::fail,
          "GET /cases/ answered " + std::to_string(failure->http_status) + ": " + seen,
          "check certn.base_url"};
}

line key_expiry_check(std::string_view created, std::chrono::system_clock::time_point now) {
  if (created.empty()) {
    return {"certn key expiry", status::warn,
            "certn.api_key_created is not set: nothing warns before the key expires (365 days "
            "after its creation)",
            "set certn.api_key_created = \"YYYY-MM-DD\", the day the key was made"};
  }
  const std::optional<std::chrono::sys_days> day = encoding::parse_utc_day(created);
  if (!day) {
    return {"certn key expiry", status::fail,
            "certn.api_key_created is not a YYYY-MM-DD date: " + std::string(created),
            "fix certn.api_key_created"};
  }
  const double days_left = certn::days_until_key_expires(*day, now);
  const std::string text = certn::describe_key_expiry(*day, days_left);
  switch (certn::key_expiry_state_of(days_left)) {
    case certn::key_expiry_state::expired:
      return {"certn key expiry", status::fail, text, ""};
    case certn::key_expiry_state::expiring_soon:
      return {"certn key expiry", status::warn, text, ""};
    case certn::key_expiry_state::fine:
      break;
  }
  return {"certn key expiry", status::ok, text, ""};
}

std::vector<std::string> privileges_needed(std::string_view relation, char kind) {
  if (kind == 'S') {
    return {"USAGE"};
  }
  if (relation == "schema_migrations") {
    return {"SELECT"};
  }
  if (relation == "audit_log") {
    return {"SELECT", "INSERT"};
  }
  return {"SELECT", "INSERT", "UPDATE", "DELETE"};
}

line privileges_check(const std::vector<missing_privileges>& missing, std::string_view role) {
  if (missing.empty()) {
    return {"database privileges", status::ok,
            "role " + std::string(role) + " has what serve needs on every table and sequence", ""};
  }
  std::string detail = "role " + std::string(role) + " lacks ";
  std::string grants;
  for (std::size_t i = 0; i < missing.size(); ++i) {
    std::string list;
    for (const std::string& p : missing[i].privileges) {
      list += (list.empty() ? "" : ", ") + p;
    }
    detail += (i == 0 ? "" : "; ") + list + " on " + missing[i].relation;
    grants += (grants.empty() ? "GRANT " : "; GRANT ") + list + " ON " + missing[i].relation +
              " TO " + std::string(role);
  }
  return {"database privileges", status::fail, detail, grants};
}

line signature_check(int http_status, std::string_view url, std::size_t secret_index,
                     std::size_t secret_count) {
  const std::string which =
      "webhook secret " + std::to_string(secret_index + 1) + " of " + std::to_string(secret_count);
  const std::string where(url);
  if (http_status == 400) {
    return {"webhook signature", status::ok,
            "the daemon behind " + where + " accepts a POST signed with " + which +
                " (its body, not an event, was refused: nothing stored)",
            ""};
  }
  if (http_status == 401) {
    return {"webhook signature", status::fail,
            "the daemon behind " + where + " refuses a POST signed with " + which + " (401)",
            "make webhook.secrets the same here, in the running daemon and in Certn's webhook "
            "settings (during a rotation, configure both secrets)"};
  }
  return {"webhook signature", status::fail,
          "a signed POST to " + where + " answered " + std::to_string(http_status) +
              ", expected 400 (signature accepted, body refused)",
          "check that --public-url is the webhook URL (server.webhook_path) and reaches this "
          "daemon"};
}

}  // namespace archiver::service::doctor
