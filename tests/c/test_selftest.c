/* Self-test for the tests/c/test.h harness (all tests here must pass). */
#include "test.h"

#include <errno.h>

static int order_seen;

static int returns_zero(void) { return 0; }

TEST(first_registered)
{
    CHECK_EQ_INT(order_seen, 0);
    order_seen = 1;
}

TEST(second_registered_runs_after_first)
{
    CHECK_EQ_INT(order_seen, 1);
    order_seen = 2;
}

TEST(check_macros_pass)
{
    int x = 3;
    CHECK(1 + 1 == 2);
    CHECK_EQ_INT(x, 3);
    CHECK_EQ_INT(-ENOMEM, -12);
    CHECK_EQ_SZ(sizeof(uint32_t), 4);
    CHECK_OK(returns_zero());
}

TEST(now_ns_is_monotonic)
{
    uint64_t a = test_now_ns();
    uint64_t b = test_now_ns();
    CHECK(b >= a);
    CHECK(a > 0);
}

TEST(registry_is_filled)
{
    CHECK(test_count_ >= 5);
    CHECK(strcmp(test_list_[0].name, "first_registered") == 0);
}

TEST_MAIN()
