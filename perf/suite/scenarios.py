"""What is measured: each scenario is one protocol, one connection count, one body size and one
load generator. Full mode runs them all for real numbers; quick mode runs the same list with
short durations, one repeat and fewer idle connections, so CI proves every path still works.
"""

from dataclasses import dataclass

BODIES = {"128B": 128, "4KiB": 4096, "64KiB": 65536, "256KiB": 262144}


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    port: str          # the target's port: "h1" (plain HTTP/1.1), "h2c" or "tls"
    tool: str          # "wrk", "fixedrate", "h2load"
    conns: int
    body: str          # a key of BODIES
    streams: int = 1   # h2load: concurrent streams per connection
    rate: int = 0      # fixedrate: requests per second (all connections together)
    scheme: str = "http"

    @property
    def path(self):
        return "/" + self.body

    def url(self, port_number):
        return f"{self.scheme}://127.0.0.1:{port_number}{self.path}"


def _h1(conns, body):
    return Scenario(f"h1-c{conns}-{body}", f"HTTP/1.1, {conns} conn{'s' * (conns > 1)}, {body}",
                    "h1", "wrk", conns, body)


def full_list(rate_c50, rate_c1):
    return [
        # Connection count, small body.
        _h1(1, "128B"),
        _h1(50, "128B"),
        _h1(500, "128B"),
        # Body size, 50 connections.
        _h1(50, "4KiB"),
        _h1(50, "64KiB"),
        _h1(50, "256KiB"),
        # Fixed request rate: latency without coordinated omission.
        Scenario(f"h1-c1-128B-r{rate_c1}", f"HTTP/1.1, 1 conn, 128B, fixed {rate_c1} req/s",
                 "h1", "fixedrate", 1, "128B", rate=rate_c1),
        Scenario(f"h1-c50-128B-r{rate_c50}", f"HTTP/1.1, 50 conns, 128B, fixed {rate_c50} req/s",
                 "h1", "fixedrate", 50, "128B", rate=rate_c50),
        # h2 and TLS (proxies that serve them).
        Scenario("h2c-c50x10-128B", "h2c, 50 conns x 10 streams, 128B", "h2c", "h2load", 50,
                 "128B", streams=10),
        Scenario("tls-h1-c50-128B", "HTTPS HTTP/1.1, 50 conns, 128B", "tls", "wrk", 50, "128B",
                 scheme="https"),
        Scenario("tls-h2-c50x10-128B", "HTTPS h2, 50 conns x 10 streams, 128B", "tls", "h2load",
                 50, "128B", streams=10, scheme="https"),
    ]


@dataclass
class Mode:
    name: str
    duration: float       # seconds measured per run
    warmup: float         # seconds of unmeasured load before each run
    repeats: int
    idle_conns: int       # idle keep-alive connections opened for the memory measurement
    rate_c50: int
    rate_c1: int


FULL = Mode("full", duration=6, warmup=1, repeats=3, idle_conns=10000, rate_c50=10000,
            rate_c1=2000)
QUICK = Mode("quick", duration=1, warmup=0.2, repeats=1, idle_conns=1000, rate_c50=5000,
             rate_c1=1000)
