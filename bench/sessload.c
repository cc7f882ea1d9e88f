/*
 * sessload: the session-rate client of the benchmark, in C.
 *
 * Why C, and why GnuTLS: a full TLS 1.3 handshake costs the *client* more CPU
 * than the server (the client verifies a signature and does the same key
 * exchange), and a Python client adds its interpreter on top. With one client
 * CPU against one server CPU the Python clients of ftpsclient.py topped out at
 * 750-1,100 sessions/s (1.4-1.5 ms of client CPU per session), below what
 * pyftpdlib serves, so runs against it measured the client. This program
 * needs 0.6-0.9 ms. It uses GnuTLS because Debian 12's OpenSSL 3.0 spends
 * most of a client handshake in its provider and decoder lookups: the same
 * program on OpenSSL 3.0 cost 1.4 ms per session, no better than Python.
 *
 * One process runs one session at a time, in a loop, until a CLOCK_MONOTONIC
 * deadline (the clock Python's time.monotonic() reads):
 *
 *   connect, 220, AUTH TLS, 234, TLS 1.3 handshake (one key-exchange group),
 *   USER 331, PASS 230, PWD 257, QUIT 221, the server's close_notify
 *   answered with ours, then read until the server closes first (so TIME_WAIT
 *   stays on the server's side, as in ftpcontrol.Control.quit).
 *
 * TLS as the other clients of the bench: TLS 1.3 only, one key-exchange group
 * (P-256, GROUP), AES-256-GCM. No certificate verification (a chain check
 * would only add client CPU); TLS 1.3 still checks the CertificateVerify
 * signature. No resumption: every session is a new logon with a full
 * handshake. The password comes from the environment (BENCH_FTP_PASSWORD),
 * never the command line.
 *
 * Output on stdout, at the end: for every completed session, two native
 * doubles (begin, end) in CLOCK_MONOTONIC seconds. On stderr: one line per
 * distinct error, "count<TAB>message"; and the first session's key-exchange
 * group and TLS parameters as "group<TAB>name" and "tls<TAB>description".
 *
 * Build: cc -O2 -o sessload sessload.c -lgnutls   (Debian: gcc libgnutls28-dev)
 * Usage: sessload HOST PORT USER STOP_AT
 *        STOP_AT "once": exactly one session; the exit status says if it worked.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_MS 10000
#define MAX_ERRORS 16
/* What the Python clients of the bench negotiate (ftpcontrol.GROUP). */
#define PRIORITY                                                                                  \
    "NONE:+VERS-TLS1.3:+AES-256-GCM:+AEAD:+GROUP-SECP256R1:+SIGN-ALL:+CTYPE-X509:+COMP-NULL"

struct reader {
    int fd;
    gnutls_session_t tls; /* NULL before AUTH TLS */
    char buf[8192];
    size_t len;
};

static gnutls_certificate_credentials_t credentials;
static gnutls_priority_t priority;
static char error_text[MAX_ERRORS][160];
static long error_count[MAX_ERRORS];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void count_error(const char *message) {
    for (int i = 0; i < MAX_ERRORS; i++) {
        if (error_count[i] == 0) {
            snprintf(error_text[i], sizeof error_text[i], "%s", message);
            error_count[i] = 1;
            return;
        }
        if (strcmp(error_text[i], message) == 0) {
            error_count[i]++;
            return;
        }
    }
    error_count[MAX_ERRORS - 1]++; /* too many kinds: lump the rest */
}

/* The key-exchange group (if a session got that far) and the errors, on stderr. */
static void report(const char *group, const char *tls) {
    if (group[0] != '\0')
        fprintf(stderr, "group\t%s\ntls\t%s\n", group, tls);
    for (int i = 0; i < MAX_ERRORS; i++)
        if (error_count[i] > 0)
            fprintf(stderr, "%ld\t%s\n", error_count[i], error_text[i]);
}

static int wait_fd(int fd, short events) {
    struct pollfd p = {.fd = fd, .events = events};
    int ready = poll(&p, 1, IO_TIMEOUT_MS);
    return ready > 0 ? 0 : -1;
}

/* Read more bytes into r->buf; 0 on success, -1 on EOF, error or timeout. */
static int fill(struct reader *r) {
    if (r->len == sizeof r->buf)
        return -1;
    for (;;) {
        if (r->tls == NULL) {
            ssize_t got = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
            if (got > 0) {
                r->len += (size_t)got;
                return 0;
            }
            if (got < 0 && errno == EINTR)
                continue;
            return -1;
        }
        ssize_t got = gnutls_record_recv(r->tls, r->buf + r->len, sizeof r->buf - r->len);
        if (got > 0) {
            r->len += (size_t)got;
            return 0;
        }
        if (got == GNUTLS_E_INTERRUPTED || got == GNUTLS_E_AGAIN)
            continue;
        return -1;
    }
}

/* One complete reply; 0 if its code is `expected`. */
static int reply(struct reader *r, int expected) {
    size_t start = 0;
    for (;;) {
        char *end;
        while ((end = memmem(r->buf + start, r->len - start, "\r\n", 2)) != NULL) {
            size_t line_end = (size_t)(end - r->buf) + 2;
            const char *line = r->buf + start;
            int last = line_end - start >= 4 && line[0] >= '0' && line[0] <= '9' &&
                       line[1] >= '0' && line[1] <= '9' && line[2] >= '0' &&
                       line[2] <= '9' && line[3] == ' ';
            if (last) {
                int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
                memmove(r->buf, r->buf + line_end, r->len - line_end);
                r->len -= line_end;
                return code == expected ? 0 : -1;
            }
            start = line_end;
        }
        if (fill(r) != 0)
            return -1;
    }
}

static int send_line(struct reader *r, const char *line) {
    size_t len = strlen(line);
    if (r->tls != NULL)
        return gnutls_record_send(r->tls, line, len) == (ssize_t)len ? 0 : -1;
    while (len > 0) {
        ssize_t sent = send(r->fd, line, len, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0)
            return -1;
        line += sent;
        len -= (size_t)sent;
    }
    return 0;
}

static int command(struct reader *r, const char *line, int expected) {
    return send_line(r, line) == 0 ? reply(r, expected) : -1;
}

/* The TLS handshake on the connected socket after the 234; 0 on success. */
static int handshake(struct reader *r) {
    if (gnutls_init(&r->tls, GNUTLS_CLIENT) != GNUTLS_E_SUCCESS) {
        r->tls = NULL;
        return -1;
    }
    if (gnutls_priority_set(r->tls, priority) != GNUTLS_E_SUCCESS ||
        gnutls_credentials_set(r->tls, GNUTLS_CRD_CERTIFICATE, credentials) != GNUTLS_E_SUCCESS)
        return -1;
    gnutls_transport_set_int(r->tls, r->fd);
    int status;
    do
        status = gnutls_handshake(r->tls);
    while (status < 0 && !gnutls_error_is_fatal(status));
    return status == GNUTLS_E_SUCCESS ? 0 : -1;
}

static int session(const struct sockaddr_in *server, const char *user_line,
                   const char *pass_line, char *group, size_t group_size, char *tls,
                   size_t tls_size) {
    struct reader r = {.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    const char *failure = NULL;
    if (r.fd < 0) {
        count_error("socket() failed");
        return -1;
    }
    struct timeval timeout = {.tv_sec = IO_TIMEOUT_MS / 1000};
    setsockopt(r.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(r.fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    int one = 1;
    setsockopt(r.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(r.fd, (const struct sockaddr *)server, sizeof *server) != 0) {
        failure = "connect() failed";
        goto done;
    }
    if (reply(&r, 220) != 0) {
        failure = "no 220 greeting";
        goto done;
    }
    if (command(&r, "AUTH TLS\r\n", 234) != 0) {
        failure = "AUTH TLS not answered 234";
        goto done;
    }
    if (r.len != 0) {
        failure = "bytes after 234 before the handshake";
        goto done;
    }
    if (handshake(&r) != 0) {
        failure = "TLS handshake failed";
        goto done;
    }
    if (group[0] == '\0') {
        const char *name = gnutls_group_get_name(gnutls_group_get(r.tls));
        snprintf(group, group_size, "%s", name != NULL ? name : "?");
        char *description = gnutls_session_get_desc(r.tls);
        snprintf(tls, tls_size, "%s", description != NULL ? description : "?");
        gnutls_free(description);
    }
    if (command(&r, user_line, 331) != 0) {
        failure = "USER not answered 331";
        goto done;
    }
    if (command(&r, pass_line, 230) != 0) {
        failure = "PASS not answered 230";
        goto done;
    }
    if (command(&r, "PWD\r\n", 257) != 0) {
        failure = "PWD not answered 257";
        goto done;
    }
    if (command(&r, "QUIT\r\n", 221) != 0) {
        failure = "QUIT not answered 221";
        goto done;
    }
    /* The server's close_notify (or its close), then ours, then its FIN. */
    char sink[4096];
    while (gnutls_record_recv(r.tls, sink, sizeof sink) > 0)
        ;
    gnutls_bye(r.tls, GNUTLS_SHUT_WR);
    while (wait_fd(r.fd, POLLIN) == 0 && recv(r.fd, sink, sizeof sink, 0) > 0)
        ;
done:
    if (r.tls != NULL)
        gnutls_deinit(r.tls);
    close(r.fd);
    if (failure != NULL) {
        count_error(failure);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: sessload HOST PORT USER STOP_AT|once\n");
        return 2;
    }
    const char *password = getenv("BENCH_FTP_PASSWORD");
    if (password == NULL) {
        fprintf(stderr, "sessload: BENCH_FTP_PASSWORD is not set\n");
        return 2;
    }
    struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1) {
        fprintf(stderr, "sessload: %s is not an IPv4 address\n", argv[1]);
        return 2;
    }
    int once = strcmp(argv[4], "once") == 0;
    double stop_at = once ? 0.0 : strtod(argv[4], NULL);
    char user_line[512], pass_line[512];
    snprintf(user_line, sizeof user_line, "USER %s\r\n", argv[3]);
    snprintf(pass_line, sizeof pass_line, "PASS %s\r\n", password);
    if (gnutls_global_init() != GNUTLS_E_SUCCESS ||
        gnutls_certificate_allocate_credentials(&credentials) != GNUTLS_E_SUCCESS ||
        gnutls_priority_init(&priority, PRIORITY, NULL) != GNUTLS_E_SUCCESS) {
        fprintf(stderr, "sessload: cannot set up GnuTLS with %s\n", PRIORITY);
        return 2;
    }

    char group[64] = "", tls[256] = "";
    if (once) {
        int status = session(&server, user_line, pass_line, group, sizeof group, tls, sizeof tls);
        report(group, tls);
        return status == 0 ? 0 : 1;
    }
    size_t capacity = 1 << 14, count = 0;
    double *times = malloc(capacity * 2 * sizeof *times);
    while (times != NULL) {
        double began = now();
        if (began >= stop_at)
            break;
        if (session(&server, user_line, pass_line, group, sizeof group, tls, sizeof tls) != 0) {
            struct timespec pause = {.tv_nsec = 10 * 1000 * 1000}; /* do not spin on refusals */
            nanosleep(&pause, NULL);
            continue;
        }
        if (count == capacity) {
            capacity *= 2;
            double *grown = realloc(times, capacity * 2 * sizeof *times);
            if (grown == NULL)
                break;
            times = grown;
        }
        times[2 * count] = began;
        times[2 * count + 1] = now();
        count++;
    }
    if (times != NULL && count > 0)
        fwrite(times, sizeof *times, 2 * count, stdout);
    report(group, tls);
    return times == NULL ? 1 : 0;
}
