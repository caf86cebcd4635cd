/* SHA-256 (FIPS 180-4) [XL-SEM-1]. */
#ifndef XLOCK_SHA256_H
#define XLOCK_SHA256_H

#include <stddef.h>
#include <stdint.h>

void xlock__sha256(unsigned char digest[32], const void *data, size_t len);

#endif
