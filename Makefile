# Grove — one Makefile for the whole tree, like git's and Redis's.
#
#   make                          build build/grove
#   make test                     install missing packages, build, run unit + end-to-end tests
#   make test-loaded              the same with two CPU-bound processes beside it (a busy CI machine)
#   make SANITIZE=address,undefined test   the same, sanitized (in build/sanitize)
#   make valgrind                 the unit tests under valgrind
#   make lint                     static analysis (cppcheck), clean
#   make completion               regenerate contrib/bash-completion/grove
#   make test-chaos               only the fault tests (kill -9, network cut, full disk, …)
#   make fuzz                     build the libFuzzer targets (clang) in build/fuzz
#   make fuzz-run FUZZ_SECONDS=N  run each fuzz target for N seconds
#   make up                       install, build and start Grove on loopback (grove up)
#   make install [PREFIX=/usr/local] [DESTDIR=]   the binary, systemd units, completion, docs
#   make uninstall [PREFIX=…] [DESTDIR=]          what make install put there

CC ?= cc
# The version outside a git checkout; inside one, `git describe` says.
VERSION := 0.2.0
GROVE_VERSION := $(or $(shell git describe --tags --dirty 2>/dev/null),\
	$(shell h=$$(git rev-parse --short HEAD 2>/dev/null) && \
		echo "$(VERSION)-g$$h$$(git diff --quiet HEAD 2>/dev/null || echo -dirty)"),$(VERSION))
PREFIX ?= /usr/local
DESTDIR ?=
PKGS := grpc libprotobuf-c libgit2 openssl sqlite3 libpq libssh libmicrohttpd gnutls jansson libcurl zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

ifdef SANITIZE
B ?= build/sanitize
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
B ?= build
SAN_FLAGS :=
endif

WARN := -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
	-Wshadow -Wpointer-arith -Wvla -Wformat=2 -Wno-format-nonliteral -Werror
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -pthread $(WARN) $(CFLAGS) $(SAN_FLAGS) \
	-Isrc -I$(B)/gen $(PKG_CFLAGS) -MMD -MP
ALL_LDFLAGS := -pthread $(SAN_FLAGS) $(LDFLAGS)
LIBS := $(PKG_LIBS) -lm

PROTOS := $(wildcard proto/grove/v1/*.proto) proto/grpc/health/v1/health.proto
PROTO_C := $(patsubst proto/%.proto,$(B)/gen/%.pb-c.c,$(PROTOS)) \
	$(B)/gen/google/protobuf/descriptor.pb-c.c
PROTO_H := $(PROTO_C:.c=.h)
GEN_C := $(PROTO_C) $(B)/gen/methods.c

LIB_SRC := $(wildcard src/lib/*.c)
ROLE_SRC := $(wildcard src/store/*.c src/gate/*.c src/gate/admin/*.c src/cluster/*.c src/hook/*.c src/cli/*.c)
LIB_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRC)) $(patsubst $(B)/gen/%.c,$(B)/obj/gen/%.o,$(GEN_C))
ROLE_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(ROLE_SRC))

TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(patsubst tests/tools/%.c,$(B)/tests/tools/%,$(TOOL_SRC))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))

.PHONY: all completion lint test test-loaded test-chaos unit valgrind e2e fuzz fuzz-run clean deps up bench \
	install uninstall FORCE
.DELETE_ON_ERROR:
.SECONDARY:

all: $(B)/grove $(B)/grove-hook $(B)/grove-pack-objects

deps:
	@scripts/install-deps

$(B)/gen/%.pb-c.c $(B)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(B)/gen
	protoc-c -Iproto -I/usr/include --c_out=$(B)/gen $<

$(B)/gen/google/protobuf/descriptor.pb-c.c $(B)/gen/google/protobuf/descriptor.pb-c.h:
	@mkdir -p $(B)/gen
	protoc-c -I/usr/include --c_out=$(B)/gen google/protobuf/descriptor.proto

$(B)/gen/methods.c: scripts/gen-methods.awk $(PROTOS)
	@mkdir -p $(B)/gen
	awk -f scripts/gen-methods.awk $(PROTOS) > $@

# Every object may include any generated header.
$(LIB_OBJ) $(ROLE_OBJ): | $(PROTO_H)

# Rewritten only when the version changes: one object is rebuilt, not all.
$(B)/gen/grove-version.h: FORCE
	@mkdir -p $(B)/gen
	@v='#define GROVE_VERSION "$(GROVE_VERSION)"'; \
	if [ "$$(cat $@ 2>/dev/null)" != "$$v" ]; then echo "$$v" >$@; fi
$(B)/obj/src/lib/version.o: $(B)/gen/grove-version.h

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(B)/obj/gen/%.o: $(B)/gen/%.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(ALL_CFLAGS) -Wno-shadow -c -o $@ $<

$(B)/libgrove.a: $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(B)/grove: $(ROLE_OBJ) $(B)/libgrove.a
	@echo "  LINK $@"
	@$(CC) $(ALL_LDFLAGS) -o $@ $(ROLE_OBJ) $(B)/libgrove.a $(LIBS)

# What git runs as a store's hooks (src/hooklite): libc and the hooks' wire
# only, so that it starts in a millisecond (lib/hookwire.h).
$(B)/grove-hook: src/hooklite/main.c src/lib/hookwire.c src/lib/hookwire.h
	@echo "  LINK $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ src/hooklite/main.c src/lib/hookwire.c

# git's pack-objects hook on a store, as a binary of its own that loads
# libcrypto only (src/hooklite/pack_objects.c): it runs for every clone.
$(B)/grove-pack-objects: src/hooklite/pack_objects.c $(B)/obj/src/hook/packobjects.o $(B)/libgrove.a
	@echo "  LINK $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(B)/obj/src/hook/packobjects.o $(B)/libgrove.a -lcrypto

$(B)/tests/%: tests/unit/%.c $(B)/libgrove.a
	@mkdir -p $(dir $@)
	@echo "  LINK $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(B)/libgrove.a $(LIBS) -lcmocka

# Programs the end-to-end tests drive (clients that misbehave on purpose).
$(B)/tests/tools/%: tests/tools/%.c tests/tools/tool.h
	@mkdir -p $(dir $@)
	@echo "  LINK $@"
	@$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIBS)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "# $$t"; $$t; done

# The unit tests under valgrind: any invalid access, uninitialised use or
# definite leak fails.
valgrind: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "# valgrind $$t"; \
		valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite $$t >/dev/null; done

# tests/run: prove in a run directory and a process group of its own, so
# that an interrupted or finished run leaves no daemon behind.
# GROVE_TEST_JOBS sets prove's -j (default: twice the CPUs).
e2e: $(B)/grove $(TOOL_BIN)
	GROVE_BIN=$(CURDIR)/$(B)/grove GROVE_TOOLS=$(CURDIR)/$(B)/tests/tools tests/run

# The fault suite (issue 6): stores, routers and gates killed, stopped, cut
# off the network or out of disk under concurrent pushes. Each file prints
# pushes tried, acknowledged, refused and lost (must be 0) and the time to
# recover (prove -v shows them). Some need root (network namespaces, tmpfs)
# and skip themselves without it. They run in `make test` too.
CHAOS_TESTS := $(sort $(wildcard tests/t/t030[1-9]-*.t))
test-chaos: $(B)/grove $(TOOL_BIN)
	GROVE_BIN=$(CURDIR)/$(B)/grove GROVE_TOOLS=$(CURDIR)/$(B)/tests/tools tests/run -v $(CHAOS_TESTS)

test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN) $(TOOL_BIN)
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory e2e

# `make test` on a busy machine: two CPU-bound processes run beside it,
# started and stopped by scripts/with-load. Tests wait on conditions, never
# on the clock, so they pass here too (with SANITIZE=… as well).
test-loaded: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN) $(TOOL_BIN)
	@scripts/with-load $(MAKE) --no-print-directory unit e2e

# Static analysis with Debian's cppcheck, over everything we write (not the
# generated protobuf code, which is read for its types only). The check set:
# warning (undefined behaviour, misuse of the C library, leaks, null and
# uninitialised use), performance and portability; style is left to review
# and clang-format. A finding fails; a false positive is suppressed where it
# stands, with `// cppcheck-suppress ID` and a comment saying why. The
# protobuf-c header is forced in so that the generated headers' version
# check sees its numbers without cppcheck reading all of /usr/include.
LINT_FLAGS := --quiet --error-exitcode=1 --std=c11 --inline-suppr \
	--enable=warning,performance,portability --suppress=missingIncludeSystem \
	-D_GNU_SOURCE --include=/usr/include/protobuf-c/protobuf-c.h -Isrc -I$(B)/gen
lint: $(PROTO_H)
	cppcheck $(LINT_FLAGS) -j2 src tests/unit tests/tools tests/fuzz

# contrib/bash-completion/grove: what `grove completion bash` prints, made
# from the tables the commands parse their arguments with.
completion: $(B)/grove
	@mkdir -p contrib/bash-completion
	$(B)/grove completion bash > contrib/bash-completion/grove

# libFuzzer targets: the library built again with clang and the fuzzer
# instrumentation, one binary per target.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_B := build/fuzz
fuzz:
	@$(MAKE) --no-print-directory B=$(FUZZ_B) CC=clang \
		SAN_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -Wno-unknown-warning-option" \
		$(FUZZ_B)/libgrove.a
	@set -e; for f in $(FUZZ_SRC); do \
		n=$$(basename $$f .c); echo "  FUZZ $$n"; \
		clang -std=c11 -D_GNU_SOURCE -g -O1 -Isrc -I$(FUZZ_B)/gen $(PKG_CFLAGS) \
			-fsanitize=fuzzer,address,undefined -o $(FUZZ_B)/$$n $$f \
			$(FUZZ_B)/libgrove.a $(PKG_LIBS) -lm; \
	done

FUZZ_SECONDS ?= 30
fuzz-run: fuzz
	@set -e; for f in $(FUZZ_SRC); do \
		n=$$(basename $$f .c); mkdir -p $(FUZZ_B)/corpus/$$n; \
		echo "# fuzzing $$n for $(FUZZ_SECONDS)s"; \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(FUZZ_B)/$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_B)/$$n- $(FUZZ_B)/corpus/$$n tests/fuzz/corpus/$$n \
			> $(FUZZ_B)/$$n.log 2>&1 || { tail -n 60 $(FUZZ_B)/$$n.log; exit 1; }; \
		grep '^stat::' $(FUZZ_B)/$$n.log; \
	done

up: deps all
	@exec $(B)/grove up

bench: all
	scripts/install-deps --bench
	bench/run

# The units and docs name /usr/local/bin/grove and /usr/share/doc/grove: the
# installed copies name PREFIX's. It builds nothing (as root, a build would
# leave root-owned objects): `make && sudo make install`.
install:
	@test -x $(B)/grove || { echo "make install: no $(B)/grove: run make first" >&2; exit 1; }
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/systemd/system \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/doc/grove
	install -m 0755 $(B)/grove $(DESTDIR)$(PREFIX)/bin/grove
	install -m 0755 $(B)/grove-hook $(DESTDIR)$(PREFIX)/bin/grove-hook
	install -m 0755 $(B)/grove-pack-objects $(DESTDIR)$(PREFIX)/bin/grove-pack-objects
	for u in contrib/systemd/*.service contrib/systemd/*.socket; do \
		sed -e 's|/usr/local/bin/grove|$(PREFIX)/bin/grove|g' \
		    -e 's|/usr/share/doc/grove|$(PREFIX)/share/doc/grove|g' $$u \
		    >$(DESTDIR)$(PREFIX)/lib/systemd/system/$$(basename $$u) || exit 1; \
	done
	install -m 0644 contrib/bash-completion/grove $(DESTDIR)$(PREFIX)/share/bash-completion/completions/grove
	install -m 0644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/grove/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/grove $(DESTDIR)$(PREFIX)/bin/grove-hook $(DESTDIR)$(PREFIX)/bin/grove-pack-objects \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/grove
	for u in contrib/systemd/*.service contrib/systemd/*.socket; do rm -f $(DESTDIR)$(PREFIX)/lib/systemd/system/$$(basename $$u); done
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/grove

clean:
	rm -rf build

-include $(shell find $(B)/obj $(B)/tests -name '*.d' 2>/dev/null)
