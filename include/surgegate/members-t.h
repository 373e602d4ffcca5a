/* members-t.h: a set of backend members found at run time (discover.c):
 * what a DNS answer, a member file or a discovery command says the pool
 * should hold. Built and compared by members.c (pure). */
#ifndef SURGEGATE_MEMBERS_T_H
#define SURGEGATE_MEMBERS_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* "[ffff:...:ffff]:65535" fits; same bound as a backend's name. */
#define SG_MEMBER_ADDR_MAX 64

/* How discover.c stands with one member of a source (not members.c's
 * business: it only copies the field). */
enum sg_member_own {
    SG_MEMBER_PENDING = 0, /* not added yet (no free slot, refused...): tried again */
    SG_MEMBER_OWNED,       /* added by this source: removed when it disappears */
    SG_MEMBER_FOREIGN,     /* the pool already had it (config, admin, another source) */
};

struct sg_member {
    char addr[SG_MEMBER_ADDR_MAX]; /* numeric, canonical: "10.0.0.5:8080", "[::1]:8080" */
    struct sockaddr_storage ss;
    socklen_t sslen;
    uint32_t weight;  /* 0..256 */
    uint32_t maxconn; /* 0..1000000; meaningful when has_maxconn */
    bool has_weight, has_maxconn;
    enum sg_member_own own;
};

struct sg_members {
    struct sg_member *v;
    size_t n, cap;
};

/* One record of an SRV answer. */
struct sg_srv {
    char *target; /* host name, owned */
    uint16_t port;
    uint16_t weight;
    uint16_t priority;
};

#endif
