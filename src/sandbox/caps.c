/* SPDX-License-Identifier: MIT */
#include "caps.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "common/cleanup.h"
#include "common/util.h"

int caps_last_cap(void)
{
        _cleanup_free_ char *s = NULL;
        uint64_t v;
        int r;

        r = read_file_at(AT_FDCWD, "/proc/sys/kernel/cap_last_cap", 32, &s);
        if (r < 0)
                return CAP_LAST_CAP;
        s[strcspn(s, "\n")] = '\0';
        r = parse_uint(s, 0, 63, &v);
        if (r < 0)
                return CAP_LAST_CAP;
        return (int) v;
}

int caps_drop_bounding(int last_cap)
{
        for (int c = 0; c <= last_cap; c++)
                if (prctl(PR_CAPBSET_DROP, (unsigned long) c, 0, 0, 0) < 0 && errno != EINVAL)
                        return -errno;
        return 0;
}

static int caps_set(int keep)
{
        struct __user_cap_header_struct hdr = {
                .version = _LINUX_CAPABILITY_VERSION_3,
                .pid = 0,
        };
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -errno;
        memset(data, 0, sizeof(data));
        if (keep >= 0) {
                data[keep / 32].permitted = data[keep / 32].effective = UINT32_C(1) << (keep % 32);
        }
        if (syscall(SYS_capset, &hdr, data) < 0)
                return -errno;
        return 0;
}

int caps_drop_all(void)
{
        return caps_set(-1);
}

int caps_keep_only(int cap)
{
        if (cap < 0 || cap >= 32 * _LINUX_CAPABILITY_U32S_3)
                return -EINVAL;
        return caps_set(cap);
}
