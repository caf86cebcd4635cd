/* xlock_ext_names.c — the pure name mapping [XL-SEM-6]: file names and semaphore names of a name,
 * without touching the file system. Called by lib/xlock/mapping.rb. */
#include "xlock_ext.h"

static VALUE result(int rc, const char *buf)
{
    if (rc < 0)
        xlock_rb_raise(rc);
    return rb_str_freeze(rb_utf8_str_new(buf, rc));
}

/* XLock.lock_file_name(name) -> "enc(name).lock" [XL-ENC-3] */
static VALUE names_lock_file(VALUE mod, VALUE name)
{
    char buf[XLOCK_FILE_NAME_SIZE];
    int rc;
    xlock_rb_check_name(name);
    rc = xlock_lock_file_name(buf, sizeof buf, RSTRING_PTR(name), (size_t)RSTRING_LEN(name));
    return result(rc, buf);
}

/* XLock.capacity_file_name(name) -> "enc(name).sem" [XL-ENC-3] */
static VALUE names_capacity_file(VALUE mod, VALUE name)
{
    char buf[XLOCK_FILE_NAME_SIZE];
    int rc;
    xlock_rb_check_name(name);
    rc = xlock_capacity_file_name(buf, sizeof buf, RSTRING_PTR(name), (size_t)RSTRING_LEN(name));
    return result(rc, buf);
}

/* XLock.slot_file_name(name, slot) -> "enc(name).slot.slot" [XL-ENC-3] */
static VALUE names_slot_file(VALUE mod, VALUE name, VALUE slot)
{
    char buf[XLOCK_FILE_NAME_SIZE];
    int rc;
    xlock_rb_check_name(name);
    if (!RB_FIXNUM_P(slot) || FIX2LONG(slot) < 0 || FIX2LONG(slot) >= XLOCK_CAPACITY_MAX)
        xlock_rb_raise_kind("INVALID_ARGUMENT", "slot must be an Integer from 0 to %d, not %+" PRIsVALUE,
                            XLOCK_CAPACITY_MAX - 1, slot);
    rc = xlock_slot_file_name(buf, sizeof buf, RSTRING_PTR(name), (size_t)RSTRING_LEN(name),
                              (unsigned int)FIX2LONG(slot));
    return result(rc, buf);
}

/* _semaphore_name(kind, dev, ino, name) -> "/xl1..." [XL-SEM-1]; lib/xlock/mapping.rb checks the
 * arguments. */
static VALUE names_semaphore(VALUE mod, VALUE kind, VALUE dev, VALUE ino, VALUE name)
{
    char buf[XLOCK_SEM_NAME_SIZE];
    int rc;
    xlock_rb_check_name(name);
    rc = xlock_semaphore_name(buf, sizeof buf, NUM2INT(kind), NUM2ULL(dev), NUM2ULL(ino),
                              RSTRING_PTR(name), (size_t)RSTRING_LEN(name));
    return result(rc, buf);
}

/* _bell_word(kind, name) -> 0..1023 [XL-SEM-7]; lib/xlock/mapping.rb checks the kind. */
static VALUE names_bell_word(VALUE mod, VALUE kind, VALUE name)
{
    int rc;
    xlock_rb_check_name(name);
    rc = xlock_bell_word(NUM2INT(kind), RSTRING_PTR(name), (size_t)RSTRING_LEN(name));
    RB_GC_GUARD(name);
    if (rc < 0)
        xlock_rb_raise(rc);
    return INT2FIX(rc);
}

/* _validate_name(name) -> nil; XLock::InvalidName naming the rule broken [XL-NAME-1..XL-NAME-3]. */
static VALUE names_validate(VALUE mod, VALUE name)
{
    int rc;
    xlock_rb_check_name(name);
    rc = xlock_validate_name(RSTRING_PTR(name), (size_t)RSTRING_LEN(name));
    RB_GC_GUARD(name);
    if (rc < 0)
        xlock_rb_raise(rc);
    return Qnil;
}

/* XLock.default_namespace -> "/tmp/xlock-EUID" [XL-NS-2] (ignores XLOCK_NAMESPACE). */
static VALUE names_default_namespace(VALUE mod)
{
    char buf[64];
    return result(xlock_default_namespace(buf, sizeof buf), buf);
}

void xlock_rb_init_names(void)
{
    rb_define_private_method(rb_singleton_class(rb_mXLock), "_lock_file_name", names_lock_file, 1);
    rb_define_private_method(rb_singleton_class(rb_mXLock), "_capacity_file_name", names_capacity_file,
                             1);
    rb_define_private_method(rb_singleton_class(rb_mXLock), "_slot_file_name", names_slot_file, 2);
    rb_define_private_method(rb_singleton_class(rb_mXLock), "_semaphore_name", names_semaphore, 4);
    rb_define_private_method(rb_singleton_class(rb_mXLock), "_bell_word", names_bell_word, 2);
    rb_define_private_method(rb_singleton_class(rb_mXLock), "_validate_name", names_validate, 1);
    rb_define_module_function(rb_mXLock, "default_namespace", names_default_namespace, 0);
}
