// The metrics registry: one mutex per family guarding a map from label values to series, and
// the Prometheus text exposition (format 0.0.4).
#include "ops/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace archiver::ops {
namespace {

// Orders series keys lexicographically, and lets a lookup by the caller's string_views find a
// stored std::vector<std::string> without building one (no allocation on the hot path).
struct key_less {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return std::lexicographical_compare(
        a.begin(), a.end(), b.begin(), b.end(),
        [](std::string_view x, std::string_view y) { return x < y; });
  }
};

using series_key = std::vector<std::string>;

bool is_metric_name(std::string_view name) {
  if (name.empty()) {
    return false;
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit))) {
      return false;
    }
  }
  return true;
}

bool is_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) {  // "__" is reserved for Prometheus itself
    return false;
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (i > 0 && digit))) {
      return false;
    }
  }
  return true;
}

// A sample value: integers without exponent or decimal point ("3"), others as the shortest
// string that reads back to the same double ("0.25"), and the spellings Prometheus expects for
// infinities and NaN.
void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::trunc(v) && std::fabs(v) < 9007199254740992.0) {  // 2^53: exact
    fmt::format_to(std::back_inserter(out), "{}", static_cast<std::int64_t>(v));
  } else {
    fmt::format_to(std::back_inserter(out), "{}", v);
  }
}

void append_escaped_label_value(std::string& out, std::string_view v) {
  for (const char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void append_escaped_help(std::string& out, std::string_view v) {
  for (const char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

// `{a="x",b="y"}`, with `le="..."` last when `le` is given; nothing at all for no labels.
void append_labels(std::string& out, const std::vector<std::string>& names,
                   const series_key& values, const double* le = nullptr) {
  if (names.empty() && le == nullptr) {
    return;
  }
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += names[i];
    out += "=\"";
    append_escaped_label_value(out, values[i]);
    out += '"';
  }
  if (le != nullptr) {
    if (!names.empty()) {
      out += ',';
    }
    out += "le=\"";
    append_number(out, *le);
    out += '"';
  }
  out += '}';
}

void append_sample(std::string& out, std::string_view name, std::string_view suffix,
                   const std::vector<std::string>& label_names, const series_key& values,
                   double value, const double* le = nullptr) {
  out += name;
  out += suffix;
  append_labels(out, label_names, values, le);
  out += ' ';
  append_number(out, value);
  out += '\n';
}

// What every family shares: name, help, label names, and the mutex guarding its series.
class family_base {
 public:
  family_base(std::string name, std::string help, std::vector<std::string> labels)
      : name_(std::move(name)), help_(std::move(help)), labels_(std::move(labels)) {
    for (std::size_t i = 0; i < labels_.size(); ++i) {
      if (!is_label_name(labels_[i])) {
        throw std::invalid_argument(fmt::format("metric {}: invalid label name \"{}\"", name_,
                                                labels_[i]));
      }
      if (std::find(labels_.begin(), labels_.begin() + static_cast<std::ptrdiff_t>(i),
                    labels_[i]) != labels_.begin() + static_cast<std::ptrdiff_t>(i)) {
        throw std::invalid_argument(fmt::format("metric {}: duplicate label name \"{}\"", name_,
                                                labels_[i]));
      }
    }
  }
  virtual ~family_base() = default;
  family_base(const family_base&) = delete;
  family_base& operator=(const family_base&) = delete;

  // Appends HELP, TYPE and every series, in key order.
  void write(std::string& out) const {
    out += "# HELP ";
    out += name_;
    out += ' ';
    append_escaped_help(out, help_);
    out += "\n# TYPE ";
    out += name_;
    out += ' ';
    out += type_name();
    out += '\n';
    write_series(out);
  }

 protected:
  virtual const char* type_name() const = 0;
  virtual void write_series(std::string& out) const = 0;

  void check_labels(label_values values) const {
    if (values.size() != labels_.size()) {
      throw std::invalid_argument(fmt::format("metric {}: expected {} label values, got {}",
                                              name_, labels_.size(), values.size()));
    }
  }

  static series_key make_key(label_values values) { return {values.begin(), values.end()}; }

  std::string name_;
  std::string help_;
  std::vector<std::string> labels_;
  mutable std::mutex mutex_;
};

class counter_impl final : public counter_family, public family_base {
 public:
  counter_impl(std::string name, std::string help, std::vector<std::string> labels)
      : family_base(std::move(name), std::move(help), std::move(labels)) {
    if (labels_.empty()) {
      series_.emplace(series_key{}, 0.0);  // a label-less counter is exposed from the start
    }
  }

  void inc(label_values labels, double amount) override {
    check_labels(labels);
    if (!(amount >= 0)) {  // also rejects NaN
      throw std::invalid_argument(
          fmt::format("metric {}: counter increment must be >= 0, got {}", name_, amount));
    }
    const std::lock_guard lock(mutex_);
    auto it = series_.find(labels);
    if (it == series_.end()) {
      it = series_.emplace(make_key(labels), 0.0).first;
    }
    it->second += amount;
  }

  double value(label_values labels) const override {
    check_labels(labels);
    const std::lock_guard lock(mutex_);
    const auto it = series_.find(labels);
    return it == series_.end() ? 0.0 : it->second;
  }

 private:
  const char* type_name() const override { return "counter"; }
  void write_series(std::string& out) const override {
    const std::lock_guard lock(mutex_);
    for (const auto& [key, v] : series_) {
      append_sample(out, name_, "", labels_, key, v);
    }
  }

  std::map<series_key, double, key_less> series_;
};

class gauge_impl final : public gauge_family, public family_base {
 public:
  gauge_impl(std::string name, std::string help, std::vector<std::string> labels)
      : family_base(std::move(name), std::move(help), std::move(labels)) {
    if (labels_.empty()) {
      series_.emplace(series_key{}, 0.0);
    }
  }

  void set(label_values labels, double value) override {
    check_labels(labels);
    const std::lock_guard lock(mutex_);
    slot(labels) = value;
  }

  void add(label_values labels, double delta) override {
    check_labels(labels);
    const std::lock_guard lock(mutex_);
    slot(labels) += delta;
  }

  double value(label_values labels) const override {
    check_labels(labels);
    const std::lock_guard lock(mutex_);
    const auto it = series_.find(labels);
    return it == series_.end() ? 0.0 : it->second;
  }

 private:
  double& slot(label_values labels) {  // caller holds mutex_
    auto it = series_.find(labels);
    if (it == series_.end()) {
      it = series_.emplace(make_key(labels), 0.0).first;
    }
    return it->second;
  }

  const char* type_name() const override { return "gauge"; }
  void write_series(std::string& out) const override {
    const std::lock_guard lock(mutex_);
    for (const auto& [key, v] : series_) {
      append_sample(out, name_, "", labels_, key, v);
    }
  }

  std::map<series_key, double, key_less> series_;
};

class histogram_impl final : public histogram_family, public family_base {
 public:
  histogram_impl(std::string name, std::string help, std::vector<double> buckets,
                 std::vector<std::string> labels)
      : family_base(std::move(name), std::move(help), std::move(labels)),
        bounds_(std::move(buckets)) {
    // "+Inf" is always emitted; a caller may list it last, as other client libraries allow.
    if (!bounds_.empty() && bounds_.back() == std::numeric_limits<double>::infinity()) {
      bounds_.pop_back();
    }
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
      if (!std::isfinite(bounds_[i]) || (i > 0 && !(bounds_[i - 1] < bounds_[i]))) {
        throw std::invalid_argument(
            fmt::format("metric {}: buckets must be finite and strictly increasing", name_));
      }
    }
    if (std::find(labels_.begin(), labels_.end(), "le") != labels_.end()) {
      throw std::invalid_argument(fmt::format("metric {}: \"le\" is reserved", name_));
    }
    if (labels_.empty()) {
      series_.emplace(series_key{}, series(bounds_.size()));
    }
  }

  void observe(label_values labels, double value) override {
    check_labels(labels);
    // The first bucket whose upper bound is >= value; NaN lands only in +Inf.
    const std::size_t bucket =
        std::isnan(value) ? bounds_.size()
                          : static_cast<std::size_t>(
                                std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                bounds_.begin());
    const std::lock_guard lock(mutex_);
    auto it = series_.find(labels);
    if (it == series_.end()) {
      it = series_.emplace(make_key(labels), series(bounds_.size())).first;
    }
    if (bucket < bounds_.size()) {
      ++it->second.buckets[bucket];
    }
    ++it->second.count;
    it->second.sum += value;
  }

  std::uint64_t count(label_values labels) const override {
    check_labels(labels);
    const std::lock_guard lock(mutex_);
    const auto it = series_.find(labels);
    return it == series_.end() ? 0 : it->second.count;
  }

 private:
  struct series {
    explicit series(std::size_t n) : buckets(n, 0) {}
    std::vector<std::uint64_t> buckets;  // per bucket, not cumulative; +Inf is `count`
    std::uint64_t count = 0;
    double sum = 0;
  };

  const char* type_name() const override { return "histogram"; }
  void write_series(std::string& out) const override {
    static constexpr double inf = std::numeric_limits<double>::infinity();
    const std::lock_guard lock(mutex_);
    for (const auto& [key, s] : series_) {
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < bounds_.size(); ++i) {
        cumulative += s.buckets[i];
        append_sample(out, name_, "_bucket", labels_, key, static_cast<double>(cumulative),
                      &bounds_[i]);
      }
      append_sample(out, name_, "_bucket", labels_, key, static_cast<double>(s.count), &inf);
      append_sample(out, name_, "_sum", labels_, key, s.sum);
      append_sample(out, name_, "_count", labels_, key, static_cast<double>(s.count));
    }
  }

  std::vector<double> bounds_;
  std::map<series_key, series, key_less> series_;
};

class gauge_callback_impl final : public family_base {
 public:
  gauge_callback_impl(std::string name, std::string help, std::function<double()> read)
      : family_base(std::move(name), std::move(help), {}), read_(std::move(read)) {
    if (!read_) {
      throw std::invalid_argument(fmt::format("metric {}: empty callback", name_));
    }
  }

 private:
  const char* type_name() const override { return "gauge"; }
  // Not under mutex_: `read_` is immutable, and its own thread safety is the caller's concern.
  void write_series(std::string& out) const override {
    append_sample(out, name_, "", labels_, {}, read_());
  }

  std::function<double()> read_;
};

}  // namespace

struct registry::impl {
  std::mutex mutex;  // guards `families` (the map, not the families themselves)
  std::map<std::string, std::unique_ptr<family_base>, std::less<>> families;

  template <class T, class... Args>
  T& add(std::string name, Args&&... args) {
    if (!is_metric_name(name)) {
      throw std::invalid_argument(fmt::format("invalid metric name \"{}\"", name));
    }
    const std::lock_guard lock(mutex);
    if (families.contains(name)) {
      throw std::logic_error(fmt::format("metric {} registered twice", name));
    }
    auto family = std::make_unique<T>(name, std::forward<Args>(args)...);
    T& ref = *family;
    families.emplace(std::move(name), std::move(family));
    return ref;
  }
};

registry::registry() : impl_(std::make_unique<impl>()) {}
registry::~registry() = default;

counter_family& registry::counter(std::string name, std::string help,
                                  std::vector<std::string> labels) {
  return impl_->add<counter_impl>(std::move(name), std::move(help), std::move(labels));
}

gauge_family& registry::gauge(std::string name, std::string help,
                              std::vector<std::string> labels) {
  return impl_->add<gauge_impl>(std::move(name), std::move(help), std::move(labels));
}

histogram_family& registry::histogram(std::string name, std::string help,
                                      std::vector<double> buckets,
                                      std::vector<std::string> labels) {
  return impl_->add<histogram_impl>(std::move(name), std::move(help), std::move(buckets),
                                    std::move(labels));
}

void registry::gauge_callback(std::string name, std::string help, std::function<double()> read) {
  impl_->add<gauge_callback_impl>(std::move(name), std::move(help), std::move(read));
}

std::string registry::expose() const {
  // Families are never removed, so the pointers stay valid after the registry lock is released;
  // writing outside it means a slow callback never blocks registration.
  std::vector<const family_base*> families;
  {
    const std::lock_guard lock(impl_->mutex);
    families.reserve(impl_->families.size());
    for (const auto& [name, family] : impl_->families) {
      families.push_back(family.get());
    }
  }
  std::string out;
  for (const family_base* family : families) {
    family->write(out);
  }
  return out;
}

std::vector<double> latency_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

}  // namespace archiver::ops
