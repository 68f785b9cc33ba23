#include "common/channel_session.h"

#include "common/strict_json.h"

namespace shadan {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

ChannelSession::ChannelSession(asio::io_context& io, asio::ssl::context& tls, ChannelLimits limits)
    : ws_(io, tls),
      limits_(std::move(limits)),
      deadline_(ws_.get_executor()),
      heartbeat_timer_(ws_.get_executor()) {}

ChannelSession::ChannelSession(asio::ip::tcp::socket socket, asio::ssl::context& tls,
                               ChannelLimits limits)
    : ws_(std::move(socket), tls),
      limits_(std::move(limits)),
      deadline_(ws_.get_executor()),
      heartbeat_timer_(ws_.get_executor()) {}

void ChannelSession::armDeadline(std::chrono::milliseconds delay, std::string what) {
  deadline_.expires_after(delay);
  deadline_.async_wait([self = shared_from_this(), what = std::move(what)](beast::error_code ec) {
    if (ec || self->closed_ || self->open_) return;
    self->fail(what);
  });
}

void ChannelSession::markOpen() {
  open_ = true;
  deadline_.cancel();
}

void ChannelSession::startReading() {
  ws_.text(true);
  last_received_ = SteadyClock::now();
  read();
}

void ChannelSession::write(std::string text) {
  if (closed_) return;
  if (queued_bytes_ + text.size() > limits_.max_queued_bytes) {
    return fail(limits_.peer + " is not reading: " + std::to_string(queued_bytes_) +
                " bytes waiting to be written, another " + std::to_string(text.size()) +
                " would pass the limit of " + std::to_string(limits_.max_queued_bytes));
  }
  queued_bytes_ += text.size();
  queue_.push_back(std::move(text));
  if (!writing_) writeNext();
}

Result<std::string> channelMessageText(const Json& message, size_t max_message_bytes) {
  std::string text;
  try {
    text = message.dump();
  } catch (const nlohmann::json::exception& e) {
    return makeError(ErrorCode::kInvalidArgument, std::string("message: ") + e.what());
  }
  SHADAN_RETURN_IF_ERROR(checkChannelMessageSize(text.size(), max_message_bytes));
  return text;
}

Status checkChannelMessageSize(size_t bytes, size_t max_message_bytes) {
  if (bytes <= max_message_bytes) return okStatus();
  return makeError(ErrorCode::kInvalidArgument, "message of " + std::to_string(bytes) +
                                                    " bytes exceeds the channel's " +
                                                    std::to_string(max_message_bytes));
}

Status ChannelSession::sendJson(const Json& message) {
  SHADAN_ASSIGN_OR_RETURN(std::string text, channelMessageText(message, limits_.max_message_bytes));
  write(std::move(text));
  return okStatus();
}

void ChannelSession::fail(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  auto self = shared_from_this();  // onClosed may drop the owner's reference
  deadline_.cancel();
  heartbeat_timer_.cancel();
  beast::error_code ignored;
  socket().close(ignored);
  queue_.clear();
  queued_bytes_ = 0;
  onClosed(reason, open_);
}

void ChannelSession::read() {
  ws_.async_read(read_buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
    if (self->closed_) return;
    if (ec == websocket::error::closed) return self->fail("closed by the " + self->limits_.peer);
    if (ec == websocket::error::message_too_big) {
      return self->reject("message larger than " + std::to_string(self->limits_.max_message_bytes) +
                          " bytes");
    }
    if (ec) return self->fail("read: " + ec.message());
    if (!self->ws_.got_text()) return self->reject("binary frame from the " + self->limits_.peer);
    std::string text = beast::buffers_to_string(self->read_buffer_.data());
    self->read_buffer_.consume(self->read_buffer_.size());
    self->last_received_ = SteadyClock::now();
    self->handle(text);
    if (!self->closed_) self->read();
  });
}

void ChannelSession::handle(const std::string& text) {
  auto parsed = parseStrictJson(text, limits_.peer + " message", limits_.max_message_bytes);
  if (!parsed.ok()) return reject("malformed message: " + parsed.error().message);
  const Json& message = *parsed;
  const auto type_member = message.is_object() ? message.find("type") : message.end();
  if (!message.is_object() || type_member == message.end() || !type_member->is_string()) {
    return reject("malformed message: not an object with a string \"type\"");
  }
  const std::string type = type_member->get<std::string>();
  if (open_ && (type == kPingType || type == kPongType)) {
    if (Status members = checkChannelMembers(message, {"type"}); !members.ok()) {
      return reject("malformed message: " + members.error().message);
    }
    if (type == kPingType) write(pongText());
    return;
  }
  onMessage(type, message);
}

void ChannelSession::startHeartbeat() { scheduleHeartbeat(); }

void ChannelSession::scheduleHeartbeat() {
  heartbeat_timer_.expires_after(limits_.heartbeat_interval);
  heartbeat_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->closed_) return;
    const auto silent = SteadyClock::now() - self->last_received_;
    if (silent >= self->limits_.heartbeat_interval * self->limits_.heartbeat_misses) {
      return self->fail(
          "heartbeat: nothing received for " +
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(silent).count()) +
          " ms");
    }
    self->write(pingText());
    self->scheduleHeartbeat();
  });
}

void ChannelSession::writeNext() {
  writing_ = true;
  ws_.async_write(asio::buffer(queue_.front()),
                  [self = shared_from_this()](beast::error_code ec, size_t) {
                    if (self->closed_) return;
                    if (ec) return self->fail("write: " + ec.message());
                    self->queued_bytes_ -= self->queue_.front().size();
                    self->queue_.pop_front();
                    if (self->queue_.empty()) {
                      self->writing_ = false;
                    } else {
                      self->writeNext();
                    }
                  });
}

}  // namespace shadan
