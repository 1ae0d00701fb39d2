// Fuzzes webhook::parse_event over raw request bodies. Properties: exactly one of value and
// error; errors are one line; accepted fields obey the documented rules (they become storage
// keys); an accepted event written back as JSON parses to the same event.
#include "encoding/json.hpp"
#include "fuzz_support.hpp"
#include "webhook/event.hpp"

using archiver::fuzz::require;
using archiver::webhook::event;

namespace {

bool only(std::string_view text, std::size_t max_length, bool allow_colon) {
  if (text.empty() || text.size() > max_length) {
    return false;
  }
  for (const char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-' || (allow_colon && c == ':');
    if (!ok) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string_view body = archiver::fuzz::as_text(data, size);
  const auto parsed = archiver::webhook::parse_event(body);
  if (!parsed.value) {
    require(!parsed.error.empty(), "a refused body comes with an error", body);
    require(parsed.error.find('\n') == std::string::npos, "the error is one line", parsed.error);
    return 0;
  }
  require(parsed.error.empty(), "an accepted body has no error", parsed.error);
  const event& e = *parsed.value;
  require(only(e.id, 128, true), "id obeys the id rules", e.id);
  require(only(e.object_id, 128, true), "object_id obeys the id rules", e.object_id);
  require(only(e.event_type, 64, false), "event_type obeys the type rules", e.event_type);
  // object_type and case_id are optional: empty when the body has none.
  require(e.object_type.empty() || only(e.object_type, 64, false),
          "object_type obeys the type rules", e.object_type);
  require(e.case_id.empty() || only(e.case_id, 128, true), "case_id obeys the id rules",
          e.case_id);
  (void)archiver::webhook::kind_of_object(e.object_type);

  archiver::encoding::json_writer out;
  out.begin_object()
      .key("id").value(e.id)
      .key("event_type").value(e.event_type)
      .key("object_id").value(e.object_id);
  if (!e.object_type.empty()) {
    out.key("object_type").value(e.object_type);
  }
  if (!e.case_id.empty()) {
    out.key("case_id").value(e.case_id);
  }
  out.end_object();
  const auto again = archiver::webhook::parse_event(out.str());
  require(again.value.has_value(), "the event written back parses", out.str() + " " + again.error);
  require(again.value->id == e.id && again.value->event_type == e.event_type &&
              again.value->object_id == e.object_id && again.value->object_type == e.object_type &&
              again.value->case_id == e.case_id,
          "the event written back parses to the same event", out.str());
  return 0;
}
