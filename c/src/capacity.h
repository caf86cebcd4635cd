/* The capacity file of a counting semaphore [XL-CSEM-3, XL-CSEM-4]. */
#ifndef XLOCK_CAPACITY_H
#define XLOCK_CAPACITY_H

#include "internal.h"

/* Reads the capacity file of enc (must say `capacity`), creating it atomically if missing. */
int xlock__capacity_open(const xlock__ns *ns, const char *enc, long capacity, const char *what);
/* Reads an existing capacity file: 0 if it is well-formed and says *capacity (any capacity if
 * *capacity is 0; *capacity is then set to it), XL_ABSENT if there is none, else an error. */
int xlock__capacity_read(const xlock__ns *ns, const char *enc, long *capacity, const char *what);

#endif
