# fuzz.mk - `make fuzz`: build the libFuzzer target of the LTX decoder with
# clang (-fsanitize=fuzzer,address,undefined) into build-fuzz/ and run it for
# $(FUZZ_SECONDS) seconds (default 60) on a seed corpus of valid files that
# the same source writes when built with -DLTX_FUZZ_SEEDS.  New inputs the
# fuzzer finds accumulate in build-fuzz/corpus/; a crash or leak leaves its
# input in build-fuzz/ (crash-*, leak-*) and fails the target.
#
# Included by the top-level Makefile; uses its WARN, defines only FUZZ_*.

FUZZ_SECONDS ?= 60
FUZZ_CLANG ?= clang
FUZZ_OUT := build-fuzz
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(WARN) -g -O1 \
	-fno-omit-frame-pointer -I.
FUZZ_SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_LTX_SRCS := base/err.c $(sort $(wildcard ltx/*.c))
FUZZ_LTX_DEPS := $(FUZZ_LTX_SRCS) ltx/ltx.h base/err.h \
	tests/fuzz/fuzz_ltx_decode.c
FUZZ_SEEDS := $(FUZZ_OUT)/seeds/ltx_decode
FUZZ_CORPUS := $(FUZZ_OUT)/corpus/ltx_decode

$(FUZZ_OUT)/fuzz_ltx_decode: $(FUZZ_LTX_DEPS) | $(TEST_DEPS)
	@mkdir -p $(dir $@)
	$(FUZZ_CLANG) $(FUZZ_CFLAGS) $(FUZZ_SANITIZE) -fsanitize=fuzzer \
		tests/fuzz/fuzz_ltx_decode.c $(FUZZ_LTX_SRCS) -lxxhash -o $@

$(FUZZ_OUT)/gen_ltx_seeds: $(FUZZ_LTX_DEPS) | $(TEST_DEPS)
	@mkdir -p $(dir $@)
	$(FUZZ_CLANG) $(FUZZ_CFLAGS) $(FUZZ_SANITIZE) -DLTX_FUZZ_SEEDS \
		tests/fuzz/fuzz_ltx_decode.c $(FUZZ_LTX_SRCS) -lxxhash -o $@

$(FUZZ_SEEDS).done: $(FUZZ_OUT)/gen_ltx_seeds
	rm -rf $(FUZZ_SEEDS)
	mkdir -p $(FUZZ_SEEDS)
	$(FUZZ_OUT)/gen_ltx_seeds $(FUZZ_SEEDS)
	@touch $@

fuzz: $(FUZZ_OUT)/fuzz_ltx_decode $(FUZZ_SEEDS).done
	@mkdir -p $(FUZZ_CORPUS)
	$(FUZZ_OUT)/fuzz_ltx_decode -max_total_time=$(FUZZ_SECONDS) \
		-max_len=8192 -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_OUT)/ $(FUZZ_CORPUS) $(FUZZ_SEEDS)
