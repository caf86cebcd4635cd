/* Versions and options: every constant also as a function, for FFI. */
#include "internal.h"

#include <string.h>

int xlock_version(void)
{
    return XLOCK_VERSION;
}
const char *xlock_version_string(void)
{
    return XLOCK_VERSION_STRING;
}
int xlock_abi_version(void)
{
    return XLOCK_ABI_VERSION;
}
const char *xlock_spec_version(void)
{
    return XLOCK_SPEC_VERSION;
}
size_t xlock_file_name_size(void)
{
    return XLOCK_FILE_NAME_SIZE;
}
size_t xlock_sem_name_size(void)
{
    return XLOCK_SEM_NAME_SIZE;
}
int xlock_name_max(void)
{
    return XLOCK_NAME_MAX;
}
int xlock_capacity_max(void)
{
    return XLOCK_CAPACITY_MAX;
}
size_t xlock_options_size(void)
{
    return sizeof(xlock_options);
}

int xlock_options_init(xlock_options *opts)
{
    if (opts == NULL)
        return xlock__fail(XLOCK_EINVAL, 0, "xlock_options_init: opts is NULL");
    memset(opts, 0, sizeof *opts);
    opts->version = XLOCK_OPTIONS_VERSION;
    return 0;
}

int xlock__check_options(const xlock_options *opts, int for_lock, const char *what)
{
    if (opts == NULL)
        return 0;
    if (opts->version != XLOCK_OPTIONS_VERSION)
        return xlock__fail(XLOCK_EINVAL, 0,
                           "%s: options version %u is not supported (expected %u); "
                           "initialise the options with xlock_options_init",
                           what, opts->version, (unsigned)XLOCK_OPTIONS_VERSION);
    if (!for_lock && (opts->shared || opts->reentrant))
        return xlock__fail(XLOCK_EINVAL, 0,
                           "%s: the options 'shared' and 'reentrant' apply to locks only", what);
    return 0;
}
