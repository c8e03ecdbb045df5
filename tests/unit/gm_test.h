/* A minimal unit-test harness: CHECK records failures and goes on; each test
 * file's main runs its cases with GM_RUN and ends with GM_TEST_END, which prints
 * "N passed, M failed" and returns non-zero on any failure. */
#ifndef GM_TEST_H
#define GM_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int gm_test_checks_failed;
static int gm_test_cases_passed;
static int gm_test_cases_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            gm_test_checks_failed++;                                                 \
        }                                                                            \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *gm_a_ = (a), *gm_b_ = (b);                                                     \
        if (!gm_a_ || !gm_b_ || strcmp(gm_a_, gm_b_) != 0) {                                       \
            fprintf(                                                                               \
                stderr, "%s:%d: check failed: %s == %s\n  got:      \"%s\"\n  expected: \"%s\"\n", \
                __FILE__, __LINE__, #a, #b, gm_a_ ? gm_a_ : "(null)", gm_b_ ? gm_b_ : "(null)");   \
            gm_test_checks_failed++;                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                           \
    do {                                                                                          \
        long long gm_a_ = (long long)(a), gm_b_ = (long long)(b);                                 \
        if (gm_a_ != gm_b_) {                                                                     \
            fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, \
                    #a, #b, gm_a_, gm_b_);                                                        \
            gm_test_checks_failed++;                                                              \
        }                                                                                         \
    } while (0)

#define GM_RUN(fn)                                 \
    do {                                           \
        int gm_before_ = gm_test_checks_failed;    \
        fn();                                      \
        if (gm_test_checks_failed == gm_before_) { \
            gm_test_cases_passed++;                \
        } else {                                   \
            gm_test_cases_failed++;                \
            fprintf(stderr, "FAIL %s\n", #fn);     \
        }                                          \
    } while (0)

#define GM_TEST_END()                                                                 \
    do {                                                                              \
        printf("%d passed, %d failed\n", gm_test_cases_passed, gm_test_cases_failed); \
        return gm_test_cases_failed ? 1 : 0;                                          \
    } while (0)

#endif
