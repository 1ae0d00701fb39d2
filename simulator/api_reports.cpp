// certn-sim's report files: POST cases/{id}/generate-report/ (the report completes after
// config.report_delay and a CASE_REPORT_READY webhook is sent) and GET cases/report-files/{id}/.
#include <chrono>
#include <exception>
#include <optional>

#include "api_detail.hpp"
#include "ops/logging.hpp"
#include "shapes.hpp"

namespace certn_sim::api_detail {

namespace {

using archiver::awaitable;

awaitable<void> finish_report(std::weak_ptr<context> weak, std::string report_id,
                              std::chrono::milliseconds delay) {
  archiver::asio::steady_timer timer(co_await archiver::asio::this_coro::executor);
  timer.expires_after(delay);
  archiver::error_code ec;
  co_await timer.async_wait(archiver::with_error(ec));
  const auto ctx = weak.lock();
  if (!ctx) {
    co_return;  // the simulator is gone
  }
  report_file* report = ctx->cases.find_report(report_id);
  if (report == nullptr) {
    co_return;
  }
  report->status = "COMPLETE";
  if (ctx->config.report_ready_object_type == "CASE_REPORT_FILE") {
    ctx->send({{"CASE_REPORT_READY", report->id, "CASE_REPORT_FILE", ""}});
  } else {
    ctx->send({{"CASE_REPORT_READY", report->case_id, "CASE", ""}});
  }
}

}  // namespace

http::response generate_report(const std::shared_ptr<context>& ctx, const case_record& c,
                               const std::string& body_text) {
  simdjson::dom::parser parser;
  simdjson::padded_string storage;
  auto body = parse_body(parser, body_text, storage);
  if (body.error) {
    return std::move(*body.error);
  }
  simdjson::dom::element language;
  if (!body.object["language"].get(language) && !language.is_string()) {
    return validation_error({{"invalid", "Not a valid string.", std::string("language")}});
  }
  const report_file& report = ctx->cases.create_report(c, now_utc());
  archiver::asio::co_spawn(
      ctx->io, finish_report(ctx, report.id, ctx->config.report_delay),
      [](std::exception_ptr failure) { archiver::ops::log_exception("report timer", failure); });
  shaped_answer answer = generate_report_answer(report, ctx->config.shapes);
  return shaped_response(answer.status, std::move(answer.body));
}

http::response report_file_answer(context& ctx, const report_file& report) {
  std::optional<std::string> url;
  if (report.status == "COMPLETE") {
    url = ctx.presign("reports/" + report.id);
  }
  return json_response(status::ok, report_file_json(report, url, ctx.config.shapes));
}

}  // namespace certn_sim::api_detail
