#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "certn/model.hpp"
#include "encoding/encoding.hpp"
#include "retry/table.hpp"
#include "service/certn_clients.hpp"
#include "service/cli_database.hpp"
#include "service/service.hpp"

namespace archiver::service {

namespace {

void print_failure(const certn::call_failure& failure) {
  std::cerr << "certn-archiver: " << failure.message << " [" << certn::to_string(failure.kind)
            << "]\n";
  if (failure.error) {
    for (const auto& item : failure.error->errors) {
      std::cerr << "  " << (item.code.empty() ? "error" : item.code) << ": " << item.detail;
      if (item.attr) {
        std::cerr << " (field: " << *item.attr << ")";
      }
      std::cerr << "\n";
    }
  }
  if (failure.retry_after) {
    std::cerr << "  retry after " << failure.retry_after->count() << " s\n";
  }
}

void print_json(std::string_view body) {
  std::cout << (body.empty() ? std::string_view("{}") : body);
  if (body.empty() || body.back() != '\n') {
    std::cout << '\n';
  }
}

// Writes a download to `<path>.part`, hashing as it goes; renamed into place only once complete.
class file_sink final : public http::body_sink {
 public:
  explicit file_sink(const std::filesystem::path& path)
      : out_(path, std::ios::binary | std::ios::trunc), hash_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!out_) {
      throw std::runtime_error("cannot write " + path.string());
    }
    EVP_DigestInit_ex(hash_.get(), EVP_sha256(), nullptr);
  }
  void write(std::string_view chunk) override {
    out_.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    if (!out_) {
      throw std::runtime_error("write failed");
    }
    EVP_DigestUpdate(hash_.get(), chunk.data(), chunk.size());
  }
  std::string finish() {
    out_.close();
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(hash_.get(), digest, &length);
    return encoding::to_hex(std::string_view(reinterpret_cast<const char*>(digest), length));
  }

 private:
  std::ofstream out_;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> hash_;
};

// A 429 is waited out, not failed: as long as Certn's Retry-After says (else 5 s, at most 5
// minutes), said on stderr, then the same call again; up to max_rate_limited_retries times. A
// refused request was not processed, so repeating even an order is safe.
constexpr int max_rate_limited_retries = 5;

template <class T>
awaitable<certn::call_result<T>> patiently(
    const std::function<awaitable<certn::call_result<T>>()>& call) {
  for (int retries = 0;; ++retries) {
    certn::call_result<T> result = co_await call();
    if (result.value || result.failure->kind != retry::failure_class::rate_limited ||
        retries == max_rate_limited_retries) {
      co_return result;
    }
    const std::optional<std::chrono::seconds> asked = result.failure->retry_after;
    const std::chrono::seconds wait =
        std::clamp(asked.value_or(std::chrono::seconds(5)), std::chrono::seconds(1),
                   std::chrono::seconds(300));
    const bool answered_429 = result.failure->http_status == 429;
    const char* why_this_long = asked != wait  ? ""  // none asked, or more than 5 minutes
                                : answered_429 ? " as its Retry-After asks"
                                               : " until the hold ends";
    std::cerr << "certn-archiver: "
              << (answered_429 ? "Certn answered 429 (rate limited)"
                               : "not sent: the day's budget or an earlier 429 holds calls back")
              << "; waiting " << wait.count() << " s" << why_this_long << ", then trying again ("
              << retries + 1 << " of " << max_rate_limited_retries << ")\n";
    asio::steady_timer timer(co_await asio::this_coro::executor, wait);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

template <class T>
int report(const certn::call_result<T>& result) {
  if (!result.value) {
    print_failure(*result.failure);
    return exit_failure;
  }
  print_json(result.body);
  return exit_ok;
}

awaitable<int> list(certn::api_client& api, const cases_request& request) {
  int number = request.page;
  const std::function<awaitable<certn::call_result<certn::case_page>>()> list_page = [&] {
    return api.list_cases(request.filter, number, request.page_size);
  };
  if (!request.all_pages) {
    co_return report(co_await patiently(list_page));
  }
  // Pages are printed as they come, so memory stays flat however many cases there are; they are
  // numbered here, not followed by `next` (a URL from an answer could point anywhere).
  number = 1;
  bool first = true;
  std::cout << "[";
  for (bool more = true; more; ++number) {
    const auto page = co_await patiently(list_page);
    if (!page.value) {
      std::cout << "]\n" << std::flush;
      print_failure(*page.failure);
      co_return exit_failure;
    }
    for (const auto& record : page.value->results) {
      std::cout << (first ? "\n" : ",\n") << record.raw_json;
      first = false;
    }
    more = certn::has_more_pages(*page.value, request.page_size);
  }
  std::cout << "\n]\n";
  co_return exit_ok;
}

awaitable<int> report_file(certn::api_client& api, const cases_request& request) {
  const std::function<awaitable<certn::call_result<certn::report_file>>()> get = [&] {
    return api.get_report_file(request.id);
  };
  const auto file = co_await patiently(get);
  if (!file.value || request.download_path.empty()) {
    co_return report(file);
  }
  if (file.value->status != "COMPLETE" || !file.value->url) {
    std::cerr << "certn-archiver: report file " << request.id << " is " << file.value->status
              << ": it has no PDF to download yet\n";
    co_return exit_failure;
  }
  const std::filesystem::path target = request.download_path;
  const std::filesystem::path part = target.string() + ".part";
  std::string sha256;
  std::optional<certn::call_result<std::uint64_t>> fetched;
  {
    file_sink sink(part);
    fetched = co_await api.download(*file.value->url, sink);
    sha256 = sink.finish();
  }
  if (!fetched->value) {
    std::filesystem::remove(part);
    print_failure(*fetched->failure);
    co_return exit_failure;
  }
  std::filesystem::rename(part, target);
  print_json(file.body);
  std::cerr << "downloaded " << *fetched->value << " bytes to " << target.string() << " (sha256 "
            << sha256 << ")\n";
  co_return exit_ok;
}

std::optional<std::string> read_order(const std::string& source) {
  std::ostringstream text;
  if (source == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(source, std::ios::binary);
    if (!in) {
      return std::nullopt;
    }
    text << in.rdbuf();
  }
  return text.str();
}

awaitable<int> run(certn::api_client& api, const cases_request& request) {
  const std::string& e = request.endpoint;
  if (e == "list") {
    co_return co_await list(api, request);
  }
  if (e == "get") {
    const std::function<awaitable<certn::call_result<certn::case_record>>()> call = [&] {
      return api.get_case(request.id);
    };
    co_return report(co_await patiently(call));
  }
  if (e == "cancel") {
    const std::function<awaitable<certn::call_result<std::optional<certn::case_record>>>()> call =
        [&] { return api.cancel_case(request.id); };
    co_return report(co_await patiently(call));
  }
  if (e == "generate-report") {
    const std::function<awaitable<certn::call_result<std::string>>()> call = [&] {
      return api.generate_report(request.id, request.language);
    };
    co_return report(co_await patiently(call));
  }
  if (e == "report-file") {
    co_return co_await report_file(api, request);
  }
  if (e == "supplementary-files") {
    const std::function<awaitable<certn::call_result<certn::supplementary_files>>()> call = [&] {
      return api.get_supplementary_files(request.id);
    };
    co_return report(co_await patiently(call));
  }
  if (e == "supplementary-information") {
    const std::function<awaitable<certn::call_result<certn::supplementary_information>>()> call =
        [&] { return api.get_supplementary_information(request.id); };
    co_return report(co_await patiently(call));
  }
  if (e == "order") {
    const auto body = read_order(request.order_json_file);
    if (!body) {
      std::cerr << "certn-archiver: cannot read " << request.order_json_file << "\n";
      co_return exit_usage;
    }
    const std::function<awaitable<certn::call_result<certn::case_record>>()> call = [&] {
      return api.order(*body);
    };
    co_return report(co_await patiently(call));
  }
  if (e == "order-package") {
    const std::function<awaitable<certn::call_result<certn::case_record>>()> call = [&] {
      return api.order_package(request.package);
    };
    co_return report(co_await patiently(call));
  }
  std::cerr << "certn-archiver: unknown cases endpoint " << e << "\n";
  co_return exit_usage;
}

}  // namespace

int cases(const config::config& cfg, const cases_request& request) {
  if (cfg.certn.api_key.empty()) {
    std::cerr << "certn-archiver: configuration error: certn.api_key: required to call the Certn "
                 "API (set certn.api_key, certn.api_key_file or CERTN_ARCHIVER_CERTN_API_KEY)\n";
    return exit_usage;
  }
  asio::io_context io(1);
  // Only to charge the calls to the shared budget: without the database they still go, on this
  // process's own limit.
  db::pool database(cfg.database.url, 1, static_cast<int>(cfg.database.connect_timeout.count()),
                    admin_limits(cfg));
  certn_clients clients(io, cfg.certn, nullptr, &database);
  int code = exit_failure;
  std::exception_ptr escaped;
  // Stopped when the call is done: idle pooled connections would keep io.run() going.
  asio::co_spawn(io, run(clients.api(), request), [&](std::exception_ptr error, int result) {
    escaped = error;
    code = result;
    io.stop();
  });
  io.run();
  if (escaped) {
    std::rethrow_exception(escaped);
  }
  return code;
}

}  // namespace archiver::service
