/* members.h: member sets (members-t.h): parsing what discovery sources
 * answer (SRV wire answers, member files, a command's JSON) and comparing
 * socket addresses canonically. Everything here is pure: any thread. */
#ifndef SURGEGATE_MEMBERS_H
#define SURGEGATE_MEMBERS_H

#include "surgegate/members-t.h"

/* Whether a and b are one endpoint: same address and port, an IPv4 address
 * equal to its IPv4-mapped IPv6 form (::ffff:a.b.c.d), unix paths by text.
 * "localhost:80", once parsed, equals "127.0.0.1:80". */
bool sg_sockaddr_same(const struct sockaddr *a, const struct sockaddr *b);

/* "a.b.c.d:port" or "[v6]:port" of an AF_INET/AF_INET6 address (an
 * IPv4-mapped one written as IPv4); "?" for any other family. */
void sg_sockaddr_text(const struct sockaddr *sa, char *buf, size_t len);

/* Appends a member (sa: AF_INET or AF_INET6) unless one with the same
 * endpoint is there (then nothing changes). Returns SG_OK, or SG_ERR when
 * the set already holds max members or sa is of another family. */
int sg_members_add(struct sg_members *m, const struct sockaddr *sa, uint32_t weight, size_t max);

/* Index of the member with endpoint sa, or -1. */
long sg_members_find(const struct sg_members *m, const struct sockaddr *sa);

/* Empties m and frees its array. */
void sg_members_free(struct sg_members *m);

/* A discovery command's stdout or a JSON member file: either an array
 * [{"address":"10.0.0.5:8080","weight":1,"maxconn":100}, "10.0.0.6:8080"]
 * or an object {"members":[...]}; address required (numeric ip:port or
 * [v6]:port; localhost allowed), weight 0..256 and maxconn 0..1000000
 * optional. Empty output is an error (a command that means "no members"
 * prints []). At most max members (more: error). Duplicates are merged
 * (the first kept). All or nothing: SG_OK with *out filled (caller frees),
 * or SG_ERR with *out empty and a one-line reason in err. */
int sg_members_parse_json(const char *text, size_t len, size_t max, struct sg_members *out,
                          char *err, size_t errlen);

/* A member file: JSON as above when its first non-blank byte is '[' or
 * '{', else lines "ADDRESS [weight=N] [maxconn=N]" with '#' comments and
 * blank lines ignored; an empty file is an empty set. Errors name the line.
 * Same ownership and all-or-nothing rule. */
int sg_members_parse_file(const char *text, size_t len, size_t max, struct sg_members *out,
                          char *err, size_t errlen);

/* An SRV answer (DNS wire format, as c-ares hands it) into *out (n
 * records, caller frees with sg_srv_free). SG_OK (possibly none), or SG_ERR
 * with why (malformed). */
int sg_srv_parse(const unsigned char *abuf, int alen, struct sg_srv **out, size_t *n, char *err,
                 size_t errlen);
void sg_srv_free(struct sg_srv *v, size_t n);

/* A backend weight (1..256) for an SRV weight (0..65535): 0 is 1 (RFC 2782:
 * "a very small chance"), above 256 is 256. */
uint32_t sg_srv_weight(uint16_t w);

#endif
