// A base for test backends that change only how reads are answered: an
// InProcessBackend (epoch "e1") does the rest. Reads go to the subclass.
#pragma once

#include <livecast/backend.hpp>
#include <livecast/in_process_backend.hpp>

#include <memory>
#include <string>
#include <utility>

namespace livecast_test {

class InProcessWrapper : public livecast::Backend {
 public:
  InProcessWrapper() {
    livecast::InProcessBackendSettings s;
    s.epoch = "e1";
    inner_ = std::make_unique<livecast::InProcessBackend>(s);
  }
  void start(livecast::BackendListener& l) override { inner_->start(l); }
  void stop() override {}
  void publish(const std::string& topic, std::shared_ptr<const std::string> data, PublishHandler done) override {
    inner_->publish(topic, std::move(data), std::move(done));
  }
  void watch(const std::string&) override {}
  void unwatch(const std::string&) override {}

 protected:
  std::unique_ptr<livecast::InProcessBackend> inner_;
};

}  // namespace livecast_test
