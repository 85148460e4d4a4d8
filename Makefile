# diffusiond — build, install and check. `make help` lists the targets.
#   make                 release build (Swift runtime linked statically)
#   make test            the whole test suite (what CI runs: swift test)
#   make run             install build dependencies, build, run the daemon in the foreground
#                        on the built-in model with a local spool (etc/diffusiond.yaml)
#   make install         PREFIX=/usr/local by default; DESTDIR= for staging a package
#   make lint            man pages (mandoc), systemd units (systemd-analyze), Package.swift imports
#   make install-check   stage an install (PREFIX=/usr) in a temp DESTDIR and run the daemon from it
#   make soak KILLS=100  SIGKILL the daemon KILLS times while files arrive; every file must end
#                        in exactly one place (the test suite runs it with 20)
#   make slurm-check     (root) a real one-node Slurm runs a sharded batch: cancel, requeue, resume
#   make fuzz            libFuzzer + address sanitizer on each parser, SECONDS=N each (default 60)

PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DATADIR     ?= $(PREFIX)/share/diffusiond
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
SYSCONFDIR  ?= /etc
SPOOLDIR    ?= /var/spool/diffusiond
DESTDIR     ?=

SWIFT_BIN   ?= /opt/swift/usr/bin
export PATH := $(SWIFT_BIN):$(PATH)
SWIFT       ?= swift
INSTALL     ?= install
# Release builds link the Swift runtime and Foundation statically, so installed binaries need
# nothing from the toolchain (install-check proves it).
RELEASE     = -c release --static-swift-stdlib

PROGRAMS  = diffusiond diffusionctl diffusion-bench
MANPAGES  = man/diffusionctl.1 man/diffusiond.yaml.5 man/diffusion-job.5 man/diffusiond.8
UNITS     = systemd/diffusiond.service systemd/diffusiond.socket
MODEL     = models/shapes
# Exposure score (×10) that `make lint` accepts from systemd-analyze security.
SECURITY_THRESHOLD = 30

.PHONY: all build test soak run install install-check uninstall lint lint-man lint-units lint-imports help slurm-check fuzz fuzz-build

all: build

help:
	@sed -n '2,13s/^# \{0,1\}//p' Makefile

build:
	$(SWIFT) build $(RELEASE)

test:
	$(SWIFT) test

KILLS ?= 100
soak:
	DIFFUSIOND_SOAK_KILLS=$(KILLS) $(SWIFT) test --filter 'RecoveryTests/testSIGKILLAtRandomMomentsLosesAndDuplicatesNothing'

# A single-node Slurm cluster (tools/slurm/cluster.sh) runs contrib/slurm/diffusion-array.sbatch
# over the built-in model; needs root and tools/install-deps.sh --slurm. CI runs it too.
slurm-check:
	bash tools/install-deps.sh --slurm
	$(SWIFT) build --product diffusiond
	bash tools/slurm/check.sh "$$($(SWIFT) build --show-bin-path)/diffusiond"

run:
	bash tools/install-deps.sh
	$(SWIFT) build $(RELEASE)
	"$$($(SWIFT) build $(RELEASE) --show-bin-path)/diffusiond" --config etc/diffusiond.yaml

# The system config is etc/diffusiond.yaml with an installed system's spool, socket and
# built-in model paths; every other key is kept as shipped. An existing config is kept.
install: build
	@bin="$$($(SWIFT) build $(RELEASE) --show-bin-path)"; \
	set -e; \
	$(INSTALL) -d "$(DESTDIR)$(BINDIR)"; \
	for p in $(PROGRAMS); do $(INSTALL) -m 0755 "$$bin/$$p" "$(DESTDIR)$(BINDIR)/$$p"; done
	$(INSTALL) -d "$(DESTDIR)$(MANDIR)/man1" "$(DESTDIR)$(MANDIR)/man5" "$(DESTDIR)$(MANDIR)/man8"
	$(INSTALL) -m 0644 man/diffusionctl.1 "$(DESTDIR)$(MANDIR)/man1/"
	$(INSTALL) -m 0644 man/diffusiond.yaml.5 man/diffusion-job.5 "$(DESTDIR)$(MANDIR)/man5/"
	$(INSTALL) -m 0644 man/diffusiond.8 "$(DESTDIR)$(MANDIR)/man8/"
	$(INSTALL) -d "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(SYSUSERSDIR)" "$(DESTDIR)$(TMPFILESDIR)"
	for u in $(UNITS); do \
		sed -e 's|/usr/bin/diffusiond|$(BINDIR)/diffusiond|g' -e 's|/var/spool/diffusiond|$(SPOOLDIR)|g' \
			"$$u" > "$(DESTDIR)$(UNITDIR)/$${u#systemd/}"; \
		chmod 0644 "$(DESTDIR)$(UNITDIR)/$${u#systemd/}"; \
	done
	$(INSTALL) -m 0644 systemd/diffusiond.sysusers "$(DESTDIR)$(SYSUSERSDIR)/diffusiond.conf"
	sed 's|/var/spool/diffusiond|$(SPOOLDIR)|g' systemd/diffusiond.tmpfiles > "$(DESTDIR)$(TMPFILESDIR)/diffusiond.conf"
	chmod 0644 "$(DESTDIR)$(TMPFILESDIR)/diffusiond.conf"
	$(INSTALL) -d "$(DESTDIR)$(SYSCONFDIR)/diffusiond"
	@config="$(DESTDIR)$(SYSCONFDIR)/diffusiond/diffusiond.yaml"; \
	if [ -e "$$config" ]; then \
		config="$$config.dist"; echo "install: keeping the existing config; new one in $$config"; \
	fi; \
	sed -e 's|^inbox:[^#]*|inbox: $(SPOOLDIR)/inbox  |' \
	    -e 's|^outbox:[^#]*|outbox: $(SPOOLDIR)/outbox  |' \
	    -e 's|^state:[^#]*|state: $(SPOOLDIR)/state  |' \
	    -e 's|^socket:[^#]*|socket: /run/diffusiond/control.sock  |' \
	    -e 's|^\(    path: \)\.\./models/shapes *|\1$(DATADIR)/models/shapes|' \
	    -e 's|^clip_tokenizer:[^#]*|clip_tokenizer: $(DATADIR)/models/clip-tokenizer  |' \
	    -e 's|^# Relative paths are relative to this file.s folder: as shipped.*|# Installed by make install: system spool under $(SPOOLDIR), socket in /run/diffusiond.|' \
	    -e 's|^# repository with a local spool.*|# Relative paths are relative to the folder of this file.|' \
	    -e 's|--config etc/diffusiond.yaml|--config $(SYSCONFDIR)/diffusiond/diffusiond.yaml|' \
	    etc/diffusiond.yaml > "$$config" && chmod 0644 "$$config"
	@if [ -d "$(MODEL)" ]; then \
		$(INSTALL) -d "$(DESTDIR)$(DATADIR)/models"; \
		rm -rf "$(DESTDIR)$(DATADIR)/models/shapes"; \
		cp -R "$(MODEL)" "$(DESTDIR)$(DATADIR)/models/shapes"; \
		chmod -R u=rwX,go=rX "$(DESTDIR)$(DATADIR)/models/shapes"; \
	else \
		echo "install: WARNING: $(MODEL) is missing; the built-in model is not installed" >&2; \
	fi
	$(INSTALL) -d "$(DESTDIR)$(DATADIR)/slurm"
	$(INSTALL) -m 0644 contrib/slurm/diffusion-array.sbatch "$(DESTDIR)$(DATADIR)/slurm/"
	$(INSTALL) -d "$(DESTDIR)$(DATADIR)/models/clip-tokenizer"
	$(INSTALL) -m 0644 models/clip-tokenizer/vocab.json models/clip-tokenizer/merges.txt models/clip-tokenizer/README.md \
		"$(DESTDIR)$(DATADIR)/models/clip-tokenizer/"
	@echo "installed under $(DESTDIR)$(PREFIX); on the target run: systemd-sysusers; systemd-tmpfiles --create; systemctl daemon-reload; systemctl enable --now diffusiond"

# The staged tree must be complete: the installed diffusiond starts from the installed
# config (spool and socket moved into the temp dir) and answers the installed diffusionctl.
install-check:
	@tmp="$$(mktemp -d)"; pid=; trap '[ -z "$$pid" ] || kill $$pid 2>/dev/null; rm -rf "$$tmp"' EXIT; set -e; \
	$(MAKE) --no-print-directory install DESTDIR="$$tmp/root" PREFIX=/usr >/dev/null; \
	for f in usr/bin/diffusiond usr/bin/diffusionctl usr/bin/diffusion-bench \
	         usr/share/man/man1/diffusionctl.1 usr/share/man/man5/diffusiond.yaml.5 \
	         usr/share/man/man5/diffusion-job.5 usr/share/man/man8/diffusiond.8 \
	         usr/lib/systemd/system/diffusiond.service usr/lib/systemd/system/diffusiond.socket \
	         usr/lib/sysusers.d/diffusiond.conf usr/lib/tmpfiles.d/diffusiond.conf \
	         usr/share/diffusiond/models/clip-tokenizer/vocab.json usr/share/diffusiond/models/clip-tokenizer/merges.txt \
	         usr/share/diffusiond/slurm/diffusion-array.sbatch \
	         etc/diffusiond/diffusiond.yaml; do \
		test -e "$$tmp/root/$$f" || { echo "install-check: missing $$f"; exit 1; }; \
	done; \
	for p in diffusiond diffusionctl diffusion-bench; do \
		b="$$tmp/root/usr/bin/$$p"; \
		if readelf -d "$$b" | grep -E 'R(UN)?PATH' | grep -q swift; then echo "install-check: $$p has a run path into the toolchain"; exit 1; fi; \
		if ldd "$$b" | grep -E 'not found|libswift|libFoundation|libdispatch|libBlocksRuntime'; then \
			echo "install-check: $$p needs the libraries above"; exit 1; fi; \
		if [ "$$(id -u)" -eq 0 ] && command -v unshare >/dev/null && [ -d /opt/swift ]; then \
			unshare -m sh -c "mount -t tmpfs none /opt/swift && '$$b' --help" >/dev/null \
				|| { echo "install-check: $$p does not run with /opt/swift hidden"; exit 1; }; \
		fi; \
	done; \
	echo "install-check: the binaries link the Swift runtime statically (no toolchain library or run path)"; \
	grep -q '^clip_tokenizer: /usr/share/diffusiond/models/clip-tokenizer ' "$$tmp/root/etc/diffusiond/diffusiond.yaml" \
		|| { echo "install-check: clip_tokenizer does not point at the installed vocabulary"; exit 1; }; \
	grep -q '^    path: /usr/share/diffusiond/models/shapes$$' "$$tmp/root/etc/diffusiond/diffusiond.yaml" \
		|| { echo "install-check: the shapes entry does not point at the installed model"; exit 1; }; \
	"$$tmp/root/usr/bin/diffusiond" --config "$$tmp/root/etc/diffusiond/diffusiond.yaml" \
		--inbox "$$tmp/spool/inbox" --outbox "$$tmp/spool/outbox" --state "$$tmp/spool/state" \
		--socket "$$tmp/run/control.sock" 2>"$$tmp/daemon.log" & pid=$$!; \
	for i in $$(seq 1 100); do \
		DIFFUSIOND_SOCKET="$$tmp/run/control.sock" "$$tmp/root/usr/bin/diffusionctl" status >/dev/null 2>&1 && break; \
		sleep 0.1; \
	done; \
	DIFFUSIOND_SOCKET="$$tmp/run/control.sock" "$$tmp/root/usr/bin/diffusionctl" status; \
	kill -TERM $$pid; wait $$pid; pid=; \
	if [ -d "$$tmp/root/usr/share/diffusiond/models/shapes" ]; then \
		printf 'prompt: a red circle on a blue background\nwidth: 128\nheight: 128\nsteps: 8\nseed: 1\nname: check\n' > "$$tmp/check.yaml"; \
		"$$tmp/root/usr/bin/diffusiond" --oneshot "$$tmp/check.yaml" --outbox "$$tmp/out" \
			--model "$$tmp/root/usr/share/diffusiond/models/shapes" 2>>"$$tmp/daemon.log"; \
		test -s "$$tmp/out/check/image-001.png"; \
		echo "install-check: the installed built-in model generated out/check/image-001.png"; \
	fi; \
	echo "install-check: the staged tree is complete and its daemon runs"

uninstall:
	for p in $(PROGRAMS); do rm -f "$(DESTDIR)$(BINDIR)/$$p"; done
	rm -f "$(DESTDIR)$(MANDIR)/man1/diffusionctl.1" "$(DESTDIR)$(MANDIR)/man5/diffusiond.yaml.5" \
	      "$(DESTDIR)$(MANDIR)/man5/diffusion-job.5" "$(DESTDIR)$(MANDIR)/man8/diffusiond.8"
	rm -rf "$(DESTDIR)$(DATADIR)/models/clip-tokenizer"
	rm -f "$(DESTDIR)$(UNITDIR)/diffusiond.service" "$(DESTDIR)$(UNITDIR)/diffusiond.socket" \
	      "$(DESTDIR)$(SYSUSERSDIR)/diffusiond.conf" "$(DESTDIR)$(TMPFILESDIR)/diffusiond.conf"
	rm -rf "$(DESTDIR)$(DATADIR)"
	@echo "kept $(SYSCONFDIR)/diffusiond and $(SPOOLDIR)"

lint: lint-man lint-units lint-imports

# Package.swift's dependencies must equal each target's imports.
lint-imports:
	@python3 tools/check_imports.py

lint-man:
	@out="$$(mandoc -Tlint -W warning $(MANPAGES) 2>&1)"; \
	if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; echo "mandoc: $(MANPAGES) clean"

# systemd-analyze verify needs ExecStart's binary to exist: the units are checked as
# installed into a temporary tree (with /usr/bin rewritten to it).
lint-units:
	@tmp="$$(mktemp -d)"; trap 'rm -rf "$$tmp"' EXIT; set -e; \
	mkdir -p "$$tmp/bin"; \
	if bin="$$($(SWIFT) build $(RELEASE) --show-bin-path 2>/dev/null)" && [ -x "$$bin/diffusiond" ]; then \
		cp "$$bin/diffusiond" "$$tmp/bin/diffusiond"; \
	else printf '#!/bin/sh\nexit 0\n' > "$$tmp/bin/diffusiond"; chmod 0755 "$$tmp/bin/diffusiond"; fi; \
	for u in $(UNITS); do sed "s|/usr/bin/diffusiond|$$tmp/bin/diffusiond|g" "$$u" > "$$tmp/$${u#systemd/}"; done; \
	out="$$(systemd-analyze verify --man=no "$$tmp/diffusiond.service" "$$tmp/diffusiond.socket" 2>&1)" || { echo "$$out"; exit 1; }; \
	if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; \
	echo "systemd-analyze verify: units clean"; \
	out="$$(systemd-analyze security --offline=yes --threshold=$(SECURITY_THRESHOLD) systemd/diffusiond.service 2>&1)" \
	    || { echo "$$out" | tail -3; echo "exposure above $(SECURITY_THRESHOLD)/10"; exit 1; }; \
	echo "$$out" | tail -1; \
	mkdir -p "$$tmp/root/etc"; cp /etc/passwd /etc/group "$$tmp/root/etc/"; \
	systemd-sysusers --root="$$tmp/root" "$$PWD/systemd/diffusiond.sysusers" 2>&1 | grep -v '^Creating' || true; \
	grep -q '^diffusiond:' "$$tmp/root/etc/passwd"; \
	systemd-tmpfiles --root="$$tmp/root" --create "$$PWD/systemd/diffusiond.tmpfiles"; \
	test "$$(stat -c %a "$$tmp/root/var/spool/diffusiond/inbox")" = 3770; \
	echo "sysusers + tmpfiles: user, group and spool created in a scratch root"

# Fuzzing (docs/ARCHITECTURE.md "Fuzzing"). The parsers are built with the address sanitizer
# and libFuzzer's coverage counters into their own build folder; libFuzzer's driver comes
# from the toolchain's fuzzer_no_main runtime (diffusion-fuzz calls LLVMFuzzerRunDriver).
# Each target starts from the committed seeds (Tests/FuzzCorpus/TARGET, read only) and
# grows a working corpus in .build/fuzz-corpus/TARGET; a crash leaves its input in
# .build/fuzz-artifacts/ and fails the target. Replay one: diffusion-fuzz TARGET FILE.
FUZZ_TARGETS  = job-file config safetensors model-config control png
SECONDS      ?= 60
FUZZ_RUNTIME  = $(firstword $(wildcard $(SWIFT_BIN)/../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a))
FUZZ_FLAGS    = --build-path .build/fuzz -Xswiftc -DFUZZING -Xswiftc -sanitize=address \
                -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
                -Xlinker $(FUZZ_RUNTIME) -Xlinker -lstdc++

fuzz-build:
	@test -n "$(FUZZ_RUNTIME)" || { echo "fuzz: libclang_rt.fuzzer_no_main not found under $(SWIFT_BIN)/../lib/clang" >&2; exit 1; }
	$(SWIFT) build --product diffusion-fuzz $(FUZZ_FLAGS)

fuzz: fuzz-build
	@bin="$$($(SWIFT) build $(FUZZ_FLAGS) --show-bin-path)/diffusion-fuzz"; \
	mkdir -p .build/fuzz-artifacts; status=0; \
	for t in $(FUZZ_TARGETS); do \
		mkdir -p ".build/fuzz-corpus/$$t"; \
		echo "fuzz: $$t for $(SECONDS) s"; \
		SWIFT_BACKTRACE=enable=no LSAN_OPTIONS=suppressions=$(CURDIR)/tools/fuzz/lsan.supp DIFFUSION_FUZZ_TARGET=$$t "$$bin" -max_total_time=$(SECONDS) -timeout=10 -rss_limit_mb=2048 \
			-max_len=65536 -print_final_stats=1 \
			-artifact_prefix=".build/fuzz-artifacts/$$t-" ".build/fuzz-corpus/$$t" "Tests/FuzzCorpus/$$t" \
			|| { echo "fuzz: $$t FAILED (input in .build/fuzz-artifacts/)"; status=1; }; \
	done; exit $$status
