#include "storage/faulty_store.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

namespace archiver::storage {

namespace {

std::string quoted(const std::string& key) { return "\"" + key + "\""; }

put_result failed(bool retryable, std::string message) {
  return {store_failure{retryable, std::move(message)}, false};
}

// What a process killed during the write leaves: a staging file holding a prefix of the bytes,
// never fsynced, that nobody will rename or remove (only remove_stale_staging will).
put_result crash_mid_write(const std::string& key, staged_file& file) {
  const std::uint64_t written = file.size();
  const std::uint64_t kept = written / 2;
  const std::string where = file.path().string();
  if (::truncate(file.path().c_str(), static_cast<off_t>(kept)) != 0) {
    return failed(true, "put " + quoted(key) + ": simulated crash, but cannot cut " + where + ": " +
                            std::strerror(errno));
  }
  file.release();
  return failed(true, "put " + quoted(key) +
                          ": simulated crash mid-write (faulty_store): " + std::to_string(kept) +
                          " of " + std::to_string(written) + " bytes left in " + where);
}

// A slow disk: the caller's coroutine waits, its thread does not.
awaitable<void> pause(std::chrono::milliseconds delay) {
  asio::steady_timer timer(co_await asio::this_coro::executor, delay);
  error_code ignored;  // cancelled only when the io_context goes away
  co_await timer.async_wait(with_error(ignored));
}

bool is_injected_failure(fault what) {
  return what == fault::fail_retryable || what == fault::fail_permanent;
}

put_result injected_failure(fault what, const std::string& key) {
  return failed(what == fault::fail_retryable,
                "put " + quoted(key) + ": injected failure (faulty_store)");
}

}  // namespace

std::function<bool(const std::string& key)> key_contains(std::string part) {
  return [part = std::move(part)](const std::string& key) {
    return key.find(part) != std::string::npos;
  };
}

faulty_store::faulty_store(object_store& inner) : inner_(inner) {}

void faulty_store::set_plan(fault_plan plan) {
  const std::lock_guard lock(mutex_);
  plan_ = std::move(plan);
  selected_ = 0;
}

fault_counts faulty_store::counts() const {
  const std::lock_guard lock(mutex_);
  return counts_;
}

std::vector<protect_call> faulty_store::protect_calls() const {
  const std::lock_guard lock(mutex_);
  return protect_calls_;
}

faulty_store::decision faulty_store::decide(const std::string& key) {
  const std::lock_guard lock(mutex_);
  ++counts_.attempted;
  if (plan_.keys && !plan_.keys(key)) {
    return {};
  }
  const std::uint64_t number = ++selected_;
  decision chosen;
  chosen.delay = plan_.delay;
  if (chosen.delay.count() > 0) {
    ++counts_.delayed;
  }
  if (plan_.nth == 0 || plan_.nth == number) {
    chosen.what = plan_.what;
  }
  return chosen;
}

void faulty_store::count_outcome(const put_result& result, fault what) {
  const std::lock_guard lock(mutex_);
  if (result.failure) {
    ++counts_.failed;
  }
  if (is_injected_failure(what)) {
    ++counts_.injected;
  } else if (what == fault::crash) {
    ++counts_.crashed;
  }
}

std::unique_ptr<staged_file> faulty_store::stage(const std::string& key, std::uint64_t max_bytes) {
  return inner_.stage(key, max_bytes);
}

awaitable<put_result> faulty_store::put(const std::string& key, staged_file& file,
                                        const std::string& content_type,
                                        const object_protection& protection) {
  const decision chosen = decide(key);
  if (chosen.delay.count() > 0) {
    co_await pause(chosen.delay);
  }
  put_result result;
  if (is_injected_failure(chosen.what)) {
    result = injected_failure(chosen.what, key);
  } else if (chosen.what == fault::crash) {
    result = crash_mid_write(key, file);
  } else {
    put_result forwarded = co_await inner_.put(key, file, content_type, protection);
    result = std::move(forwarded);
  }
  count_outcome(result, chosen.what);
  co_return result;
}

awaitable<put_result> faulty_store::put_bytes(const std::string& key, std::string bytes,
                                              const std::string& content_type,
                                              const object_protection& protection) {
  const decision chosen = decide(key);
  if (chosen.delay.count() > 0) {
    co_await pause(chosen.delay);
  }
  put_result result;
  if (is_injected_failure(chosen.what)) {
    result = injected_failure(chosen.what, key);
  } else if (chosen.what == fault::crash) {
    // The bytes were on their way to a staging file of their own, as the inner store does.
    try {
      std::unique_ptr<staged_file> staged = inner_.stage(key, bytes.size());
      staged->write(bytes);
      result = crash_mid_write(key, *staged);
    } catch (const std::exception& e) {
      result = failed(false, "put " + quoted(key) +
                                 ": simulated crash, but cannot stage: " + std::string(e.what()));
    }
  } else {
    put_result forwarded =
        co_await inner_.put_bytes(key, std::move(bytes), content_type, protection);
    result = std::move(forwarded);
  }
  count_outcome(result, chosen.what);
  co_return result;
}

awaitable<read_result> faulty_store::copy_to(const std::string& key,
                                             const std::filesystem::path& destination) {
  co_return co_await inner_.copy_to(key, destination);
}

awaitable<remove_result> faulty_store::remove(const std::string& key) {
  co_return co_await inner_.remove(key);
}

awaitable<read_result> faulty_store::read_digest(const std::string& key) {
  read_result result = co_await inner_.read_digest(key);
  co_return result;
}

awaitable<std::optional<store_failure>> faulty_store::protect(const std::string& key,
                                                              const object_protection& protection) {
  {
    const std::lock_guard lock(mutex_);
    protect_calls_.push_back({key, protection});
  }
  co_return co_await inner_.protect(key, protection);
}

awaitable<list_result> faulty_store::list(const std::string& prefix) {
  co_return co_await inner_.list(prefix);
}

awaitable<std::optional<store_failure>> faulty_store::check_protection() {
  co_return co_await inner_.check_protection();
}

awaitable<std::size_t> faulty_store::remove_stale_staging(std::chrono::seconds older_than) {
  const std::size_t removed = co_await inner_.remove_stale_staging(older_than);
  co_return removed;
}

std::string faulty_store::describe() const { return "faulty " + inner_.describe(); }

}  // namespace archiver::storage
