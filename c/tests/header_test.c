/* Compiles xlock.h alone, as strict C99 and as C++ (make check-header). */
#include "xlock.h"

int header_test_uses_the_api(void);
int header_test_uses_the_api(void)
{
    xlock_options opts;
    xlock_t *l = 0;
    xlock_sem_t *s = 0;
    xlock_psem_t *p = 0;
    char buf[XLOCK_FILE_NAME_SIZE];
    if (xlock_options_init(&opts) != XLOCK_OK)
        return 1;
    (void)xlock_lock_file_name(buf, sizeof buf, "x", 1);
    xlock_close(l);
    xlock_sem_close(s);
    xlock_psem_close(p);
    return xlock_version() == XLOCK_VERSION ? 0 : 1;
}
