// Internal to certn-sim's Cases API: what the routing (api.cpp) and the files of the resources
// (api_cases.cpp, api_orders.cpp, api_reports.cpp, api_supplementary.cpp) share: DRF's error
// envelopes, request bodies, and one handler per endpoint. Not for use outside simulator/api*.cpp.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "context.hpp"
#include "http/server.hpp"
#include "state.hpp"

namespace certn_sim::api_detail {

namespace http = archiver::http;
using http::status;

inline constexpr std::string_view api_prefix = "/api/public/";

// ---- api.cpp: error envelopes and request bodies ------------------------------------------------

struct field_error {
  std::string code;
  std::string detail;
  std::optional<std::string> attr;
};

// DRF's error envelope: {"type": type, "errors": [{"code", "detail", "attr"}...]}.
http::response error_response(status code, std::string_view type,
                              const std::vector<field_error>& errors);
// A client_error envelope with one error and no attr.
http::response client_error(status code, std::string code_name, std::string detail);
// A 400 validation_error envelope.
http::response validation_error(std::vector<field_error> errors);
// 404 "Not found.".
http::response not_found();
// An answer whose status the shapes choose; an empty body is sent as no body at all.
http::response shaped_response(int code, std::string body);

// Request bodies: an absent or empty body is an empty object.
struct body_result {
  std::optional<http::response> error;
  simdjson::dom::object object;
};

// `body` as a JSON object, parsed by `parser` into `storage` (both the caller's, which must
// outlive the result); `error` is set to the 400 to send when it is not JSON or not an object.
body_result parse_body(simdjson::dom::parser& parser, const std::string& body,
                       simdjson::padded_string& storage);

// ---- One handler per endpoint -------------------------------------------------------------------
// Each returns the answer to send; bad input gives a 4xx envelope, never an exception.

// api_cases.cpp: GET cases/ (filters, pages in the list shape in force), GET cases/{id}/ and
// POST cases/{id}/cancel/.
http::response list_cases(context& ctx, std::string_view target);
http::response case_detail(const context& ctx, const case_record& c);
http::response cancel(context& ctx, case_record& c);

// api_orders.cpp: POST cases/order/ (check types given) and POST cases/order-package/ (a
// configured package's check types).
http::response order(context& ctx, const std::string& body_text);
http::response order_package(context& ctx, const std::string& body_text);

// api_reports.cpp: POST cases/{id}/generate-report/ (the report completes after
// config.report_delay, then a webhook is sent) and GET cases/report-files/{id}/.
http::response generate_report(const std::shared_ptr<context>& ctx, const case_record& c,
                               const std::string& body_text);
http::response report_file_answer(context& ctx, const report_file& report);

// api_supplementary.cpp: GET cases/{id}/supplementary-files/ (presigned URLs) and
// GET cases/{id}/supplementary-information/.
http::response supplementary_files(context& ctx, const case_record& c);
http::response supplementary_information(const context& ctx, const case_record& c);

}  // namespace certn_sim::api_detail
