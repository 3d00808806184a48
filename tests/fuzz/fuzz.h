/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The libFuzzer entry point every target in this directory defines. Built with clang's
 * -fsanitize=fuzzer it is driven by libFuzzer; otherwise replay.c feeds it each file of a corpus.
 * It returns 0 and aborts on any broken invariant, so that a bug is a crash in both cases.
 */

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
