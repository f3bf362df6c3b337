// fixedrate: open-loop HTTP/1.1 load at a fixed request rate, for latency without coordinated
// omission (the idea of wrk2, which Debian does not package).
//
// Request g (g = 0, 1, 2, ...) is *scheduled* at t0 + g / rate and belongs to connection
// g % conns; each connection sends its requests in order, one at a time (keep-alive, no
// pipelining). A request whose connection is still busy when its time comes waits in that
// connection's queue. Its latency is measured from its scheduled time, not from when it could
// be sent, so a stall of the server shows up in every request it delayed: this is what a closed
// loop like wrk hides (coordinated omission).
//
//   fixedrate -c CONNS -r RATE -d SECONDS [-w WARMUP_S] [-t DRAIN_S] HOST PORT PATH
//
// Requests scheduled during the warm-up are sent but not recorded. After the measured window,
// requests already scheduled are still completed for up to DRAIN_S seconds; those that are not
// are counted as timeouts and recorded with the latency they had reached (a lower bound).
// Prints one line of JSON on stdout; latencies are in microseconds.
//
// Connections behave as an HTTP/1.1 client's should (RFC 9112 §9.3, §9.6): after a response
// with `Connection: close` the next request goes on a new connection, and a GET sent on a
// reused connection that the server closed before answering any of it (the keep-alive race a
// draining or restarting server opens) is sent again on a new connection, as curl and browsers
// do. Those resends are counted as `retried_on_close`, not as errors; a connection that fails
// any other way is an error (`errors_connect`).
//
// Build: cc -O2 -o fixedrate fixedrate.c (perf/suite/tools.py does it).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { CONNECTING, IDLE, BUSY };

struct conn {
    int fd;
    enum state st;
    uint64_t next;       // index (per connection) of the next request to send
    uint64_t due;        // requests scheduled so far on this connection
    int64_t sched_ns;    // scheduled time of the request in flight
    char head[8192];     // response head being parsed
    size_t head_len;
    int in_body;
    int64_t body_left;
    int status;
    int close_after;     // the response in flight said `Connection: close`
    uint64_t served;     // responses completed on this connection
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct conn *conns;
static int nconns;
static double period_ns;
static int64_t t0, warm_end, end_ns;
static struct sockaddr_in addr;
static int ep;
static char req[1024];
static size_t req_len;

static int64_t *lat;
static size_t nlat, caplat;
static uint64_t errors_conn, errors_status, errors_parse, reconnects, retried_on_close;
static uint64_t completed_all; // warm-up included

static void die(const char *what) {
    fprintf(stderr, "fixedrate: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void record(int64_t sched, int64_t done) {
    completed_all++;
    if (sched < warm_end || sched >= end_ns) return;
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 65536;
        lat = realloc(lat, caplat * sizeof *lat);
        if (!lat) die("realloc");
    }
    lat[nlat++] = done - sched;
}

// Scheduled time of request k of connection c.
static int64_t sched_of(int c, uint64_t k) {
    return t0 + (int64_t)(((double)k * nconns + c) * period_ns);
}

static void open_conn(int c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
        die("connect");
    conns[c].fd = fd;
    conns[c].st = CONNECTING;
    conns[c].head_len = 0;
    conns[c].in_body = 0;
    conns[c].close_after = 0;
    conns[c].served = 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
}

static void close_conn(int c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, conns[c].fd, NULL);
    close(conns[c].fd);
}

// The connection failed: the request in flight (if any) is an error; reconnect.
static void fail_conn(int c) {
    if (conns[c].st == BUSY) {
        errors_conn++;
        conns[c].next++;
    }
    close_conn(c);
    reconnects++;
    open_conn(c);
}

// The server closed a reused connection before sending any of the response to the request in
// flight: send that request again on a new connection (it stays next in the queue).
static void retry_conn(int c) {
    retried_on_close++;
    conns[c].st = IDLE; // so fail_conn does not count it as an error
    fail_conn(c);
}

// Whether the request in flight on c can be resent: nothing of its response has arrived, and
// the connection had served an earlier one (a fresh connection that closes is an error).
static int resendable(const struct conn *k) {
    return k->st == BUSY && !k->in_body && k->head_len == 0 && k->served > 0;
}

static void send_next(int c) {
    struct conn *k = &conns[c];
    if (k->st != IDLE || k->next >= k->due) return;
    k->sched_ns = sched_of(c, k->next);
    ssize_t n = send(k->fd, req, req_len, MSG_NOSIGNAL);
    k->st = BUSY;
    k->head_len = 0;
    k->in_body = 0;
    if (n != (ssize_t)req_len) {
        if (resendable(k)) retry_conn(c);
        else fail_conn(c); // counts the request
    }
}

static void finish_request(int c) {
    struct conn *k = &conns[c];
    if (k->status < 200 || k->status > 399) errors_status++;
    record(k->sched_ns, now_ns());
    k->next++;
    k->served++;
    k->st = IDLE;
    if (k->close_after) { // the server closes this one: the next request goes on a new one
        close_conn(c);
        reconnects++;
        open_conn(c);
        return;
    }
    send_next(c);
}

// Whether [p, end) contains word, ignoring case (a Connection header's token list).
static int has_token(const char *p, const char *end, const char *word) {
    size_t w = strlen(word);
    for (; p + w <= end; p++)
        if (strncasecmp(p, word, w) == 0) return 1;
    return 0;
}

// Parses the head in k->head; returns 1 when complete, 0 when more is needed, -1 on error.
static int parse_head(struct conn *k, size_t *head_end) {
    char *end = memmem(k->head, k->head_len, "\r\n\r\n", 4);
    if (!end) return k->head_len == sizeof k->head ? -1 : 0;
    *head_end = (size_t)(end - k->head) + 4;
    if (k->head_len < 12 || memcmp(k->head, "HTTP/1.", 7) != 0) return -1;
    k->status = atoi(k->head + 9);
    k->body_left = -1;
    k->close_after = 0;
    char *p = k->head;
    char *stop = k->head + *head_end;
    while (p < stop) {
        char *eol = memmem(p, (size_t)(stop - p), "\r\n", 2);
        if (!eol) break;
        if (eol - p > 15 && strncasecmp(p, "content-length:", 15) == 0)
            k->body_left = strtoll(p + 15, NULL, 10);
        if (eol - p > 18 && strncasecmp(p, "transfer-encoding:", 18) == 0) return -1;
        if (eol - p > 11 && strncasecmp(p, "connection:", 11) == 0 &&
            has_token(p + 11, eol, "close"))
            k->close_after = 1;
        p = eol + 2;
    }
    if (k->body_left < 0) k->body_left = 0; // e.g. 204/304; we never ask for anything else
    return 1;
}

static char scratch[1 << 18];

static void on_readable(int c) {
    struct conn *k = &conns[c];
    for (;;) {
        ssize_t n;
        if (k->st == BUSY && !k->in_body) {
            n = recv(k->fd, k->head + k->head_len, sizeof k->head - k->head_len, 0);
        } else {
            n = recv(k->fd, scratch, sizeof scratch, 0);
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0 && resendable(k)) {
            retry_conn(c);
            return;
        }
        if (n <= 0 || k->st != BUSY) { // closed, error, or bytes nobody asked for
            fail_conn(c);
            return;
        }
        if (!k->in_body) {
            k->head_len += (size_t)n;
            size_t head_end;
            int r = parse_head(k, &head_end);
            if (r < 0) {
                errors_parse++;
                k->next++;
                k->st = IDLE; // counted here, not again as a connection error
                fail_conn(c);
                return;
            }
            if (r == 0) continue;
            k->in_body = 1;
            k->body_left -= (int64_t)(k->head_len - head_end);
        } else {
            k->body_left -= n;
        }
        if (k->body_left == 0) {
            finish_request(c);
            if (k->st != BUSY) continue; // drain whatever else is readable (should be nothing)
        } else if (k->body_left < 0) {
            errors_parse++;
            k->next++;
            k->st = IDLE;
            fail_conn(c);
            return;
        }
    }
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct(double p) {
    if (nlat == 0) return 0;
    size_t i = (size_t)(p / 100.0 * (double)nlat);
    if (i >= nlat) i = nlat - 1;
    return (double)lat[i] / 1000.0;
}

int main(int argc, char **argv) {
    int conns_arg = 1;
    double rate = 1000, dur = 5, warm = 1, drain = 5;
    int opt;
    while ((opt = getopt(argc, argv, "c:r:d:w:t:")) != -1) {
        switch (opt) {
        case 'c': conns_arg = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'd': dur = atof(optarg); break;
        case 'w': warm = atof(optarg); break;
        case 't': drain = atof(optarg); break;
        default: goto usage;
        }
    }
    if (argc - optind != 3 || conns_arg < 1 || rate <= 0 || dur <= 0) {
    usage:
        fprintf(stderr, "usage: fixedrate -c CONNS -r RATE -d SECONDS [-w WARMUP_S] [-t DRAIN_S] HOST PORT PATH\n");
        return 2;
    }
    const char *host = argv[optind], *path = argv[optind + 2];
    int port = atoi(argv[optind + 1]);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "fixedrate: HOST must be an IPv4 address\n");
        return 2;
    }
    req_len = (size_t)snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", path, host, port);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); // wake up on time, not 50 us late

    nconns = conns_arg;
    period_ns = 1e9 / rate;
    conns = calloc((size_t)nconns, sizeof *conns);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || ep < 0) die("setup");
    for (int c = 0; c < nconns; c++) open_conn(c);

    struct epoll_event evs[256];
    // Wait for every connection before the clock starts.
    int connected = 0;
    int64_t deadline = now_ns() + 5000000000LL;
    while (connected < nconns) {
        if (now_ns() > deadline) {
            fprintf(stderr, "fixedrate: could not connect %d connections\n", nconns - connected);
            return 1;
        }
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            int c = (int)evs[i].data.u32;
            if (conns[c].st != CONNECTING) continue;
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(conns[c].fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) {
                errno = err;
                die("connect");
            }
            struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)c};
            epoll_ctl(ep, EPOLL_CTL_MOD, conns[c].fd, &ev);
            conns[c].st = IDLE;
            connected++;
        }
    }

    t0 = now_ns() + 1000000; // 1 ms from now
    warm_end = t0 + (int64_t)(warm * 1e9);
    end_ns = warm_end + (int64_t)(dur * 1e9);
    int64_t drain_end = end_ns + (int64_t)(drain * 1e9);
    uint64_t g = 0; // next request to schedule, all connections together
    for (;;) {
        int64_t now = now_ns();
        // Schedule every request whose time has come.
        for (;;) {
            int64_t s = t0 + (int64_t)((double)g * period_ns);
            if (s > now || s >= end_ns) break;
            int c = (int)(g % (uint64_t)nconns);
            conns[c].due++;
            send_next(c);
            g++;
        }
        int64_t next_s = t0 + (int64_t)((double)g * period_ns);
        int64_t wake;
        if (next_s < end_ns) {
            wake = next_s;
        } else {
            int pending = 0;
            for (int c = 0; c < nconns && !pending; c++)
                pending = conns[c].st != IDLE || conns[c].next < conns[c].due;
            if (!pending || now >= drain_end) break;
            wake = drain_end;
        }
        int64_t wait = wake - now;
        if (wait < 0) wait = 0;
        struct timespec ts = {.tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL};
        int n = epoll_pwait2(ep, evs, 256, &ts, NULL);
        if (n < 0 && errno != EINTR) die("epoll_pwait2");
        for (int i = 0; i < n; i++) {
            int c = (int)evs[i].data.u32;
            if (conns[c].st == CONNECTING) { // a reconnect completed
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(conns[c].fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    errors_conn++;
                    close_conn(c);
                    open_conn(c);
                    continue;
                }
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)c};
                epoll_ctl(ep, EPOLL_CTL_MOD, conns[c].fd, &ev);
                conns[c].st = IDLE;
                send_next(c);
                continue;
            }
            on_readable(c);
        }
    }
    // Whatever is left did not finish within the drain time.
    int64_t stop = now_ns();
    uint64_t timeouts = 0;
    for (int c = 0; c < nconns; c++) {
        for (uint64_t k = conns[c].next; k < conns[c].due; k++) {
            int64_t s = sched_of(c, k);
            if (s >= warm_end && s < end_ns) {
                timeouts++;
                record(s, stop);
                completed_all--;
            }
        }
        close(conns[c].fd);
    }
    qsort(lat, nlat, sizeof *lat, cmp64);
    double sum = 0;
    for (size_t i = 0; i < nlat; i++) sum += (double)lat[i];
    uint64_t completed = nlat - timeouts;
    printf("{\"conns\":%d,\"rate_target\":%.1f,\"duration_s\":%.3f,\"requests\":%llu,"
           "\"requests_total\":%llu,"
           "\"rate_achieved\":%.1f,\"errors_connect\":%llu,\"errors_status\":%llu,"
           "\"errors_parse\":%llu,\"timeouts\":%llu,\"reconnects\":%llu,"
           "\"retried_on_close\":%llu,"
           "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
           "\"mean_us\":%.1f}\n",
           nconns, rate, dur, (unsigned long long)completed, (unsigned long long)completed_all,
           (double)completed / dur,
           (unsigned long long)errors_conn, (unsigned long long)errors_status,
           (unsigned long long)errors_parse, (unsigned long long)timeouts,
           (unsigned long long)reconnects, (unsigned long long)retried_on_close, pct(50), pct(90), pct(99), pct(99.9),
           nlat ? (double)lat[nlat - 1] / 1000.0 : 0.0, nlat ? sum / (double)nlat / 1000.0 : 0.0);
    return 0;
}
