/* Tiny header-only C test harness: TEST(name), CHECK* macros and TEST_MAIN(). */
#ifndef CREW_TEST_H
#define CREW_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TEST_MAX 1024

typedef void (*test_fn)(void);

struct test_case {
    const char *name;
    test_fn fn;
};

static struct test_case test_list_[TEST_MAX];
static int test_count_;
static int test_failed_; /* set when a check in the current test fails */

static inline void test_register_(const char *name, test_fn fn)
{
    if (test_count_ >= TEST_MAX) {
        fprintf(stderr, "test.h: too many tests (max %d)\n", TEST_MAX);
        abort();
    }
    test_list_[test_count_].name = name;
    test_list_[test_count_].fn = fn;
    test_count_++;
}

static inline uint64_t test_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Define and register a test; tests run in registration (source) order. */
#define TEST(name)                                                         \
    static void test_##name(void);                                         \
    __attribute__((constructor)) static void test_reg_##name(void)         \
    {                                                                      \
        test_register_(#name, test_##name);                                \
    }                                                                      \
    static void test_##name(void)

#define TEST_FAIL_(...)                                                    \
    do {                                                                   \
        printf("%s:%d: check failed: ", __FILE__, __LINE__);              \
        printf(__VA_ARGS__);                                               \
        putchar('\n');                                                     \
        test_failed_ = 1;                                                  \
        return;                                                            \
    } while (0)

/* Each CHECK returns from the current test on failure. */
#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond))                                                       \
            TEST_FAIL_("%s", #cond);                                       \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                 \
    do {                                                                   \
        long long a_ = (long long)(a), b_ = (long long)(b);                \
        if (a_ != b_)                                                      \
            TEST_FAIL_("%s == %s (%lld vs %lld)", #a, #b, a_, b_);         \
    } while (0)

#define CHECK_EQ_SZ(a, b)                                                  \
    do {                                                                   \
        size_t a_ = (size_t)(a), b_ = (size_t)(b);                         \
        if (a_ != b_)                                                      \
            TEST_FAIL_("%s == %s (%zu vs %zu)", #a, #b, a_, b_);           \
    } while (0)

/* expr must return 0; a negative errno-style code is printed by name. */
#define CHECK_OK(expr)                                                     \
    do {                                                                   \
        long long r_ = (long long)(expr);                                  \
        if (r_ != 0)                                                       \
            TEST_FAIL_("%s returned %lld (%s)", #expr, r_,                 \
                       r_ < 0 ? strerror((int)-r_) : "nonzero");           \
    } while (0)

/* Run all tests (or those whose name contains argv[1]); exit 0 iff none failed. */
static inline int test_run_all_(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int passed = 0, failed = 0;

    for (int i = 0; i < test_count_; i++) {
        const struct test_case *t = &test_list_[i];
        if (filter && !strstr(t->name, filter))
            continue;
        printf("[ RUN  ] %s\n", t->name);
        fflush(stdout);
        test_failed_ = 0;
        uint64_t t0 = test_now_ns();
        t->fn();
        double ms = (double)(test_now_ns() - t0) / 1e6;
        printf("%s %s (%.1f ms)\n", test_failed_ ? "[ FAIL ]" : "[  OK  ]", t->name, ms);
        fflush(stdout);
        if (test_failed_)
            failed++;
        else
            passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#define TEST_MAIN()                                                        \
    int main(int argc, char **argv) { return test_run_all_(argc, argv); }

/* TEST_MAIN() that runs `first` (e.g. crew_main(argc, argv)) before any test. */
#define TEST_MAIN_AFTER(first)                                             \
    int main(int argc, char **argv) { first; return test_run_all_(argc, argv); }

#endif /* CREW_TEST_H */
