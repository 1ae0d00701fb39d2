#include "storage/blocking.hpp"

namespace archiver::storage {

blocking_pool::blocking_pool(std::size_t threads) : threads_(threads == 0 ? 1 : threads) {}

blocking_pool::~blocking_pool() { threads_.join(); }

}  // namespace archiver::storage
