/* control-t.h: what went wrong with an operation asked of the control plane
 * (admin API, hook output): a code returned alongside the message, so that
 * callers decide on the code (the admin API maps each to one HTTP status,
 * admin.c) and never on the message's text. */
#ifndef SURGEGATE_CONTROL_T_H
#define SURGEGATE_CONTROL_T_H

enum sg_ctl_err {
    SG_CTL_OK = 0,
    SG_CTL_BAD_REQUEST,  /* malformed, or a value out of range (400) */
    SG_CTL_UNAUTHORIZED, /* no token, or an unknown one (401) */
    SG_CTL_FORBIDDEN,    /* the token may not do this (403) */
    SG_CTL_NOT_FOUND,    /* no such endpoint, pool or backend (404) */
    SG_CTL_METHOD,       /* method not allowed on this endpoint (405) */
    SG_CTL_EXISTS,       /* what is to be added is already there (409) */
    SG_CTL_CONFLICT,     /* the state forbids it now: no free slot, being removed (409) */
    SG_CTL_TOO_LARGE,    /* request body over the limit (413) */
    SG_CTL_INTERNAL,     /* out of memory and the like (500) */
    SG_CTL_NERRS
};

#endif
