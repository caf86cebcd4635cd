/* The capacity file of a counting semaphore [XL-CSEM-3, XL-CSEM-4]. */
#ifndef XLOCK_CAPACITY_H
#define XLOCK_CAPACITY_H

#include "internal.h"

/* Reads the capacity file fname (must say `capacity`), creating it atomically if missing. */
int xlock__capacity_open(const xlock__ns *ns, const char *enc, const char *fname, const char *path,
                     long capacity, const char *what);
/* Reads an existing capacity file: 0 if it says `capacity`, 1 if there is none, else an error. */
int xlock__capacity_check(const xlock__ns *ns, const char *fname, const char *path, long capacity,
                      const char *what);

#endif
