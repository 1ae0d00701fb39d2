#include "simulator.hpp"

#include <spdlog/spdlog.h>

#include "api.hpp"
#include "context.hpp"
#include "control.hpp"
#include "http/server.hpp"
#include "ops/metrics.hpp"

namespace certn_sim {

namespace {

namespace http = archiver::http;

// "host:port" or "[v6]:port"; throws std::invalid_argument naming the value.
archiver::tcp::endpoint parse_listen(const std::string& listen) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) {
    throw std::invalid_argument("listen: expected HOST:PORT, got \"" + listen + "\"");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  archiver::error_code ec;
  const auto address = archiver::asio::ip::make_address(host, ec);
  unsigned long port = 0;
  try {
    std::size_t used = 0;
    port = std::stoul(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1) {
      port = 70000;
    }
  } catch (const std::exception&) {
    port = 70000;
  }
  if (ec || port > 65535) {
    throw std::invalid_argument("listen: expected an IP address and a port, got \"" + listen +
                                "\"");
  }
  return {address, static_cast<unsigned short>(port)};
}

std::string_view after_prefix(std::string_view path, std::string_view prefix) {
  return path.substr(prefix.size());
}

}  // namespace

struct simulator::impl {
  impl(asio::io_context& io, settings config)
      : ctx(std::make_shared<context>(io, std::move(config))), metrics(registry) {
    http::router routes;
    const std::shared_ptr<context> shared = ctx;
    routes.add_prefix("/api/public/", [shared](const http::request& req) {
      return handle_api(shared, req);
    });
    routes.add_prefix("/_sim/", [shared](const http::request& req) {
      return handle_control(shared, req);
    });
    context* raw = ctx.get();
    add_download_routes(
        routes, ctx->signer,
        [raw](std::string_view path) -> std::optional<download_object> {
          if (path.substr(0, 6) == "files/") {
            const file_record* file = raw->cases.find_file(after_prefix(path, "files/"));
            if (file == nullptr) {
              return std::nullopt;
            }
            return download_object{file->content_type, file->size, file->content_seed, {}};
          }
          if (path.substr(0, 8) == "reports/") {
            const report_file* report = raw->cases.find_report(after_prefix(path, "reports/"));
            if (report == nullptr || report->status != "COMPLETE") {
              return std::nullopt;
            }
            const std::string pdf = make_report_pdf(report->case_id, report->id);
            return download_object{"application/pdf", pdf.size(), 0, pdf};
          }
          return std::nullopt;
        },
        download_faults{ctx->config.faults.truncate_rate, ctx->config.seed});
    http::limits limits;
    limits.max_body_bytes = 1024 * 1024;
    server = std::make_unique<http::server>(io, "certn-sim", parse_listen(ctx->config.listen),
                                            std::move(routes), limits, metrics);
    auto bound = server->local_endpoint();
    if (bound.address().is_unspecified()) {
      // Listening on every address: loopback is one that certainly reaches us.
      bound.address(bound.address().is_v6()
                        ? archiver::asio::ip::address(archiver::asio::ip::address_v6::loopback())
                        : archiver::asio::ip::address(archiver::asio::ip::address_v4::loopback()));
    }
    if (!ctx->config.public_base_url.empty()) {
      std::string base = ctx->config.public_base_url;
      while (!base.empty() && base.back() == '/') {
        base.pop_back();
      }
      ctx->base_url = base;
    } else if (bound.address().is_v6()) {
      ctx->base_url = "http://[" + bound.address().to_string() + "]:" + std::to_string(bound.port());
    } else {
      ctx->base_url = "http://" + bound.address().to_string() + ":" + std::to_string(bound.port());
    }
  }

  std::shared_ptr<context> ctx;
  archiver::ops::registry registry;
  http::server_metrics metrics;
  std::unique_ptr<http::server> server;  // declared last: destroyed first (its routes use ctx)
};

simulator::simulator(asio::io_context& io, settings config)
    : impl_(std::make_unique<impl>(io, std::move(config))) {}

simulator::~simulator() = default;

unsigned short simulator::port() const { return impl_->server->local_endpoint().port(); }

std::string simulator::base_url() const { return impl_->ctx->base_url; }

asio::awaitable<void> simulator::start() {
  if (!impl_->ctx->config.webhooks.url.empty()) {
    co_await impl_->ctx->webhooks.verify_challenge();
    spdlog::info("certn-sim: webhook URL passed the challenge");
  }
  create_default_cases(*impl_->ctx, impl_->ctx->config.initial_cases);
  impl_->server->start();
}

asio::awaitable<void> simulator::stop() { co_await impl_->server->drain(std::chrono::seconds(2)); }

}  // namespace certn_sim
