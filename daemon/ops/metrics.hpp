// A small Prometheus metrics registry: counters, gauges and histograms with labels, and the
// text exposition format (version 0.0.4). Thread-safe: any thread may update any metric.
// Families are created once at start-up and live as long as the registry (references stay valid).
#pragma once

#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>
#include <cstdint>

namespace archiver::ops {

using label_values = std::initializer_list<std::string_view>;

class counter_family {
 public:
  virtual ~counter_family() = default;
  // Adds `amount` (>= 0) to the series with these label values (one per label name, in order).
  virtual void inc(label_values labels, double amount = 1.0) = 0;
  virtual double value(label_values labels) const = 0;  // 0 for a series never touched
};

class gauge_family {
 public:
  virtual ~gauge_family() = default;
  virtual void set(label_values labels, double value) = 0;
  virtual void add(label_values labels, double delta) = 0;
  virtual double value(label_values labels) const = 0;
};

class histogram_family {
 public:
  virtual ~histogram_family() = default;
  virtual void observe(label_values labels, double value) = 0;
  virtual std::uint64_t count(label_values labels) const = 0;
};

class registry {
 public:
  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  // Names must match [a-zA-Z_:][a-zA-Z0-9_:]*; registering a name twice throws std::logic_error.
  counter_family& counter(std::string name, std::string help, std::vector<std::string> labels = {});
  gauge_family& gauge(std::string name, std::string help, std::vector<std::string> labels = {});
  histogram_family& histogram(std::string name, std::string help, std::vector<double> buckets,
                              std::vector<std::string> labels = {});
  // A gauge without labels whose value is read from `read` at exposition time.
  void gauge_callback(std::string name, std::string help, std::function<double()> read);

  // The whole registry in Prometheus text format; label values escaped (\\, \", \n).
  std::string expose() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Histogram buckets for latencies in seconds, 0.5 ms to 10 s.
std::vector<double> latency_buckets();

}  // namespace archiver::ops
