/*
 * The per-user limits of a sandbox's user namespace (userns_limits.c).
 */
#ifndef SANDBOXD_USERNS_LIMITS_H
#define SANDBOXD_USERNS_LIMITS_H

#include <stddef.h>

/* The environment variable that carries a reusable sandbox's limits to
 * its entry, as NAME=VALUE,NAME=VALUE (entry.UsernsLimitsEnv). */
#define USERNS_LIMITS_ENV "SANDBOXD_USERNS_LIMITS"

/* userns_limits_from_env writes the limits of USERNS_LIMITS_ENV into the
 * calling process's user namespace, then drops CAP_SYS_RESOURCE from
 * every set and the variable from the environment. On failure it returns
 * -1 with a message in err. */
int userns_limits_from_env(char *err, size_t errlen);

#endif
