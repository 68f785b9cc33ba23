#include "common/metrics.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cmath>
#include <ctime>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics_server.h"

namespace shadan {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

TEST(MetricsTest, RendersCountersGaugesAndHistogramsInRegistrationOrder) {
  MetricsRegistry registry;
  Counter& applied = registry.counter("shadan_orders_total", "Orders.", {{"result", "applied"}});
  Counter& rejected = registry.counter("shadan_orders_total", "Orders.", {{"result", "rejected"}});
  registry.gauge("shadan_connected", "Connected now.", [] { return 3.0; });
  Histogram& latency = registry.histogram("shadan_ack_seconds", "Ack latency.", {0.1, 1});
  applied.inc(2);
  rejected.inc();
  latency.observe(0.05);
  latency.observe(0.1);  // on the bound: counted in le="0.1"
  latency.observe(0.5);
  latency.observe(7);

  EXPECT_EQ(registry.render(),
            "# HELP shadan_orders_total Orders.\n"
            "# TYPE shadan_orders_total counter\n"
            "shadan_orders_total{result=\"applied\"} 2\n"
            "shadan_orders_total{result=\"rejected\"} 1\n"
            "# HELP shadan_connected Connected now.\n"
            "# TYPE shadan_connected gauge\n"
            "shadan_connected 3\n"
            "# HELP shadan_ack_seconds Ack latency.\n"
            "# TYPE shadan_ack_seconds histogram\n"
            "shadan_ack_seconds_bucket{le=\"0.1\"} 2\n"
            "shadan_ack_seconds_bucket{le=\"1\"} 3\n"
            "shadan_ack_seconds_bucket{le=\"+Inf\"} 4\n"
            "shadan_ack_seconds_sum 7.65\n"
            "shadan_ack_seconds_count 4\n");
}

TEST(MetricsTest, TheSameNameAndLabelsGiveTheSameCounter) {
  MetricsRegistry registry;
  Counter& first = registry.counter("a_total", "A.", {{"k", "v"}});
  Counter& again = registry.counter("a_total", "A.", {{"k", "v"}});
  Counter& other = registry.counter("a_total", "A.", {{"k", "w"}});
  EXPECT_EQ(&first, &again);
  EXPECT_NE(&first, &other);
}

TEST(MetricsTest, LabelValuesAndHelpAreEscaped) {
  MetricsRegistry registry;
  registry.gauges("g", "Help with \\ and\nnewline.", [] {
    return std::vector<GaugeSample>{{{{"segment", "a\"b\\c\nd"}}, 1}};
  });
  EXPECT_EQ(registry.render(),
            "# HELP g Help with \\\\ and\\nnewline.\n"
            "# TYPE g gauge\n"
            "g{segment=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsTest, CountersAndHistogramsKeptElsewhereAreReadAtEachScrape) {
  MetricsRegistry registry;
  uint64_t repairs = 0;
  Histogram kept({1});
  registry.counters("repairs_total", "Repairs.", [&repairs] {
    return std::vector<GaugeSample>{{{}, static_cast<double>(repairs)}};
  });
  registry.histogramOf("kept_seconds", "Kept.", kept);
  repairs = 5;
  kept.observe(2);
  const std::string text = registry.render();
  EXPECT_NE(text.find("# TYPE repairs_total counter\nrepairs_total 5\n"), std::string::npos);
  EXPECT_NE(text.find("kept_seconds_bucket{le=\"1\"} 0\nkept_seconds_bucket{le=\"+Inf\"} 1\n"),
            std::string::npos);
}

TEST(MetricsTest, ValuesAreWrittenAsTheFormatReadsThem) {
  EXPECT_EQ(formatMetricValue(0), "0");
  EXPECT_EQ(formatMetricValue(12345), "12345");
  EXPECT_EQ(formatMetricValue(-2), "-2");
  EXPECT_EQ(formatMetricValue(0.25), "0.25");
  EXPECT_EQ(formatMetricValue(1e20), "1e+20");
  EXPECT_EQ(formatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(formatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(formatMetricValue(std::nan("")), "NaN");
}

TEST(MetricsDeathTest, MisuseIsAProgrammingErrorThatAborts) {
  EXPECT_DEATH(
      {
        MetricsRegistry registry;
        registry.counter("bad name", "x");
      },
      "invalid metric name");
  EXPECT_DEATH(
      {
        MetricsRegistry registry;
        registry.counter("a_total", "x");
        registry.gauge("a_total", "x", [] { return 1.0; });
      },
      "another type");
  EXPECT_DEATH({ Histogram histogram({1, 1}); }, "strictly increasing");
  EXPECT_DEATH(
      {
        MetricsRegistry registry;
        registry.histogram("h", "x", {1}, {{"le", "1"}});
      },
      "invalid label name");
}

TEST(MetricsTest, ProcessMetricsReadThisProcess) {
  // Some CPU time first: the kernel counts it in ticks of 10 ms.
  volatile uint64_t spin = 0;
  while (std::clock() < CLOCKS_PER_SEC / 20) spin = spin + 1;
  MetricsRegistry registry;
  registerProcessMetrics(registry);
  const std::string text = registry.render();
  for (const char* name : {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
                           "process_virtual_memory_bytes ", "process_open_fds ", "process_max_fds ",
                           "process_start_time_seconds "}) {
    const size_t at = text.find(std::string("\n") + name);
    ASSERT_NE(at, std::string::npos) << name;
    const double value = std::stod(text.substr(at + 1 + std::string(name).size()));
    EXPECT_GT(value, 0) << name;  // a running process has memory, fds and a start time
  }
}

// One HTTP exchange with the server, as a scraper would make it.
std::string exchange(uint16_t port, const std::string& request) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  asio::write(socket, asio::buffer(request));
  std::string answer;
  boost::system::error_code ec;
  asio::read(socket, asio::dynamic_buffer(answer), ec);  // the server closes after answering
  return answer;
}

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.gauge("up_things", "Things.", [] { return 7.0; });
    auto server = MetricsServer::start(io_, ListenAddress{"127.0.0.1", 0},
                                       [this] { return registry_.render(); });
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(*server);
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    asio::post(io_, [this] { server_.reset(); });
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  MetricsRegistry registry_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::unique_ptr<MetricsServer> server_;
  std::thread thread_;
};

TEST_F(MetricsServerTest, ServesTheExpositionAtGetMetrics) {
  const std::string answer =
      exchange(server_->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            std::string::npos);
  EXPECT_NE(answer.find("\r\n\r\n# HELP up_things Things.\n# TYPE up_things gauge\nup_things 7\n"),
            std::string::npos)
      << answer;
}

TEST_F(MetricsServerTest, AnswersNothingElse) {
  EXPECT_EQ(exchange(server_->port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n").rfind("HTTP/1.1 404", 0),
            0u);
  const std::string post =
      exchange(server_->port(), "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.rfind("HTTP/1.1 405", 0), 0u) << post;
  EXPECT_NE(post.find("Allow: GET\r\n"), std::string::npos);
  const std::string huge = exchange(
      server_->port(), "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(8192, 'a') + "\r\n\r\n");
  EXPECT_EQ(huge.rfind("HTTP/1.1 400", 0), 0u) << huge.substr(0, 80);
  const std::string body = exchange(
      server_->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(body.rfind("HTTP/1.1 400", 0), 0u) << body.substr(0, 80);
}

TEST_F(MetricsServerTest, ConnectionsBeyondTheLimitAreClosedAtOnce) {
  asio::io_context io;
  std::vector<tcp::socket> idle;
  for (size_t i = 0; i < MetricsServer::kMaxConnections; ++i) {
    idle.emplace_back(io).connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
  }
  // The server has taken every one of them once a scrape on a fresh connection is refused:
  // the one over the limit is closed without an answer.
  std::string answer = "not yet";
  for (int attempt = 0; attempt < 100 && !answer.empty(); ++attempt) {
    answer = exchange(server_->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    if (!answer.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(answer, "");
  idle.clear();  // the idle ones go; scrapes are served again
  std::string served;
  for (int attempt = 0; attempt < 100 && served.empty(); ++attempt) {
    served = exchange(server_->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    if (served.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(served.rfind("HTTP/1.1 200", 0), 0u);
}

TEST(MetricsServerStartTest, AnAddressInUseIsAClearError) {
  asio::io_context io;
  MetricsRegistry registry;
  auto first = MetricsServer::start(io, ListenAddress{"127.0.0.1", 0}, [] { return ""; });
  ASSERT_TRUE(first.ok());
  auto second =
      MetricsServer::start(io, ListenAddress{"127.0.0.1", (*first)->port()}, [] { return ""; });
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("metrics listen 127.0.0.1:"), std::string::npos);
  EXPECT_NE(second.error().message.find("cannot listen"), std::string::npos);
}

}  // namespace
}  // namespace shadan
