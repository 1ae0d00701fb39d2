#include "context.hpp"

#include <stdexcept>

#include "shapes.hpp"

namespace certn_sim {

context::context(asio::io_context& io_context, settings settings_)
    : io(io_context),
      config(std::move(settings_)),
      cases(config.seed),
      webhooks(io_context, config.webhooks, config.seed * 0x9E3779B97F4A7C15ull + 1),
      signer("certn-sim-download-secret-" + std::to_string(config.seed), config.url_ttl),
      fault_random(config.seed ^ 0xC0FFEEull) {
  if (const auto problem = shape_error(config.shapes)) {
    throw std::invalid_argument(*problem);
  }
}

void context::send(const std::vector<event>& events) {
  const std::string id_field(knob_value(config.shapes, "webhook.id_name"));
  const bool name_checks = knob_value(config.shapes, "webhook.check_object") == "check";
  for (const event& e : events) {
    if (name_checks && !e.check_id.empty()) {
      webhooks.send(e.type, e.check_id, "CHECK", id_field);
    } else {
      webhooks.send(e.type, e.object_id, e.object_type, id_field);
    }
  }
}

std::string context::presign(std::string_view path) {
  auto signed_at = std::chrono::system_clock::now();
  if (config.faults.expire_next_urls > 0) {
    --config.faults.expire_next_urls;
    ++stats.expired_urls;
    // Signed longer ago than a URL lives, with room for X-Amz-Date's whole seconds.
    signed_at -= config.url_ttl + std::chrono::seconds(2);
  }
  return signer.presign(base_url, path, signed_at);
}

double context::draw() { return std::uniform_real_distribution<double>(0.0, 1.0)(fault_random); }

archiver::http::response json_response(archiver::http::status code, std::string body) {
  archiver::http::response res{code, 11};
  res.set(archiver::beast::http::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

std::vector<std::string_view> path_segments(std::string_view path, std::string_view prefix) {
  std::vector<std::string_view> out;
  if (path.substr(0, prefix.size()) != prefix) {
    return out;
  }
  path.remove_prefix(prefix.size());
  if (!path.empty() && path.back() == '/') {
    path.remove_suffix(1);
  }
  if (path.empty()) {
    return out;
  }
  for (;;) {
    const std::size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash + 1);
  }
  return out;
}

}  // namespace certn_sim
