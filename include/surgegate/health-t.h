/* health-t.h: types of the active health checker (health.c).
 *
 * struct sg_health is opaque: one per process, owned by the main thread,
 * made by sg_health_start() and freed by sg_health_stop(). */
#ifndef SURGEGATE_HEALTH_T_H
#define SURGEGATE_HEALTH_T_H

struct sg_health;

#endif
