/* auth: login throttling — lockouts, their doubling, the sliding window, per-address limits,
 * the memory bound, and a multi-threaded hammer for ThreadSanitizer. Time is an argument. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

static const AuthThrottlePolicy small = {
    .max_failures = 3,
    .window_s = 100,
    .lockout_s = 10,
    .max_lockout_s = 35,
    .max_per_address = 5,
    .max_entries = 1000,
};

static int setup(void **state)
{
    (void)state;
    return auth_init();
}

/* The wait for (account, address) at `now`: 0 when allowed. Checks the return code agrees. */
static int64_t wait_for(AuthThrottle *t, const char *account, const char *address, int64_t now)
{
    int64_t retry = -1;
    int rc = auth_throttle_check(t, account, address, now, &retry);
    assert_true(rc == 0 || rc == ERR_FORBIDDEN);
    assert_int_equal(rc == ERR_FORBIDDEN, retry > 0);
    return retry;
}

static void fail_n(AuthThrottle *t, const char *account, const char *address, int64_t now, int n)
{
    for (int i = 0; i < n; i++)
        auth_throttle_record(t, account, address, now, false);
}

static void t_lockout(void **state)
{
    (void)state;
    AuthThrottle *t = auth_throttle_new(&small);
    const int64_t t0 = 1700000000;
    fail_n(t, "alice", "10.0.0.1", t0, 2);
    assert_int_equal(wait_for(t, "alice", "10.0.0.1", t0), 0);
    fail_n(t, "alice", "10.0.0.1", t0 + 1, 1);
    assert_int_equal(wait_for(t, "alice", "10.0.0.1", t0 + 1), 10);
    assert_int_equal(wait_for(t, "alice", "10.0.0.2", t0 + 1), 10); /* any address */
    assert_int_equal(wait_for(t, "alice", NULL, t0 + 5), 6);
    assert_int_equal(wait_for(t, "alice", NULL, t0 + 10), 1);
    assert_int_equal(wait_for(t, "alice", NULL, t0 + 11), 0);
    assert_int_equal(wait_for(t, "bob", "10.0.0.1", t0 + 1), 0);
    /* the count started again after the lockout: two failures do not lock */
    fail_n(t, "alice", NULL, t0 + 11, 2);
    assert_int_equal(wait_for(t, "alice", NULL, t0 + 11), 0);
    /* no account, no address: nothing to refuse; NULL retry pointer accepted */
    assert_int_equal(auth_throttle_check(t, NULL, NULL, t0, NULL), 0);
    assert_int_equal(auth_throttle_check(t, "alice", NULL, t0 + 11, NULL), 0);
    auth_throttle_free(t);
    auth_throttle_free(NULL);
}

static void t_window(void **state)
{
    (void)state;
    AuthThrottle *t = auth_throttle_new(&small);
    /* three failures within 100 s, spread out: a sliding window, not fixed slots */
    fail_n(t, "a", NULL, 0, 1);
    fail_n(t, "a", NULL, 50, 1);
    fail_n(t, "a", NULL, 99, 1);
    assert_int_equal(wait_for(t, "a", NULL, 99), 10);
    /* a failure leaves the window exactly window_s later */
    fail_n(t, "b", NULL, 0, 1);
    fail_n(t, "b", NULL, 50, 1);
    fail_n(t, "b", NULL, 100, 1);
    assert_int_equal(wait_for(t, "b", NULL, 100), 0);
    fail_n(t, "b", NULL, 149, 1); /* 50, 100, 149 */
    assert_int_equal(wait_for(t, "b", NULL, 149), 10);
    /* a slow guesser (one failure per 50 s) never locks */
    for (int64_t s = 1000; s < 3000; s += 50) {
        fail_n(t, "c", NULL, s, 1);
        assert_int_equal(wait_for(t, "c", NULL, s), 0);
    }
    auth_throttle_free(t);
}

/* Lock `account` (which must be unlocked at `now`) and return the lockout's length. */
static int64_t lock_now(AuthThrottle *t, const char *account, int64_t now)
{
    assert_int_equal(wait_for(t, account, NULL, now), 0);
    fail_n(t, account, NULL, now, small.max_failures);
    return wait_for(t, account, NULL, now);
}

static void t_doubling(void **state)
{
    (void)state;
    AuthThrottle *t = auth_throttle_new(&small);
    int64_t now = 0;
    const int64_t expect[] = {10, 20, 35, 35, 35};
    for (size_t i = 0; i < sizeof expect / sizeof *expect; i++) {
        int64_t got = lock_now(t, "a", now);
        assert_int_equal(got, expect[i]);
        now += got;
    }
    /* quiet for less than max_lockout_s after the lock ended: still doubled (a check in
     * between must not forget the level) */
    now += 34;
    assert_int_equal(wait_for(t, "a", NULL, now), 0);
    assert_int_equal(lock_now(t, "a", now), 35);
    /* quiet for max_lockout_s: the doubling restarts */
    now += 35 + 35;
    assert_int_equal(lock_now(t, "a", now), 10);
    assert_int_equal(lock_now(t, "a", now + 10), 20);
    /* failures while locked (they passed the check just before) count towards the next
     * lockout, which never ends earlier than the current one */
    now += 30;
    assert_int_equal(lock_now(t, "a", now), 35);
    fail_n(t, "a", NULL, now + 1, 3);
    assert_int_equal(wait_for(t, "a", NULL, now + 1), 35);
    /* a failure stamped earlier than the lock (a thread with an older clock reading) does
     * not shorten it */
    assert_int_equal(lock_now(t, "z", 1000), 10);
    fail_n(t, "z", NULL, 980, 3);
    assert_int_equal(wait_for(t, "z", NULL, 1000), 10);
    auth_throttle_free(t);
}

static void t_success(void **state)
{
    (void)state;
    AuthThrottle *t = auth_throttle_new(&small);
    fail_n(t, "a", "10.0.0.1", 0, 2);
    auth_throttle_record(t, "a", "10.0.0.1", 1, true);
    fail_n(t, "a", "10.0.0.1", 2, 2);
    assert_int_equal(wait_for(t, "a", NULL, 2), 0); /* 2 + 2 would have locked */
    /* a success also forgets the doubling */
    assert_int_equal(lock_now(t, "b", 0), 10);
    assert_int_equal(lock_now(t, "b", 10), 20);
    auth_throttle_record(t, "b", NULL, 30, true);
    assert_int_equal(lock_now(t, "b", 30), 10);
    /* ...but not the address: 4 failures + a success + 1 failure lock it (limit 5) */
    AuthThrottle *u = auth_throttle_new(&small);
    char acc[16];
    for (int i = 0; i < 4; i++) {
        snprintf(acc, sizeof acc, "u%d", i);
        fail_n(u, acc, "10.0.0.9", 0, 1);
    }
    auth_throttle_record(u, "mine", "10.0.0.9", 1, true);
    assert_int_equal(wait_for(u, "mine", "10.0.0.9", 1), 0);
    fail_n(u, "u9", "10.0.0.9", 2, 1);
    assert_int_equal(wait_for(u, "mine", "10.0.0.9", 2), 10);
    auth_throttle_free(u);
    auth_throttle_free(t);
}

static void t_address(void **state)
{
    (void)state;
    AuthThrottle *t = auth_throttle_new(&small);
    char acc[16];
    /* one failure on each of 5 accounts: no account is locked, the address is */
    for (int i = 0; i < 5; i++) {
        snprintf(acc, sizeof acc, "user%d", i);
        assert_int_equal(wait_for(t, acc, "192.0.2.7", 0), 0);
        fail_n(t, acc, "192.0.2.7", 0, 1);
    }
    assert_int_equal(wait_for(t, "user0", "192.0.2.7", 0), 10);
    assert_int_equal(wait_for(t, "someone-else", "192.0.2.7", 0), 10);
    assert_int_equal(wait_for(t, NULL, "192.0.2.7", 0), 10);
    assert_int_equal(wait_for(t, "user0", "192.0.2.8", 0), 0);
    assert_int_equal(wait_for(t, "someone-else", "192.0.2.8", 0), 0);
    assert_int_equal(wait_for(t, "user0", "192.0.2.7", 10), 0);
    /* the longer of two lockouts is the wait */
    fail_n(t, "user0", "192.0.2.8", 20, 2); /* user0: 3 failures within the window */
    assert_int_equal(wait_for(t, "user0", NULL, 20), 10);
    for (int i = 0; i < 5; i++) { /* the address's second lockout: 20 s */
        snprintf(acc, sizeof acc, "other%d", i);
        fail_n(t, acc, "192.0.2.7", 21, 1);
    }
    assert_int_equal(wait_for(t, NULL, "192.0.2.7", 21), 20);
    assert_int_equal(wait_for(t, "user0", "192.0.2.7", 21), 20);
    assert_int_equal(wait_for(t, "user0", "192.0.2.8", 21), 9);
    auth_throttle_free(t);
}

static void t_names(void **state)
{
    (void)state;
    AuthThrottle *t = auth_throttle_new(&small);
    /* case and accents of an account do not buy more attempts */
    fail_n(t, "Alice", NULL, 0, 1);
    fail_n(t, "ALICE", NULL, 0, 1);
    fail_n(t, "\xc3\x81lice", NULL, 0, 1); /* Álice */
    assert_int_equal(wait_for(t, "alice", NULL, 0), 10);
    assert_int_equal(wait_for(t, "alicia", NULL, 0), 0);
    /* an account and an address spelled alike are distinct records */
    fail_n(t, "10.0.0.1", NULL, 0, 3);
    assert_int_equal(wait_for(t, NULL, "10.0.0.1", 0), 0);
    /* not UTF-8: still counted, ASCII case folded */
    fail_n(t, "B\xff", NULL, 0, 2);
    fail_n(t, "b\xff", NULL, 0, 1);
    assert_int_equal(wait_for(t, "B\xff", NULL, 0), 10);
    auth_throttle_free(t);
}

static void t_eviction(void **state)
{
    (void)state;
    AuthThrottlePolicy p = small;
    p.max_failures = 1;
    p.max_entries = 4;
    AuthThrottle *t = auth_throttle_new(&p);
    char acc[16];
    for (int i = 0; i < 4; i++) {
        snprintf(acc, sizeof acc, "a%d", i);
        fail_n(t, acc, NULL, 0, 1);
    }
    for (int i = 0; i < 4; i++) {
        snprintf(acc, sizeof acc, "a%d", i);
        assert_int_equal(wait_for(t, acc, NULL, 0), 10);
    }
    fail_n(t, "a4", NULL, 0, 1); /* a0 is the least recently used */
    assert_int_equal(wait_for(t, "a0", NULL, 0), 0);
    assert_int_equal(wait_for(t, "a4", NULL, 0), 10);
    assert_int_equal(wait_for(t, "a1", NULL, 0), 10); /* a1 is now the most recent */
    fail_n(t, "a5", NULL, 0, 1);                      /* evicts a2, not a1 */
    assert_int_equal(wait_for(t, "a2", NULL, 0), 0);
    assert_int_equal(wait_for(t, "a1", NULL, 0), 10);
    /* whatever the traffic, at most max_entries records are kept */
    for (int i = 0; i < 1000; i++) {
        snprintf(acc, sizeof acc, "b%d", i);
        fail_n(t, acc, NULL, 1, 1);
    }
    int locked = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(acc, sizeof acc, "b%d", i);
        locked += wait_for(t, acc, NULL, 1) > 0;
    }
    assert_int_equal(locked, 4);
    auth_throttle_free(t);
}

static void t_defaults(void **state)
{
    (void)state;
    /* NULL policy: 5 failures lock for 900 s; zero fields take the defaults too */
    AuthThrottle *t = auth_throttle_new(NULL);
    AuthThrottlePolicy zero = {0};
    AuthThrottle *u = auth_throttle_new(&zero);
    AuthThrottle *both[] = {t, u};
    for (int k = 0; k < 2; k++) {
        fail_n(both[k], "a", NULL, 0, 4);
        assert_int_equal(wait_for(both[k], "a", NULL, 0), 0);
        fail_n(both[k], "a", NULL, 899, 1);
        assert_int_equal(wait_for(both[k], "a", NULL, 899), 900);
        fail_n(both[k], "b", NULL, 0, 4);
        fail_n(both[k], "b", NULL, 900, 1); /* the first left the 900 s window */
        assert_int_equal(wait_for(both[k], "b", NULL, 900), 0);
    }
    auth_throttle_free(u);
    auth_throttle_free(t);
}

/* ---------------------------------------------------------------- threads */

typedef struct Hammer {
    AuthThrottle *t;
    int id;
} Hammer;

static void *hammer(void *arg)
{
    Hammer *h = arg;
    char acc[32], addr[32];
    unsigned seed = (unsigned)h->id * 2654435761u;
    for (int i = 0; i < 20000; i++) {
        seed = seed * 1103515245u + 12345u;
        snprintf(acc, sizeof acc, "user%u", (seed >> 8) % 97);
        snprintf(addr, sizeof addr, "10.0.%d.%u", h->id, (seed >> 16) % 7);
        int64_t now = i / 10, retry;
        if (auth_throttle_check(h->t, acc, addr, now, &retry) == 0)
            auth_throttle_record(h->t, acc, addr, now, (seed >> 4) % 5 == 0);
        auth_throttle_record(h->t, "shared", NULL, 5000, false);
    }
    return NULL;
}

static void t_threads(void **state)
{
    (void)state;
    AuthThrottlePolicy p = small;
    p.max_entries = 64; /* far fewer than the names used: eviction all along */
    AuthThrottle *t = auth_throttle_new(&p);
    enum { N = 4 };
    pthread_t th[N];
    Hammer h[N];
    for (int i = 0; i < N; i++) {
        h[i] = (Hammer){t, i};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &h[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    /* "shared" was touched by every thread to the end: locked for at most max_lockout_s */
    int64_t w = wait_for(t, "shared", NULL, 5000);
    assert_true(w > 0 && w <= 35);
    /* the table still works */
    assert_int_equal(lock_now(t, "fresh", 6000), 10);
    auth_throttle_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_lockout),  cmocka_unit_test(t_window),   cmocka_unit_test(t_doubling),
        cmocka_unit_test(t_success),  cmocka_unit_test(t_address),  cmocka_unit_test(t_names),
        cmocka_unit_test(t_eviction), cmocka_unit_test(t_defaults), cmocka_unit_test(t_threads),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
