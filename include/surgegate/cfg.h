/* cfg.h: loading and checking configuration (libconfig). */
#ifndef SURGEGATE_CFG_H
#define SURGEGATE_CFG_H

#include <stdio.h>

#include "surgegate/cfg-t.h"
#include "surgegate/cfg_diag.h"

/* Loads and validates a config file. Every problem found (syntax, unknown key,
 * wrong type, bad address or duration, duplicate names, unknown pool, range)
 * is appended to *diags as an error; capacity mistakes are appended as
 * warnings (see sg_cfg_lint). Returns the config when there are no errors,
 * else NULL. The caller owns both the config and the diags.
 * `display_name` is what FILE:LINE messages print (usually `path`). */
struct sg_cfg *sg_cfg_load_file(const char *path, struct sg_cfg_diags *diags);

/* Same from an in-memory string (the embedded demo config, unit tests). */
struct sg_cfg *sg_cfg_load_string(const char *text, const char *display_name,
                                  struct sg_cfg_diags *diags);

/* Capacity warnings (sum of backend maxconn below frontend maxconn,
 * RLIMIT_NOFILE below what the configured connections need, queue timeout
 * longer than client timeout, missing timeouts). Called by the loaders. */
void sg_cfg_lint(const struct sg_cfg *cfg, struct sg_cfg_diags *diags);

void sg_cfg_free(struct sg_cfg *cfg);

/* Checks one program a config runs: `path` must be absolute and name a
 * regular file this user may execute (stat(2) follows links). Otherwise
 * appends an error on `line` that starts with `what` ("scale_up_hook of pool
 * 'app'") and returns SG_ERR; else SG_OK. Touches the file system, nothing
 * else. Any thread. */
int sg_cfg_check_program(const char *path, const char *what, int line, struct sg_cfg_diags *d);

/* sg_cfg_check_program() on every program of a loaded cfg: each pool's
 * scale_up_hook and scale_down_hook, the alerts hook. Errors are appended
 * and every diag of d is put in line order again. SG_OK when all are
 * fine. `surgegate -t` and the start call it after a successful load. */
int sg_cfg_check_programs(const struct sg_cfg *cfg, struct sg_cfg_diags *d);

/* "250ms", "5s", "2m", "1h" -> milliseconds. SG_OK or SG_ERR. */
int sg_cfg_parse_duration(const char *s, uint32_t *out_ms);
/* "host:port", "[v6]:port", "unix:/path" -> sg_cfg_addr (numeric hosts only,
 * plus "localhost"). SG_OK or SG_ERR with a reason in errbuf. */
int sg_cfg_parse_addr(const char *s, struct sg_cfg_addr *out, char *errbuf, size_t errlen);
void sg_cfg_addr_free(struct sg_cfg_addr *a);

/* "a.b.c.d/n" (n 0..32), "v6/n" (0..128) or a bare address (/32, /128) ->
 * sg_cfg_cidr; bits past the prefix must be zero. SG_OK (out->text is a copy
 * of s: sg_cfg_cidr_free) or SG_ERR with a reason in errbuf. */
int sg_cfg_parse_cidr(const char *s, struct sg_cfg_cidr *out, char *errbuf, size_t errlen);
void sg_cfg_cidr_free(struct sg_cfg_cidr *c);
/* The first of the n ranges that holds the address sa (IPv4, IPv6, and an
 * IPv4-mapped IPv6 address against the IPv4 ranges too), or NULL (also for
 * any other family). Pure. */
const struct sg_cfg_cidr *sg_cfg_cidr_find(const struct sg_cfg_cidr *v, size_t n,
                                           const struct sockaddr *sa);

/* "1048576", "512k", "10m", "1g" (powers of 1024) -> bytes. SG_OK or SG_ERR. */
int sg_cfg_parse_size(const char *s, uint64_t *out);

/* HTTP status lists as in health.expect_status: "200-399", "200-399,404".
 * sg_cfg_check_status_ranges() validates the syntax (SG_OK, or SG_ERR with a
 * reason in errbuf); sg_cfg_status_match() says whether `status` is in the
 * list (false for a malformed list). Both are pure and thread-safe. */
int sg_cfg_check_status_ranges(const char *s, char *errbuf, size_t errlen);
bool sg_cfg_status_match(const char *ranges, int status);
/* Parses a status list into an array of inclusive ranges ("200,204,300-399"
 * gives {200,200},{204,204},{300,399}), in the order written. On SG_OK *out
 * is owned by the caller (free()) and holds *nout >= 1 ranges; on SG_ERR
 * *out is NULL, *nout 0 and the reason is in errbuf. Pure and thread-safe. */
int sg_cfg_parse_status_ranges(const char *s, struct sg_cfg_status_range **out, size_t *nout,
                               char *errbuf, size_t errlen);
/* Whether `status` is in one of the n ranges of r (as parsed above). */
bool sg_cfg_status_in(const struct sg_cfg_status_range *r, size_t n, int status);

#endif
