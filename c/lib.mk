# What libxlock (c/Makefile) and libxlock_pg (c/pg/Makefile) build alike: install directories, compiler
# flags, versions read from the public header, the shared library with its SONAME links and the static
# library, the symbol check, and the files an install puts in place.
# Before including it a Makefile sets LIBNAME (libxlock), HEADER (include/xlock.h), VERSION_MACRO
# (XLOCK: the header defines XLOCK_ABI_VERSION, XLOCK_VERSION_MINOR/PATCH/STRING), HDRS and EXPORTED
# (the prefix of the functions the shared library exports); CFLAGS_LIB and SHLIB_LDLIBS may come later.
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=
CC ?= cc
AR ?= ar

# Every version number comes from HEADER: the SONAME's number is <VERSION_MACRO>_ABI_VERSION, the library
# file is LIBNAME.so.ABI.MINOR.PATCH, and pkg-config's Version is <VERSION_MACRO>_VERSION_STRING.
header_int = $(shell sed -n 's/^\#define $(1) \([0-9][0-9]*\)$$/\1/p' $(HEADER))
ABI_VERSION := $(call header_int,$(VERSION_MACRO)_ABI_VERSION)
VERSION_MINOR := $(call header_int,$(VERSION_MACRO)_VERSION_MINOR)
VERSION_PATCH := $(call header_int,$(VERSION_MACRO)_VERSION_PATCH)
PC_VERSION := $(shell sed -n 's/^\#define $(VERSION_MACRO)_VERSION_STRING "\(.*\)"$$/\1/p' $(HEADER))
ifeq ($(ABI_VERSION),)
$(error $(HEADER): no $(VERSION_MACRO)_ABI_VERSION found)
endif
ifeq ($(PC_VERSION),)
$(error $(HEADER): no $(VERSION_MACRO)_VERSION_STRING found)
endif
VERSION_FULL := $(ABI_VERSION).$(VERSION_MINOR).$(VERSION_PATCH)

WARN := -Wall -Wextra -Werror
CSTD := -std=c11
OPT ?= -O2
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
TSAN_FLAGS := -O1 -g -fsanitize=thread

B := build
SRCS := $(wildcard src/*.c)
OBJS := $(patsubst src/%.c,$(B)/obj/%.o,$(SRCS))
SONAME := $(LIBNAME).so.$(ABI_VERSION)
SHLIB := $(B)/$(LIBNAME).so.$(VERSION_FULL)
STLIB := $(B)/$(LIBNAME).a
LIB_FILES := $(SHLIB) $(B)/$(SONAME) $(B)/$(LIBNAME).so $(STLIB)

$(B)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_LIB) $(CFLAGS) -c $< -o $@

$(SHLIB): $(OBJS)
	$(CC) -shared -Wl,-soname,$(SONAME) $(LDFLAGS) -o $@ $(OBJS) $(SHLIB_LDLIBS)

$(B)/$(SONAME): $(SHLIB)
	ln -sf $(notdir $(SHLIB)) $@

$(B)/$(LIBNAME).so: $(B)/$(SONAME)
	ln -sf $(SONAME) $@

$(STLIB): $(OBJS)
	rm -f $@
	$(AR) rcs $@ $(OBJS)

# Test builds: after defining `variant` (the rule for one test build, given its directory and flags), a
# Makefile expands $(test_variants) for plain, asan, tsan and vg (valgrind).
test_variants = $(eval $(call variant,plain,-O2 -g))$(eval $(call variant,asan,$$(ASAN_FLAGS)))$(eval \
	$(call variant,tsan,$$(TSAN_FLAGS)))$(eval $(call variant,vg,-O1 -g))

# Recipe lines of check-symbols: every global symbol of the static and the shared library has the xlock_
# prefix (internal helpers use <EXPORTED>_ and are hidden); the shared library exports only public
# EXPORTED functions; its SONAME is SONAME.
define check_lib_symbols
	@bad=$$( (nm -g --defined-only $(STLIB); nm -g --defined-only $(SHLIB)) | \
	       awk 'NF == 3 {print $$3}' | grep -v '^xlock_' | sort -u || true); \
	if [ -n "$$bad" ]; then echo "global symbols without the xlock_ prefix: $$bad"; exit 1; fi
	@bad=$$(nm -D --defined-only $(SHLIB) | awk '{print $$3}' | grep -v '^$(EXPORTED)' | grep '.' || \
	       nm -D --defined-only $(SHLIB) | awk '{print $$3}' | grep '^$(EXPORTED)_' || true); \
	if [ -n "$$bad" ]; then echo "exported symbols that are not public $(EXPORTED) functions: $$bad"; exit 1; fi; \
	n=$$(nm -D --defined-only $(SHLIB) | grep -c ' T $(EXPORTED)'); \
	echo "symbols: $$n $(EXPORTED) functions exported; $(notdir $(STLIB)) and $(LIBNAME).so define no other global"
	@readelf -d $(SHLIB) | grep -q "SONAME.*\[$(SONAME)\]" && echo "SONAME $(SONAME)"
endef

# Install: the .pc file generated for this PREFIX (SUBST turns a *.in template into it), then the header,
# the libraries with their links and the .pc file (recipe lines install_lib_files); LIB_INSTALLED lists
# them for uninstall.
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(PC_VERSION)|g' -e 's|@SHLIB@|$(notdir $(SHLIB))|g' -e 's|@SONAME@|$(SONAME)|g' \
	    -e 's|@VERSION_MAJOR@|$(call header_int,$(VERSION_MACRO)_VERSION_MAJOR)|g' -e 's|@VERSION_MINOR@|$(VERSION_MINOR)|g'
define install_lib_files
	@mkdir -p $(B)
	$(SUBST) $(LIBNAME).pc.in > $(B)/$(LIBNAME).pc
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man3
	install -m 0644 $(HEADER) $(DESTDIR)$(INCLUDEDIR)/$(notdir $(HEADER))
	install -m 0755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/$(LIBNAME).so
	install -m 0644 $(STLIB) $(DESTDIR)$(LIBDIR)/$(LIBNAME).a
	install -m 0644 $(B)/$(LIBNAME).pc $(DESTDIR)$(PKGCONFIGDIR)/$(LIBNAME).pc
endef
LIB_INSTALLED = $(DESTDIR)$(INCLUDEDIR)/$(notdir $(HEADER)) $(DESTDIR)$(LIBDIR)/$(notdir $(SHLIB)) \
	$(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/$(LIBNAME).so $(DESTDIR)$(LIBDIR)/$(LIBNAME).a \
	$(DESTDIR)$(PKGCONFIGDIR)/$(LIBNAME).pc
