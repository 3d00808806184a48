/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The libFuzzer entry point every target in this directory defines. Built with clang's
 * -fsanitize=fuzzer it is driven by libFuzzer; otherwise replay.c feeds it each file of a corpus.
 * It returns 0 and aborts on any broken invariant, so that a bug is a crash in both cases.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test: a broken one is a crash, in libFuzzer and in replay. */
#define check(x)                                                                              \
        do {                                                                                  \
                if (!(x)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        abort();                                                              \
                }                                                                             \
        } while (0)
