// What `certn-archiver probe` shows: the text helpers (Certn's bytes made printable, URLs without
// their query, counts) and the run as text or as one JSON document.
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "encoding/json.hpp"
#include "service/probe_detail.hpp"

namespace archiver::service::probe_detail {

// ---- Text from Certn, URLs and counts ----------------------------------------------------------

// Certn's bytes may hold terminal control sequences: shown as '?' in the text output.
std::string printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      c = '?';
    }
  }
  return out;
}

std::string origin(const http::url& url) { return url.scheme + "://" + http::host_header(url); }

// scheme://host/path only: the query string of a presigned URL is a credential.
std::string without_query(std::string_view text) {
  const auto url = http::parse_url(text, nullptr);
  if (!url) {
    return "(not a usable URL)";  // the text itself may carry a signature: never shown
  }
  const std::string path = url->target.substr(0, url->target.find('?'));
  return origin(*url) + (path == "/" ? "" : path);
}

// "1 case", "2 cases"; `plural` for nouns that do not just take an "s".
std::string counted(std::size_t n, std::string_view noun, std::string_view plural) {
  if (n == 1) {
    return "1 " + std::string(noun);
  }
  return std::to_string(n) + " " + (plural.empty() ? std::string(noun) + "s" : std::string(plural));
}

std::string joined(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    out += (out.empty() ? "" : std::string(separator)) + item;
  }
  return out;
}

// ---- Output -------------------------------------------------------------------------------------

namespace {

// One field as seen over every object of its kind in an answer.
struct field_view {
  std::string where;
  std::string field;
  std::vector<std::string> names;  // accepted names that matched, in order seen
  bool missing = false;            // absent from at least one object
  certn::when_missing consequence = certn::when_missing::tolerated;
};

std::vector<field_view> field_views(const certn::shape_report& shape) {
  std::vector<field_view> out;
  for (const auto& seen : shape.fields) {
    auto it = std::find_if(out.begin(), out.end(), [&](const field_view& v) {
      return v.where == seen.where && v.field == seen.field;
    });
    if (it == out.end()) {
      it = out.insert(out.end(), field_view{seen.where, seen.field, {}, false, seen.missing});
    }
    if (seen.matched.empty()) {
      it->missing = true;
    } else {
      it->names.push_back(seen.matched);
    }
  }
  return out;
}

// The object kind ("case.checks[]") an unknown key ("case.checks[].score") belongs to: the
// longest kind the report saw, since kinds themselves contain dots.
std::string kind_of(const std::string& unknown, const certn::shape_report& shape) {
  std::string best;
  for (const auto& seen : shape.fields) {
    if (seen.where.size() > best.size() && unknown.starts_with(seen.where + ".")) {
      best = seen.where;
    }
  }
  return best.empty() ? unknown.substr(0, unknown.rfind('.')) : best;
}

// "  label      text", the label column aligned; later lines of a block leave it blank.
void line(std::string_view label, const std::string& text) {
  std::string padded(label);
  padded.resize(12, ' ');
  std::cout << "  " << padded << printable(text) << "\n";
}

void print_shape(const response_check& r) {
  const auto views = field_views(r.shape);
  std::vector<std::pair<std::string, std::vector<std::string>>> matched;  // kind, fields
  for (const auto& v : views) {
    if (v.names.empty()) {
      continue;
    }
    const bool same = v.names.size() == 1 && v.names.front() == v.field;
    std::string shown = same ? v.field : v.field + "=" + joined(v.names, "|");
    if (matched.empty() || matched.back().first != v.where) {
      matched.push_back({v.where, {}});
    }
    matched.back().second.push_back(std::move(shown));
  }
  const char* label = "matched";
  for (const auto& [kind, fields] : matched) {
    line(std::exchange(label, ""), kind + ": " + joined(fields, ", "));
  }
  label = "missing";
  for (const auto& v : views) {
    if (v.missing) {
      std::string name = v.where + "." + v.field;
      name.resize(std::max<std::size_t>(name.size() + 2, 40), ' ');
      line(std::exchange(label, ""),
           name + certn::to_string(v.consequence) + (v.names.empty() ? "" : " (in some entries)"));
    }
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> unknown;  // kind, keys
  for (const auto& key : r.shape.unknown) {
    const std::string kind = kind_of(key, r.shape);
    auto it = std::find_if(unknown.begin(), unknown.end(),
                           [&](const auto& group) { return group.first == kind; });
    if (it == unknown.end()) {
      it = unknown.insert(unknown.end(), {kind, {}});
    }
    it->second.push_back(key.size() > kind.size() ? key.substr(kind.size() + 1) : key);
  }
  label = "unknown";
  for (const auto& [kind, keys] : unknown) {
    line(std::exchange(label, ""), kind + ": " + joined(keys, ", ") + " (ignored)");
  }
}

void print_response(const response_check& r) {
  std::cout << "\n" << printable(r.endpoint) << "\n";
  if (r.status == 0) {
    line("answer", "none");
  } else {
    line("answer", "HTTP " + std::to_string(r.status) +
                       (r.answered ? ", " + counted(r.bytes, "byte") : std::string()));
  }
  if (!r.answered) {
    line("verdict", "call failed: " + r.error);
  } else if (r.archivable) {
    line("verdict", "archivable" + (r.summary.empty() ? "" : " (" + r.summary + ")"));
  } else {
    line("verdict", "NOT archivable: " + r.error);
  }
  if (!r.hint.empty()) {
    line("what to do", r.hint);
  }
  print_shape(r);
  const char* label = "skipped";
  for (const auto& entry : r.skipped) {
    line(std::exchange(label, ""), entry);
  }
  label = "downloads";
  for (const auto& [where, allowed] : r.downloads) {
    line(std::exchange(label, ""),
         where + (allowed ? " (allowed by certn.download_hosts)" : " (REFUSED)"));
  }
}

void write_response(encoding::json_writer& out, const response_check& r) {
  out.begin_object();
  out.key("endpoint").value(r.endpoint);
  out.key("status").number(r.status);
  out.key("bytes").number(static_cast<std::int64_t>(r.bytes));
  out.key("archivable").boolean(r.archivable);
  out.key("error").value_or_null(r.error.empty() ? std::nullopt : std::optional(r.error));
  out.key("hint").value_or_null(r.hint.empty() ? std::nullopt : std::optional(r.hint));
  out.key("summary").value(r.summary);
  const auto views = field_views(r.shape);
  out.key("matched").begin_object();
  for (const auto& v : views) {
    if (!v.names.empty()) {
      out.key(v.where + "." + v.field).value(joined(v.names, "|"));
    }
  }
  out.end_object();
  out.key("missing").begin_array();
  for (const auto& v : views) {
    if (v.missing) {
      out.begin_object();
      out.key("field").value(v.where + "." + v.field);
      out.key("consequence").value(certn::to_string(v.consequence));
      out.key("in_some_entries").boolean(!v.names.empty());
      out.end_object();
    }
  }
  out.end_array();
  out.key("unknown").begin_array();
  for (const auto& key : r.shape.unknown) {
    out.value(key);
  }
  out.end_array();
  out.key("skipped").begin_array();
  for (const auto& entry : r.skipped) {
    out.value(entry);
  }
  out.end_array();
  if (r.files) {
    out.key("files").number(static_cast<std::int64_t>(*r.files));
  }
  out.key("downloads").begin_array();
  for (const auto& [where, allowed] : r.downloads) {
    out.begin_object().key("origin").value(where).key("allowed").boolean(allowed).end_object();
  }
  out.end_array();
  out.end_object();
}

}  // namespace

void print_text(const probe_run& run, const std::string& base_url) {
  std::cout << "probe of " << printable(base_url)
            << " (read-only: nothing is ordered, cancelled or archived)\n"
               "matched fields show field=name where Certn used another accepted name\n";
  for (std::size_t i = 0; i < run.responses.size(); ++i) {
    print_response(run.responses[i]);
    if (i == 0 && !run.case_id.empty()) {
      std::cout << "\ncase " << printable(run.case_id) << " (" << printable(run.case_reason)
                << ")\n";
    }
  }
  std::vector<std::string> failed;
  for (const auto& r : run.responses) {
    if (!r.archivable) {
      failed.push_back(r.endpoint);
    }
  }
  std::cout << "\n";
  if (!run.problem.empty()) {
    std::cout << printable(run.problem) << "\n";
  }
  if (run.ok()) {
    std::cout << "ok: every answer (" << run.responses.size() << ") can be archived\n";
  } else {
    std::cout << "NOT ok: " << failed.size() << " of " << run.responses.size()
              << " answers cannot be archived" << (failed.empty() ? "" : ": ")
              << printable(joined(failed, ", ")) << "\n";
  }
}

void print_json(const probe_run& run, const std::string& base_url) {
  encoding::json_writer out;
  out.begin_object();
  out.key("base_url").value(base_url);
  out.key("case").value_or_null(run.case_id.empty() ? std::nullopt : std::optional(run.case_id));
  out.key("case_reason").value(run.case_reason);
  out.key("ok").boolean(run.ok());
  out.key("problem").value_or_null(run.problem.empty() ? std::nullopt : std::optional(run.problem));
  out.key("responses").begin_array();
  for (const auto& r : run.responses) {
    write_response(out, r);
  }
  out.end_array();
  out.end_object();
  std::cout << out.str() << "\n";
}

}  // namespace archiver::service::probe_detail
