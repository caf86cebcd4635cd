/* Pure functions: SHA-256 (NIST vectors), names, file names, semaphore names (spec/vectors),
 * error codes (errors.json), versions and the buffer contract [XL-SEM-6, XL-ERR-1]. */
#include "testlib.h"
#include "vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void hex(char *out, const unsigned char *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* FIPS 180-4 examples published by NIST (SHA256.pdf, SHA2_Additional.pdf). */
static void sha256_nist_vectors(void)
{
    static const struct {
        const char *msg;
        const char *digest;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    unsigned char d[32];
    char h[65];
    for (size_t i = 0; i < COUNT(v); i++) {
        CHECK_OK(xlock_sha256(d, v[i].msg, strlen(v[i].msg)));
        hex(h, d, 32);
        if (strcmp(h, v[i].digest) != 0) {
            tl_fail(__FILE__, __LINE__, "sha256(%s) = %s, expected %s", v[i].msg, h, v[i].digest);
            return;
        }
    }
    char *million = malloc(1000000);
    CHECK(million != NULL);
    memset(million, 'a', 1000000);
    CHECK_OK(xlock_sha256(d, million, 1000000));
    free(million);
    hex(h, d, 32);
    CHECK(strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
    CHECK_RC(xlock_sha256(NULL, "x", 1), XLOCK_EINVAL);
    CHECK_RC(xlock_sha256(d, NULL, 1), XLOCK_EINVAL);
}

static void check_string(const char *what, const char *desc, const char *got, const char *want)
{
    if (strcmp(got, want) != 0)
        tl_fail(__FILE__, __LINE__, "%s of '%s': got '%s', expected '%s'", what, desc, got, want);
}

/* Every case of spec/vectors/names.json [XL-NAME-1..XL-NAME-3, XL-ENC-1, XL-ENC-3, XL-SEM-1..XL-SEM-3].
 */
static void names_json_vectors(void)
{
    char buf[XLOCK_FILE_NAME_SIZE];
    CHECK(COUNT(VEC_CASES) > 50);
    for (size_t i = 0; i < COUNT(VEC_CASES); i++) {
        const struct vec_case *c = &VEC_CASES[i];
        if (!c->valid) {
            CHECK(strcmp(c->error, "INVALID_NAME") == 0);
            int rc = xlock_validate_name(c->name, c->len);
            if (rc != XLOCK_EINVALNAME) {
                tl_fail(__FILE__, __LINE__, "'%s' validated as %d, expected INVALID_NAME",
                        c->description, rc);
                return;
            }
            CHECK(strstr(xlock_last_message(), "[XL-NAME-") != NULL); /* says which rule */
            CHECK_RC(xlock_lock_file_name(buf, sizeof buf, c->name, c->len), XLOCK_EINVALNAME);
            CHECK_RC(xlock_capacity_file_name(buf, sizeof buf, c->name, c->len), XLOCK_EINVALNAME);
            CHECK_RC(xlock_slot_file_name(buf, sizeof buf, c->name, c->len, 0), XLOCK_EINVALNAME);
            CHECK_RC(xlock_semaphore_name(buf, sizeof buf, 'p', 1, 2, c->name, c->len),
                     XLOCK_EINVALNAME);
            CHECK_RC(xlock_bell_word('l', c->name, c->len), XLOCK_EINVALNAME);
            continue;
        }
        CHECK_OK(xlock_validate_name(c->name, c->len));
        CHECK_RC(xlock_lock_file_name(buf, sizeof buf, c->name, c->len), strlen(c->lock_file));
        check_string("lock file", c->description, buf, c->lock_file);
        CHECK_RC(xlock_capacity_file_name(buf, sizeof buf, c->name, c->len), strlen(c->capacity_file));
        check_string("capacity file", c->description, buf, c->capacity_file);
        CHECK_RC(xlock_slot_file_name(buf, sizeof buf, c->name, c->len, 0), strlen(c->slot0));
        check_string("slot 0", c->description, buf, c->slot0);
        CHECK_RC(xlock_slot_file_name(buf, sizeof buf, c->name, c->len, 999), strlen(c->slot999));
        check_string("slot 999", c->description, buf, c->slot999);
        for (size_t n = 0; n < COUNT(VEC_NS); n++) {
            CHECK_RC(xlock_semaphore_name(buf, sizeof buf, 'p', VEC_NS[n].dev, VEC_NS[n].ino, c->name,
                                          c->len),
                     30);
            check_string("semaphore", c->description, buf, c->psem[n]);
        }
        /* The bell words [XL-SEM-7] */
        CHECK(c->bell_l >= 0 && c->bell_s >= 0);
        CHECK_RC(xlock_bell_word('l', c->name, c->len), c->bell_l);
        CHECK_RC(xlock_bell_word('s', c->name, c->len), c->bell_s);
        if (tl_failed())
            return;
    }
}

/* The longest file name fits NAME_MAX [XL-ENC-5]; a semaphore name is 30 bytes [XL-SEM-4]. */
static void longest_names_fit(void)
{
    char name[80], buf[XLOCK_FILE_NAME_SIZE];
    memset(name, '%', sizeof name);
    CHECK_RC(xlock_slot_file_name(buf, sizeof buf, name, 80, 999), 249);
    CHECK_RC(xlock_semaphore_name(buf, XLOCK_SEM_NAME_SIZE, 'p', ~0ULL, ~0ULL, name, 80), 30);
    CHECK(buf[0] == '/' && strchr(buf + 1, '/') == NULL);
    CHECK_RC(xlock_slot_file_name(buf, sizeof buf, "x", 1, 1000), XLOCK_EINVAL);
}

/* The buffer contract of the mapping functions. */
static void buffers_and_bad_arguments(void)
{
    char buf[64];
    CHECK_RC(xlock_lock_file_name(NULL, 0, "Billing", 7), 13);           /* query: "!billing.lock" */
    CHECK_RC(xlock_lock_file_name(buf, 13, "Billing", 7), XLOCK_EINVAL); /* no room for NUL */
    CHECK(strstr(xlock_last_message(), "14") != NULL);
    CHECK_RC(xlock_lock_file_name(buf, 14, "Billing", 7), 13);
    CHECK(strcmp(buf, "!billing.lock") == 0);
    CHECK_RC(xlock_lock_file_name(NULL, 5, "x", 1), XLOCK_EINVAL);
    CHECK_RC(xlock_lock_file_name(buf, sizeof buf, NULL, 3), XLOCK_EINVAL);
    CHECK_RC(xlock_semaphore_name(buf, sizeof buf, 'x', 1, 2, "a", 1), XLOCK_EINVAL);
    CHECK_RC(xlock_semaphore_name(buf, 30, 'p', 1, 2, "a", 1), XLOCK_EINVAL);
    /* The name is checked before the other arguments [XL-NAME-6]. */
    CHECK_RC(xlock_semaphore_name(buf, sizeof buf, 'x', 1, 2, "", 0), XLOCK_EINVALNAME);
    CHECK_RC(xlock_slot_file_name(buf, sizeof buf, "", 0, 1000), XLOCK_EINVALNAME);
    CHECK_RC(xlock_bell_word('x', "a", 1), XLOCK_EINVAL);
    CHECK_RC(xlock_bell_word('p', "a", 1), XLOCK_EINVAL);
    CHECK_RC(xlock_bell_word('l', NULL, 0), XLOCK_EINVAL);
    CHECK_RC(xlock_bell_word('l', "billing-export", 14), 220); /* spec/vectors/names.json */
    CHECK_RC(xlock_validate_name("a\0b", 3), XLOCK_EINVALNAME);
    CHECK(strstr(xlock_last_message(), "XL-NAME-2") != NULL);
    CHECK_RC(xlock_validate_name("", 0), XLOCK_EINVALNAME);
    CHECK(strstr(xlock_last_message(), "XL-NAME-1") != NULL);
    CHECK_RC(xlock_validate_name("\xc0\xaf", 2), XLOCK_EINVALNAME); /* overlong '/' */
    CHECK(strstr(xlock_last_message(), "XL-NAME-3") != NULL);
    CHECK_RC(xlock_validate_name("\xf4\x90\x80\x80", 4), XLOCK_EINVALNAME); /* > U+10FFFF */
    CHECK_RC(xlock_validate_name("\xe9", 1), XLOCK_EINVALNAME);             /* truncated */
    CHECK_RC(xlock_validate_name(NULL, 1), XLOCK_EINVAL);
    char dflt[64], want[64];
    snprintf(want, sizeof want, "/tmp/xlock-%lu", (unsigned long)geteuid()); /* [XL-NS-2] */
    CHECK_RC(xlock_default_namespace(dflt, sizeof dflt), strlen(want));
    CHECK(strcmp(dflt, want) == 0);
}

/* errors.json: codes, kind names; strerror never NULL [XL-ERR-1, XL-ERR-2]. */
static void errors_json_table(void)
{
    static const struct {
        const char *c;
        int value;
    } header[] = {
        {"XLOCK_EWOULDBLOCK", XLOCK_EWOULDBLOCK},
        {"XLOCK_ETIMEDOUT", XLOCK_ETIMEDOUT},
        {"XLOCK_EINVALNAME", XLOCK_EINVALNAME},
        {"XLOCK_EINVAL", XLOCK_EINVAL},
        {"XLOCK_EINSECURE", XLOCK_EINSECURE},
        {"XLOCK_EUNSUPPORTEDFS", XLOCK_EUNSUPPORTEDFS},
        {"XLOCK_ENOTHELD", XLOCK_ENOTHELD},
        {"XLOCK_EALREADY", XLOCK_EALREADY},
        {"XLOCK_ECAPACITY", XLOCK_ECAPACITY},
        {"XLOCK_EINTR", XLOCK_EINTR},
        {"XLOCK_ECANCELED", XLOCK_ECANCELED},
        {"XLOCK_EOS", XLOCK_EOS},
        {"XLOCK_ELOST", XLOCK_ELOST},
        {"XLOCK_EUNSUPPORTEDBACKEND", XLOCK_EUNSUPPORTEDBACKEND},
        {"XLOCK_EBACKEND", XLOCK_EBACKEND},
    };
    CHECK(COUNT(VEC_ERRORS) == COUNT(header));
    for (size_t i = 0; i < COUNT(VEC_ERRORS); i++) {
        int found = 0;
        for (size_t j = 0; j < COUNT(header); j++)
            if (strcmp(header[j].c, VEC_ERRORS[i].c) == 0) {
                found = 1;
                CHECK(header[j].value == VEC_ERRORS[i].value);
            }
        CHECK(found);
        const char *kind = xlock_errname(VEC_ERRORS[i].value);
        CHECK(kind != NULL && strcmp(kind, VEC_ERRORS[i].kind) == 0);
        CHECK(xlock_strerror(VEC_ERRORS[i].value) != NULL);
        CHECK(strcmp(xlock_strerror(VEC_ERRORS[i].value), "unknown xlock error") != 0);
    }
    CHECK(strcmp(xlock_errname(0), "OK") == 0);
    CHECK(xlock_errname(-99) == NULL);
    CHECK(strcmp(xlock_strerror(-99), "unknown xlock error") == 0);
}

static void versions_and_options(void)
{
    CHECK(xlock_version() == XLOCK_VERSION);
    CHECK(strcmp(xlock_version_string(), XLOCK_VERSION_STRING) == 0);
    CHECK(xlock_abi_version() == 1);
    CHECK(strcmp(xlock_spec_version(), "xlock/1") == 0);
    CHECK(xlock_file_name_size() == 256 && xlock_sem_name_size() == 31);
    CHECK(xlock_name_max() == 80 && xlock_capacity_max() == 1000);
    CHECK(xlock_options_size() == sizeof(xlock_options));
    xlock_options o;
    memset(&o, 0x5a, sizeof o);
    CHECK_OK(xlock_options_init(&o));
    CHECK(o.version == XLOCK_OPTIONS_VERSION && o.namespace_path == NULL && o.shared == 0 &&
          o.reentrant == 0 && o.allow_unsupported_fs == 0 && o.cancellable == 0);
    CHECK_RC(xlock_options_init(NULL), XLOCK_EINVAL);
}

int main(int argc, char **argv)
{
    static const tl_case cases[] = {
        TL_CASE(sha256_nist_vectors),       TL_CASE(names_json_vectors), TL_CASE(longest_names_fit),
        TL_CASE(buffers_and_bad_arguments), TL_CASE(errors_json_table),  TL_CASE(versions_and_options),
    };
    return tl_main(argc, argv, cases, COUNT(cases));
}
