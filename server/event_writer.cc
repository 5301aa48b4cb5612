#include "server/event_writer.h"

#include "absl/strings/str_cat.h"

namespace hmrec {

EventWriter::EventWriter(int capacity) : capacity_(capacity), thread_([this] { Run(); }) {}

EventWriter::~EventWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

absl::Status EventWriter::Submit(std::function<void()> write) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (static_cast<int>(queue_.size()) >= capacity_) {
      return absl::ResourceExhaustedError(absl::StrCat("RecordPurchases: ", queue_.size(),
                                                       " calls wait for the event store already (events.max_pending_"
                                                       "writes); retry with backoff"));
    }
    queue_.push_back(std::move(write));
  }
  cv_.notify_one();
  return absl::OkStatus();
}

int64_t EventWriter::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(queue_.size());
}

void EventWriter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    std::function<void()> write = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    write();
    lock.lock();
  }
}

}  // namespace hmrec
