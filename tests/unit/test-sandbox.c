/* SPDX-License-Identifier: MIT */
/* The sandbox library's pure parts: path normalisation, the mount plan, the report. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "sandbox/mount.h"
#include "sandbox/report.h"
#include "sandbox/sandbox.h"
#include "unit.h"

static void test_normalize_path(void **state)
{
        static const struct {
                const char *in, *out;
                int r;
        } cases[] = {
                {"/a", "/a", 0},
                {"/a/b", "/a/b", 0},
                {"//a///b/", "/a/b", 0},
                {"/a/.../b", "/a/.../b", 0},
                {"/", NULL, -EINVAL},
                {"///", NULL, -EINVAL},
                {"a/b", NULL, -EINVAL},
                {"", NULL, -EINVAL},
                {"/a/../b", NULL, -EINVAL},
                {"/..", NULL, -EINVAL},
                {"/a/./b", NULL, -EINVAL},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *out = NULL;
                int r = mount_normalize_path(cases[i].in, &out);

                assert_int_equal(r, cases[i].r);
                if (cases[i].out)
                        assert_string_equal(out, cases[i].out);
                else
                        assert_null(out);
        }
}

static void test_normalize_long_component(void **state)
{
        char path[300];
        _cleanup_free_ char *out = NULL;

        path[0] = '/';
        memset(path + 1, 'x', 256);
        path[257] = '\0';
        assert_int_equal(mount_normalize_path(path, &out), -ENAMETOOLONG);
}

static const struct mount_op *find_op(const struct mount_plan *plan, const char *dst)
{
        for (size_t i = 0; i < plan->n; i++)
                if (strcmp(plan->ops[i].dst, dst) == 0)
                        return &plan->ops[i];
        return NULL;
}

static void test_plan_host_profile(void **state)
{
        char *argv[] = {"/bin/true", NULL};
        struct sandbox_mount m[] = {
                {.kind = SANDBOX_TMPFS, .dst = "/scratch", .size = 1 << 20},
                {.kind = SANDBOX_BIND_RO, .src = "/etc/hostname", .dst = "/data//x/"},
        };
        struct sandbox_config cfg = {.argv = argv, .mounts = m, .n_mounts = 2};
        struct mount_plan *plan = NULL;
        const struct mount_op *op;

        assert_int_equal(mount_plan_build(&cfg, &plan, NULL), 0);
        op = find_op(plan, "/usr");
        assert_non_null(op);
        assert_int_equal(op->kind, MOUNT_OP_BIND);
        assert_true(op->ro);
        assert_non_null(find_op(plan, "/etc/passwd"));
        assert_non_null(find_op(plan, "/proc"));
        assert_non_null(find_op(plan, "/dev"));
        op = find_op(plan, "/tmp");
        assert_non_null(op);
        assert_int_equal(op->kind, MOUNT_OP_TMPFS);
        assert_int_equal(op->size, SANDBOX_DEFAULT_TMP_SIZE);
        op = find_op(plan, "/scratch");
        assert_non_null(op);
        assert_true(op->sandbox_owned);
        op = find_op(plan, "/data/x");
        assert_non_null(op);
        assert_false(op->src_is_dir);
        /* Nothing of the host's /etc beyond the loader's files. */
        assert_null(find_op(plan, "/etc/shadow"));
        assert_null(find_op(plan, "/home"));
        assert_null(find_op(plan, "/root"));
        mount_plan_free(plan);
}

static void test_plan_user_tmp_replaces_default(void **state)
{
        char *argv[] = {"/bin/true", NULL};
        struct sandbox_mount m[] = {{.kind = SANDBOX_TMPFS, .dst = "/tmp", .size = 4096}};
        struct sandbox_config cfg = {.argv = argv, .mounts = m, .n_mounts = 1};
        struct mount_plan *plan = NULL;
        size_t n = 0;

        assert_int_equal(mount_plan_build(&cfg, &plan, NULL), 0);
        for (size_t i = 0; i < plan->n; i++)
                if (strcmp(plan->ops[i].dst, "/tmp") == 0) {
                        n++;
                        assert_int_equal(plan->ops[i].size, 4096);
                        assert_int_equal(plan->ops[i].mode, 01777);
                }
        assert_int_equal(n, 1);
        mount_plan_free(plan);
}

static void test_plan_rejects(void **state)
{
        char *argv[] = {"/bin/true", NULL};
        static const struct sandbox_mount bad[] = {
                {.kind = SANDBOX_BIND_RO, .src = "/nonexistent-src", .dst = "/x"},
                {.kind = SANDBOX_BIND_RO, .src = "relative", .dst = "/x"},
                {.kind = SANDBOX_BIND_RO, .src = "/tmp", .dst = "/a/../etc"},
                {.kind = SANDBOX_BIND_RO, .src = "/tmp", .dst = "/"},
                {.kind = SANDBOX_BIND_RW, .src = "/tmp", .dst = "/proc/sys"},
                {.kind = SANDBOX_TMPFS, .dst = "/dev/x", .size = 1},
                {.kind = SANDBOX_TMPFS, .dst = "/x", .size = 0},
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct sandbox_config cfg = {.argv = argv, .mounts = &bad[i], .n_mounts = 1};
                struct mount_plan *plan = NULL;
                const char *culprit = NULL;

                assert_true(mount_plan_build(&cfg, &plan, &culprit) < 0);
                assert_null(plan);
                assert_non_null(culprit);
        }

        struct sandbox_config cfg = {.argv = argv, .rootfs = "/nonexistent-rootfs"};
        struct mount_plan *plan = NULL;
        assert_int_equal(mount_plan_build(&cfg, &plan, NULL), -ENOENT);
        cfg.rootfs = "/etc/hostname";
        assert_int_equal(mount_plan_build(&cfg, &plan, NULL), -ENOTDIR);
}

static void test_report_json(void **state)
{
        struct sandbox_report rep = {
                .status = SANDBOX_SIGNALED,
                .exit_code = -1,
                .signal = 9,
                .wall_ns = 1500000000,
                .cpu_ns = 250000000,
                .user_ns = 200000000,
                .sys_ns = 50000000,
                .peak_memory = 4096,
                .stdout_bytes = 3,
                .stderr_bytes = 0,
                .oom_killed = true,
        };
        static const char *const fields[] = {
                "status",       "exit_code",    "signal",     "wall_time",
                "cpu_time",     "user_time",    "sys_time",   "peak_memory",
                "stdout_bytes", "stderr_bytes", "oom_killed", "error",
        };
        _cleanup_free_ char *s = sandbox_report_to_json(&rep);
        json_error_t err;
        json_t *o;

        assert_non_null(s);
        o = json_loads(s, 0, &err);
        assert_non_null(o);
        assert_int_equal(json_object_size(o), ELEMENTSOF(fields));
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                assert_non_null(json_object_get(o, fields[i]));
        assert_string_equal(json_string_value(json_object_get(o, "status")), "signaled");
        assert_true(json_is_null(json_object_get(o, "exit_code")));
        assert_int_equal(json_integer_value(json_object_get(o, "signal")), 9);
        assert_true(json_real_value(json_object_get(o, "wall_time")) == 1.5);
        assert_true(json_is_true(json_object_get(o, "oom_killed")));
        assert_true(json_is_null(json_object_get(o, "error")));
        json_decref(o);
}

static void test_exit_codes(void **state)
{
        struct sandbox_report r = {.exit_code = -1};

        r.status = SANDBOX_EXITED;
        r.exit_code = 3;
        assert_int_equal(sandbox_report_exit_code(&r), 3);
        r.exit_code = -1;
        r.status = SANDBOX_SIGNALED;
        r.signal = 15;
        assert_int_equal(sandbox_report_exit_code(&r), 143);
        r.status = SANDBOX_WALL_TIME_LIMIT;
        r.signal = 9;
        assert_int_equal(sandbox_report_exit_code(&r), 137);
        r.status = SANDBOX_EXEC_ERROR;
        r.error_errno = ENOENT;
        assert_int_equal(sandbox_report_exit_code(&r), 127);
        r.error_errno = EACCES;
        assert_int_equal(sandbox_report_exit_code(&r), 126);
        r.status = SANDBOX_INTERNAL_ERROR;
        assert_int_equal(sandbox_report_exit_code(&r), 125);
        for (int s = 0; s < _SANDBOX_STATUS_MAX; s++)
                assert_non_null(sandbox_status_to_string(s));
        assert_null(sandbox_status_to_string(_SANDBOX_STATUS_MAX));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_normalize_path),
                cmocka_unit_test(test_normalize_long_component),
                cmocka_unit_test(test_plan_host_profile),
                cmocka_unit_test(test_plan_user_tmp_replaces_default),
                cmocka_unit_test(test_plan_rejects),
                cmocka_unit_test(test_report_json),
                cmocka_unit_test(test_exit_codes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
