#include "server/batch_queue.h"

#include <algorithm>
#include <exception>

#include "absl/strings/str_cat.h"

namespace hmrec {

BatchQueue::BatchQueue(BatchQueueOptions options, Processor processor, Hooks hooks)
    : options_(options), processor_(std::move(processor)), hooks_(std::move(hooks)) {}

BatchQueue::~BatchQueue() { Shutdown(); }

void BatchQueue::Start(int workers) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int w = 0; w < workers; ++w) workers_.emplace_back([this, w] { Work(w); });
}

absl::Status BatchQueue::Submit(std::vector<std::string> ids, std::shared_ptr<const RequestOptions> options,
                                Clock::time_point deadline, Done done) {
  const int64_t n = static_cast<int64_t>(ids.size());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::UnavailableError("server is shutting down");
    if (n > options_.max_queued_ids) {
      return absl::InvalidArgumentError(absl::StrCat(n, " customer ids in one request, more than the queue holds (",
                                                     options_.max_queued_ids, "): split it"));
    }
    if (queued_ids_ + n > options_.max_queued_ids) {
      return absl::ResourceExhaustedError(
          absl::StrCat("queue full: ", queued_ids_, " ids waiting, limit ", options_.max_queued_ids));
    }
    queue_.push_back({std::move(ids), std::move(options), deadline, Clock::now(), std::move(done)});
    queued_ids_ += n;
    if (hooks_.queued_ids) hooks_.queued_ids(queued_ids_);
  }
  cv_.notify_one();
  return absl::OkStatus();
}

int64_t BatchQueue::queued_ids() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_ids_;
}

void BatchQueue::Shutdown() {
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    workers.swap(workers_);
  }
  cv_.notify_all();
  for (std::thread& t : workers) t.join();
}

void BatchQueue::Work(int worker) {
  if (hooks_.worker_start) hooks_.worker_start(worker);
  std::vector<Request> batch;
  std::vector<absl::string_view> ids;
  std::vector<const RequestOptions*> options;
  BatchAnswer answer;
  while (true) {
    batch.clear();
    bool more = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Wait for a full batch, the oldest request's delay, or shutdown.
      while (true) {
        if (queue_.empty()) {
          if (stopping_) return;
          cv_.wait(lock);
          continue;
        }
        if (stopping_ || queued_ids_ >= options_.max_batch_ids) break;
        const Clock::time_point flush_at = queue_.front().enqueued + options_.max_delay;
        if (Clock::now() >= flush_at) break;
        cv_.wait_until(lock, flush_at);
      }
      int64_t taken = 0;
      while (!queue_.empty()) {
        const int64_t n = static_cast<int64_t>(queue_.front().ids.size());
        if (!batch.empty() && taken + n > options_.max_batch_ids) break;
        taken += n;
        queued_ids_ -= n;
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      more = !queue_.empty();
      if (hooks_.queued_ids && taken > 0) hooks_.queued_ids(queued_ids_);
    }
    if (more) cv_.notify_one();  // more work for another worker

    const Clock::time_point now = Clock::now();
    ids.clear();
    options.clear();
    std::vector<size_t> live;
    for (size_t r = 0; r < batch.size(); ++r) {
      if (now > batch[r].deadline) {
        batch[r].done(absl::DeadlineExceededError("deadline passed while queued"), {});
        continue;
      }
      live.push_back(r);
      for (const std::string& id : batch[r].ids) {
        ids.push_back(id);
        options.push_back(batch[r].options.get());
      }
    }
    if (hooks_.batch && !batch.empty()) {
      hooks_.batch(ids.size(), std::chrono::duration_cast<std::chrono::microseconds>(now - batch.front().enqueued));
    }
    if (live.empty()) continue;
    answer.bundle_version.clear();
    answer.results.clear();
    answer.deadline = Clock::time_point::max();
    for (size_t r : live) answer.deadline = std::min(answer.deadline, batch[r].deadline);
    absl::Status s;
    try {
      s = processor_(worker, ids, options, &answer);
    } catch (const std::exception& e) {
      // One bad batch must not end the process: its calls fail, the worker
      // goes on with the next batch.
      s = absl::InternalError(absl::StrCat("batch failed: ", e.what()));
    } catch (...) {
      s = absl::InternalError("batch failed: unknown exception");
    }
    std::vector<Recommendation>& results = answer.results;
    if (s.ok() && results.size() != ids.size()) {
      s = absl::InternalError(absl::StrCat("batch of ", ids.size(), " ids produced ", results.size(), " results"));
    }
    size_t offset = 0;
    for (size_t r : live) {
      Request& req = batch[r];
      BatchAnswer mine;
      if (s.ok()) {
        mine.bundle_version = answer.bundle_version;
        mine.results.reserve(req.ids.size());
        for (size_t i = 0; i < req.ids.size(); ++i) mine.results.push_back(std::move(results[offset + i]));
      }
      offset += req.ids.size();
      req.done(s, std::move(mine));
    }
  }
}

}  // namespace hmrec
