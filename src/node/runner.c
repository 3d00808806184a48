/* SPDX-License-Identifier: MIT */
/*
 * The local runners: one thread per spawner slot. A runner claims the next queued job (a
 * compare-and-set in the store, so no job runs twice at once), makes its work directory, runs
 * the app's build step and then its run step in the slot's sandbox, streams what they print to
 * the hub while they run, and stores the result: the reports, stdout and stderr (inline up to
 * NODE_INLINE_MAX, else as blobs), and the output files the job declared.
 *
 * A job ends as
 *   finished   the steps ran, whatever the program did (the reports say how it ended);
 *   failed     Warren could not run it (app gone, spawner gone, no memory, a sandbox
 *              internal_error): the error says why;
 *   cancelled  DELETE on it: the handler moved it to cancelled and asked us to kill it;
 *   queued     again, when the node stops before the job could finish.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "node/app.h"
#include "node/node.h"
#include "node/worker.h"
#include "sandbox/report.h"

#define READ_CHUNK   (16u << 10)
#define STOP_GRACE_S 10

struct node_runner {
        struct node *node;
        unsigned slot;
        pthread_t thread;
        bool started;

        pthread_mutex_t lock; /* guards job_id, cancelled and requeue */
        char job_id[STORE_JOB_ID_SIZE];
        bool cancelled; /* the running job was cancelled: run no further step */
        bool requeue;   /* the node is stopping: put the job back in the queue */
};

void node_publish_json(struct node *n, const char *id, const char *event, json_t *data)
{
        _cleanup_free_ char *text = NULL;

        if (!data)
                return;
        text = json_dumps(data, JSON_COMPACT);
        json_decref(data);
        if (text)
                (void) hub_publish(n->hub, id, event, text, strlen(text));
}

int node_set_content(json_t *obj, const char *data, size_t len)
{
        _cleanup_free_ char *b64 = NULL;

        if (utf8_valid(data, len))
                return json_object_set_new(obj, "text", json_stringn(data, len));
        b64 = base64_encode(data, len);
        if (!b64)
                return -1;
        return json_object_set_new(obj, "base64", json_string(b64));
}

/* A result blob: inline when small, else stored; url names it under the job. */
static json_t *blob_json(struct node *n, const char *job_id, const char *data, size_t len)
{
        char id[BLOB_HEX_SIZE];
        json_t *o;
        int r;

        if (len > NODE_INLINE_MAX) {
                r = blob_put(n->blobs, data, len, id);
                if (r < 0) {
                        log_error_errno(r, "event=blob_put job=%s failed: %m", job_id);
                        return NULL;
                }
        } else
                blob_digest(data, len, id);
        o = json_pack("{s:I, s:s}", "size", (json_int_t) len, "sha256", id);
        if (!o)
                return NULL;
        if (len > NODE_INLINE_MAX) {
                if (json_object_set_new(o, "url",
                                        json_sprintf("/api/v1/jobs/%s/blobs/%s", job_id, id)) < 0)
                        goto fail;
        } else if (node_set_content(o, data, len) < 0)
                goto fail;
        return o;
fail:
        json_decref(o);
        return NULL;
}

/* A growing capture of one stream, bounded by the sandbox's own output limit. */
struct capture {
        char *data;
        size_t len, cap;
};

static int capture_add(struct capture *c, const char *p, size_t len)
{
        if (c->len + len > c->cap) {
                size_t cap = c->cap ? c->cap : READ_CHUNK;
                char *d;

                while (cap < c->len + len)
                        cap *= 2;
                d = realloc(c->data, cap);
                if (!d)
                        return -ENOMEM;
                c->data = d;
                c->cap = cap;
        }
        memcpy(c->data + c->len, p, len);
        c->len += len;
        return 0;
}

struct step_io {
        struct node *node;
        const char *job_id;
        const char *lease; /* a worker's: the lease of the job; else NULL */
        const char *step;  /* "build", "run" */
        struct capture out, err;
};

/* Reads what is there (non-blocking) from fd; 0 at EOF, 1 if more may come. */
static int pump(struct step_io *io, int fd, bool is_err)
{
        char buf[READ_CHUNK];

        for (;;) {
                ssize_t k = read(fd, buf, sizeof(buf));
                json_t *ev;

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 1;
                        return -errno;
                }
                if (k == 0)
                        return 0;
                if (capture_add(is_err ? &io->err : &io->out, buf, (size_t) k) < 0)
                        return -ENOMEM;
                if (io->node->agent) {
                        /* A worker: the output goes to the master, which publishes it. */
                        worker_agent_output(io->node->agent, io->lease, io->step,
                                            is_err ? "stderr" : "stdout", buf, (size_t) k);
                        continue;
                }
                ev = json_pack("{s:s, s:s}", "step", io->step, "stream",
                               is_err ? "stderr" : "stdout");
                if (ev && node_set_content(ev, buf, (size_t) k) < 0) {
                        json_decref(ev);
                        ev = NULL;
                }
                node_publish_json(io->node, io->job_id, "output", ev);
        }
}

static bool spawner_gone(int r)
{
        return r == -EPIPE || r == -ECONNRESET || r == -ENOTCONN;
}

/*
 * Runs one step in the runner's slot, streaming its output; *ret gets the report. Negative
 * errno only when Warren could not run it.
 */
static int run_step(struct node_runner *ru, struct step_io *io, struct sandbox_config *cfg,
                    struct sandbox_report *ret)
{
        struct node *n = ru->node;
        _cleanup_close_ int out_r = -EBADF, out_w = -EBADF, err_r = -EBADF, err_w = -EBADF;
        int p[2], r;
        uint64_t t0, t1;
        bool out_open = true, err_open = true;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        out_r = p[0];
        out_w = p[1];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        err_r = p[0];
        err_w = p[1];
        if (fcntl(out_r, F_SETFL, O_NONBLOCK) < 0 || fcntl(err_r, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        cfg->stdout_fd = out_w;
        cfg->stderr_fd = err_w;

        t0 = now_ns(CLOCK_MONOTONIC);
        r = spawner_start(n->spawner, ru->slot, cfg);
        if (spawner_gone(r)) {
                /* It died between jobs: nothing of this job ran yet, so a new one runs it. */
                log_error_errno(r, "event=spawner_dead slot=%u: %m; starting a new one", ru->slot);
                r = spawner_respawn(n->spawner, ru->slot);
                if (r >= 0)
                        r = spawner_start(n->spawner, ru->slot, cfg);
        }
        /* The spawner holds its own copies now: EOF on our ends comes when it closes them. */
        out_w = safe_close(out_w);
        err_w = safe_close(err_w);
        if (r < 0)
                return r;

        for (;;) {
                struct pollfd pf[3] = {
                        {.fd = out_open ? out_r : -1, .events = POLLIN},
                        {.fd = err_open ? err_r : -1, .events = POLLIN},
                        {.fd = spawner_fd(n->spawner, ru->slot), .events = POLLIN},
                };

                if (poll(pf, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (out_open && pf[0].revents) {
                        r = pump(io, out_r, false);
                        if (r < 0)
                                return r;
                        out_open = r > 0;
                }
                if (err_open && pf[1].revents) {
                        r = pump(io, err_r, true);
                        if (r < 0)
                                return r;
                        err_open = r > 0;
                }
                if (pf[2].revents)
                        break;
        }
        r = spawner_finish(n->spawner, ru->slot, ret);
        if (spawner_gone(r)) {
                /* It died under this job, which fails (Warren's fault); the next gets a new one. */
                log_error_errno(r, "event=spawner_dead slot=%u: %m; starting a new one", ru->slot);
                if (spawner_respawn(n->spawner, ru->slot) < 0)
                        log_error("event=spawner_respawn_failed slot=%u", ru->slot);
        }
        if (r < 0)
                return r;
        t1 = now_ns(CLOCK_MONOTONIC);
        if (t1 - t0 > ret->wall_ns)
                metrics_observe_spawn(n->metrics, (double) (t1 - t0 - ret->wall_ns) / 1e9);
        /* The report comes after the last byte was copied: drain what is left. */
        if (out_open && pump(io, out_r, false) < 0)
                return -EIO;
        if (err_open && pump(io, err_r, true) < 0)
                return -EIO;
        return 0;
}

static json_t *step_json(struct node *n, const char *job_id, const struct sandbox_report *rep,
                         struct step_io *io)
{
        _cleanup_free_ char *text = sandbox_report_to_json(rep);
        json_t *report, *o, *out, *err;

        if (!text)
                return NULL;
        report = json_loads(text, 0, NULL);
        out = blob_json(n, job_id, io->out.data ? io->out.data : "", io->out.len);
        err = blob_json(n, job_id, io->err.data ? io->err.data : "", io->err.len);
        o = json_pack("{s:o?, s:o?, s:o?}", "report", report, "stdout", out, "stderr", err);
        if (!o || !report || !out || !err) {
                json_decref(o);
                return NULL;
        }
        return o;
}

/* A memfd holding data, for the sandbox's stdin. */
static int stdin_fd(const char *data, size_t len)
{
        _cleanup_close_ int fd = memfd_create("warren-stdin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        int r;

        if (fd < 0)
                return -errno;
        r = write_full(fd, data, len);
        if (r < 0)
                return r;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        (void) fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
        return TAKE_FD(fd);
}

struct workdir {
        char *path;
        int fd;
        bool mounted;
};

static int workdir_make(struct node *n, const char *id, struct workdir *w)
{
        _cleanup_free_ char *opts = NULL;

        if (asprintf(&w->path, "%s/%s", n->work_root, id) < 0) {
                w->path = NULL;
                return -ENOMEM;
        }
        if (mkdir(w->path, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (n->work_tmpfs) {
                if (asprintf(&opts, "size=%" PRIu64 ",mode=0777,nr_inodes=65536",
                             n->opts.work_size) < 0) {
                        opts = NULL;
                        return -ENOMEM;
                }
                if (mount("tmpfs", w->path, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
                        return -errno;
                w->mounted = true;
        } else if (chmod(w->path, 0777) < 0)
                return -errno;
        w->fd = open(w->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (w->fd < 0)
                return -errno;
        return 0;
}

static void workdir_remove(struct workdir *w)
{
        if (w->fd >= 0 && !w->mounted)
                (void) app_workdir_clear(w->fd);
        w->fd = safe_close(w->fd);
        if (w->mounted && umount2(w->path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
                log_warning_errno(-errno, "Failed to unmount '%s': %m", w->path);
        if (w->path && rmdir(w->path) < 0 && errno != ENOENT)
                log_warning_errno(-errno, "Failed to remove '%s': %m", w->path);
        free(w->path);
        *w = (struct workdir){.fd = -EBADF};
}

static bool runner_flag(struct node_runner *ru, bool *flag)
{
        bool v;

        (void) pthread_mutex_lock(&ru->lock);
        v = *flag;
        (void) pthread_mutex_unlock(&ru->lock);
        return v;
}

static void set_error(char **ret, const char *fmt, ...) _printf_(2, 3);

static void set_error(char **ret, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(ret, fmt, ap) < 0)
                *ret = NULL;
        va_end(ap);
}

/*
 * The inputs of a local job, checked again (the owner's right to use each may have changed since
 * the job was queued) and resolved to their digests. 0, or an error text in *ret_error.
 */
static int resolve_inputs(struct store *st, const struct store_job *job, const struct jobspec *js,
                          struct node_exec *ex, char **ret_error)
{
        _cleanup_(store_user_clear) struct store_user owner = {};
        _cleanup_free_ int64_t *groups = NULL;
        struct auth_subject who;
        size_t n_groups = 0;
        int r;

        if (js->n_inputs == 0)
                return 0;
        r = store_user_get(st, job->acl.owner, &owner);
        if (r >= 0)
                r = store_user_groups(st, owner.id, &groups, &n_groups);
        if (r < 0)
                return set_error(ret_error, "input_denied: the job's owner cannot be read: %s",
                                 strerror(-r)),
                       r;
        who = (struct auth_subject){.user = owner.id,
                                    .rights = (enum auth_rights) owner.rights,
                                    .groups = groups,
                                    .n_groups = n_groups};
        if (owner.state != STORE_USER_ACTIVE)
                who.rights = AUTH_RIGHTS_NONE;

        ex->inputs = calloc(js->n_inputs, sizeof(*ex->inputs));
        if (!ex->inputs)
                return -ENOMEM;
        for (size_t i = 0; i < js->n_inputs; i++) {
                _cleanup_(store_data_clear) struct store_data d = {};
                const char *id = js->inputs[i].data;
                struct auth_object obj;

                r = store_data_get(st, id, &d);
                if (r == -ENOENT)
                        return set_error(ret_error,
                                         "input_missing: the data '%s' (input %zu) is gone", id, i),
                               r;
                if (r < 0)
                        return set_error(ret_error, "cannot read the data '%s': %s", id,
                                         strerror(-r)),
                               r;
                obj = node_acl_object(&d.acl);
                r = auth_check(&who, AUTH_ACTION_DATA_USE, &obj, AUTH_PERM_EXEC);
                if (r < 0 || d.confidential)
                        return set_error(ret_error,
                                         "input_denied: the job's owner may no longer use the data "
                                         "'%s' (input %zu)",
                                         id, i),
                               -EPERM;
                memcpy(ex->inputs[i].sha256, d.sha256, sizeof(ex->inputs[i].sha256));
                ex->inputs[i].size = d.size;
                ex->inputs[i].data_id = strdup(d.id);
                if (!ex->inputs[i].data_id)
                        return -ENOMEM;
                ex->n_inputs = i + 1;
        }
        return 0;
}

/*
 * Copies the job's inputs from the blob store into its work directory, each verified (size and
 * SHA-256) in the same pass as it is copied: a damaged one fails the job (input_corrupt,
 * Warren's fault) before the sandbox starts, and its file is removed, so no byte of it reaches
 * the job.
 */
static int copy_inputs(struct node *n, struct store *st, const struct node_exec *ex,
                       const struct jobspec *js, int dirfd, char **ret_error)
{
        int r;

        if (ex->n_inputs != js->n_inputs)
                return set_error(ret_error, "the job's inputs do not match its spec"), -EINVAL;
        for (size_t i = 0; i < ex->n_inputs; i++) {
                _cleanup_close_ int fd = -EBADF;
                const struct node_exec_input *in = &ex->inputs[i];
                const char *path = js->inputs[i].path;
                const char *label = in->data_id ? in->data_id : in->sha256;

                fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                            0644);
                if (fd < 0 || fchmod(fd, 0644) < 0) {
                        r = -errno;
                        return set_error(ret_error, "cannot write the input '%s': %s", path,
                                         strerror(-r)),
                               r;
                }
                r = blob_copy_to_fd(n->blobs, in->sha256, in->size, fd);
                if (r < 0) {
                        (void) unlinkat(dirfd, path, 0);
                        if (r == -EBADMSG || r == -ENOENT) {
                                log_error("event=data_corrupt data=%s sha256=%s job=%s", label,
                                          in->sha256, ex->job_id);
                                if (st && in->data_id) {
                                        char object[64];

                                        (void) snprintf(object, sizeof(object), "data:%s",
                                                        in->data_id);
                                        (void) store_audit_append(st, 0, "data_corrupt", object,
                                                                  "as an input of a job", NULL);
                                }
                                return set_error(ret_error,
                                                 "input_corrupt: the data '%s' (input %zu) does "
                                                 "not match its size and SHA-256",
                                                 label, i),
                                       -EBADMSG;
                        }
                        return set_error(ret_error, "cannot copy the input '%s': %s", path,
                                         r == -ENOSPC ? "the work directory is full"
                                                      : strerror(-r)),
                               r;
                }
                if (close(TAKE_FD(fd)) < 0) {
                        r = -errno;
                        return set_error(ret_error, "cannot write the input '%s': %s", path,
                                         strerror(-r)),
                               r;
                }
        }
        return 0;
}

void node_exec_done(struct node_exec *ex)
{
        if (!ex)
                return;
        free(ex->spec);
        free(ex->app_name);
        free(ex->app_spec);
        for (size_t i = 0; i < ex->n_inputs; i++)
                free(ex->inputs[i].data_id);
        free(ex->inputs);
        *ex = (struct node_exec){};
}

/* A job of the local store as something to execute: its spec, its app's, its inputs. */
static int prepare_local(struct store *st, const struct store_job *job, struct node_exec *ex,
                         char **ret_error)
{
        _cleanup_(store_app_clear) struct store_app app = {};
        _cleanup_(jobspec_done) struct jobspec js = {};
        struct jobspec_bounds bounds = JOBSPEC_BOUNDS_DEFAULT;
        struct json_error jerr = {};
        int r;

        memcpy(ex->job_id, job->id, sizeof(ex->job_id));
        bounds.max_body = SIZE_MAX / 2;
        r = jobspec_decode(job->spec, strlen(job->spec), &bounds, &js, &jerr);
        if (r < 0)
                return set_error(ret_error, "the stored job does not decode: %s", jerr.message),
                       -EBADMSG;
        if (job->app_id == 0)
                return (*ret_error = strdup("the job's app was deleted")), -ENOENT;
        r = store_app_get(st, job->app_id, &app);
        if (r < 0)
                return set_error(ret_error, "the job's app cannot be read: %s", strerror(-r)), r;
        ex->spec = strdup(job->spec);
        ex->app_name = strdup(app.name);
        ex->app_spec = strdup(app.spec);
        if (!ex->spec || !ex->app_name || !ex->app_spec)
                return -ENOMEM;
        return resolve_inputs(st, job, &js, ex, ret_error);
}

/*
 * Runs a job (from the local store, or assigned by a master); returns its result (JSON text) or
 * an error text in *ret_error. st (may be NULL) is for the audit log.
 */
static int run_job(struct node_runner *ru, struct store *st, const struct node_exec *ex,
                   char **ret_result, char **ret_error)
{
        struct node *n = ru->node;
        _cleanup_(app_spec_done) struct app_spec spec = {};
        _cleanup_(jobspec_done) struct jobspec js = {};
        struct workdir wd = {.fd = -EBADF};
        struct jobspec_bounds bounds = JOBSPEC_BOUNDS_DEFAULT;
        struct jobspec_limits limits;
        struct json_error jerr = {};
        struct sandbox_report rep = {};
        _cleanup_json_ json_t *result = NULL;
        _cleanup_close_ int in_fd = -EBADF;
        const char *job_id = ex->job_id;
        bool ran = false;
        int r;

        bounds.max_body = SIZE_MAX / 2;
        r = jobspec_decode(ex->spec, strlen(ex->spec), &bounds, &js, &jerr);
        if (r < 0)
                return set_error(ret_error, "the job does not decode: %s", jerr.message), -EBADMSG;
        r = app_spec_decode(ex->app_spec, strlen(ex->app_spec), &spec, &jerr);
        if (r < 0)
                return set_error(ret_error, "the app '%s' does not decode: %s", ex->app_name,
                                 jerr.message),
                       r;
        r = app_run_limits(&spec, &js, &limits, &jerr);
        if (r < 0)
                return set_error(ret_error, "%s", jerr.message), r;

        result = json_object();
        if (!result)
                return -ENOMEM;
        r = workdir_make(n, job_id, &wd);
        if (r < 0) {
                set_error(ret_error, "cannot make the work directory: %s", strerror(-r));
                goto out;
        }
        r = app_workdir_populate(wd.fd, &spec, &js);
        if (r < 0) {
                set_error(ret_error, "cannot write the job's files: %s", strerror(-r));
                goto out;
        }
        r = copy_inputs(n, st, ex, &js, wd.fd, ret_error);
        if (r < 0)
                goto out;

        for (int i = 0; i < 2; i++) {
                const struct app_step *step = i == 0 ? &spec.build : &spec.run;
                const char *name = i == 0 ? "build" : "run";
                struct step_io io = {.node = n, .job_id = job_id, .lease = ex->lease, .step = name};
                struct sandbox_mount mounts[1];
                struct sandbox_config cfg;
                char **argv = NULL;
                json_t *sj;

                if (!step->argv)
                        continue;
                if (runner_flag(ru, &ru->cancelled) || runner_flag(ru, &ru->requeue)) {
                        r = -ECANCELED;
                        goto out;
                }
                r = app_expand_argv(step, &spec, &js, &argv);
                if (r < 0) {
                        set_error(ret_error, "cannot build the %s command: %s", name, strerror(-r));
                        goto out;
                }
                app_step_config(&spec, i == 0 ? &spec.build_limits : &limits, argv, wd.path, mounts,
                                &cfg);
                cfg.stdin_fd = -1;
                if (i == 1 && js.stdin_data) {
                        in_fd = stdin_fd(js.stdin_data, js.stdin_size);
                        if (in_fd < 0) {
                                r = in_fd;
                                strv_free(argv);
                                set_error(ret_error, "cannot pass stdin: %s", strerror(-r));
                                goto out;
                        }
                        cfg.stdin_fd = in_fd;
                }
                r = run_step(ru, &io, &cfg, &rep);
                strv_free(argv);
                if (r < 0) {
                        free(io.out.data);
                        free(io.err.data);
                        set_error(ret_error, "the %s step could not run: %s", name, strerror(-r));
                        goto out;
                }
                sj = step_json(n, job_id, &rep, &io);
                free(io.out.data);
                free(io.err.data);
                if (!sj || json_object_set_new(result, name, sj) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                ran = true;
                if (rep.status == SANDBOX_INTERNAL_ERROR) {
                        r = -EIO;
                        if (rep.error_errno == EOPNOTSUPP)
                                set_error(ret_error,
                                          "this node cannot enforce the limits of the %s step "
                                          "(no usable cgroup: run the node as root, or give it a "
                                          "delegated cgroup)",
                                          name);
                        else
                                set_error(ret_error, "the sandbox of the %s step failed: %s", name,
                                          rep.error);
                        goto out;
                }
                /* A build that did not succeed ends the job: its report says why. */
                if (i == 0 && !(rep.status == SANDBOX_EXITED && rep.exit_code == 0))
                        break;
        }

        if (js.n_outputs > 0) {
                json_t *outs = json_object();

                if (!outs || json_object_set_new(result, "outputs", outs) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                for (size_t i = 0; i < js.n_outputs; i++) {
                        _cleanup_free_ char *data = NULL;
                        size_t len = 0;
                        json_t *b;

                        r = app_workdir_read(wd.fd, js.outputs[i], NODE_OUTPUT_FILE_MAX, &data,
                                             &len);
                        if (r < 0) {
                                /* Missing, or not a plain file within bounds: said, not fatal. */
                                b = json_pack("{s:s}", "error", strerror(-r));
                        } else
                                b = blob_json(n, job_id, data, len);
                        if (!b || json_object_set_new(outs, js.outputs[i], b) < 0) {
                                r = -ENOMEM;
                                goto out;
                        }
                }
        }
        if (ran && json_object_set_new(result, "exit_code",
                                       json_integer(sandbox_report_exit_code(&rep))) < 0) {
                r = -ENOMEM;
                goto out;
        }
        *ret_result = json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS);
        r = *ret_result ? 0 : -ENOMEM;
out:
        if (r < 0 && r != -ECANCELED && !*ret_error)
                *ret_error = strdup(strerror(-r));
        workdir_remove(&wd);
        return r;
}

void node_publish_end(struct node *n, struct store *st, const char *id)
{
        _cleanup_(store_job_clear) struct store_job j = {};
        _cleanup_free_ char *text = NULL;
        json_t *o;

        if (store_job_get(st, id, &j) < 0)
                return;
        o = node_job_json(st, &j, true);
        if (!o)
                return;
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (text)
                (void) hub_end(n->hub, id, text, strlen(text));
}

static void runner_handle(struct node_runner *ru, struct store *st, struct store_job *job)
{
        struct node *n = ru->node;
        _cleanup_free_ char *result = NULL, *error = NULL;
        uint64_t t0 = now_ns(CLOCK_MONOTONIC);
        int r;

        (void) pthread_mutex_lock(&ru->lock);
        memcpy(ru->job_id, job->id, sizeof(ru->job_id));
        ru->cancelled = false;
        (void) pthread_mutex_unlock(&ru->lock);
        atomic_fetch_add(&n->busy, 1);

        log_info("event=job_start job=%s attempt=%d slot=%u", job->id, job->attempts, ru->slot);
        node_publish_json(n, job->id, "state",
                          json_pack("{s:s, s:i}", "state", "running", "attempt", job->attempts));

        {
                _cleanup_(node_exec_done) struct node_exec ex = {};

                r = prepare_local(st, job, &ex, &error);
                if (r >= 0)
                        r = run_job(ru, st, &ex, &result, &error);
                else if (r != -ENOMEM && !error)
                        error = strdup(strerror(-r));
        }

        if (runner_flag(ru, &ru->requeue) && !runner_flag(ru, &ru->cancelled)) {
                /* The node is stopping and killed the job: it runs again at the next start. */
                r = store_job_transition(st, job->id, STORE_JOB_RUNNING, STORE_JOB_QUEUED);
                log_info("event=job_requeue job=%s", job->id);
        } else if (r == -ECANCELED || runner_flag(ru, &ru->cancelled)) {
                /* The handler that cancelled it has stored that already. */
                (void) store_job_finish(st, job->id, STORE_JOB_CANCELLED, NULL, NULL);
                log_info("event=job_end job=%s state=cancelled", job->id);
        } else if (r < 0) {
                r = store_job_finish(st, job->id, STORE_JOB_FAILED, NULL, error);
                log_info("event=job_end job=%s state=failed error='%s'", job->id,
                         error ? error : "");
        } else {
                r = store_job_finish(st, job->id, STORE_JOB_FINISHED, result, NULL);
                log_info("event=job_end job=%s state=finished", job->id);
        }
        if (r < 0 && r != -ESTALE)
                log_error_errno(r, "event=store_error job=%s: %m", job->id);
        metrics_observe_job(n->metrics, (double) (now_ns(CLOCK_MONOTONIC) - t0) / 1e9);
        if (!runner_flag(ru, &ru->requeue))
                node_publish_end(n, st, job->id);

        (void) pthread_mutex_lock(&ru->lock);
        ru->job_id[0] = '\0';
        (void) pthread_mutex_unlock(&ru->lock);
        atomic_fetch_sub(&n->busy, 1);
}

/*
 * A worker's runner: takes what the master assigned from the agent, runs it and hands the result
 * back to the agent, which sends it to the master. A cancelled job sends nothing: the master has
 * moved on.
 */
static void runner_remote(struct node_runner *ru)
{
        struct node *n = ru->node;

        for (;;) {
                _cleanup_(node_exec_done) struct node_exec ex = {};
                _cleanup_free_ char *result = NULL, *error = NULL;
                int r;

                r = worker_agent_take(n->agent, &ex);
                if (r < 0)
                        break;
                (void) pthread_mutex_lock(&ru->lock);
                memcpy(ru->job_id, ex.job_id, sizeof(ru->job_id));
                ru->cancelled = false;
                (void) pthread_mutex_unlock(&ru->lock);
                atomic_fetch_add(&n->busy, 1);
                log_info("event=job_start job=%s lease=%s slot=%u", ex.job_id, ex.lease, ru->slot);

                r = run_job(ru, NULL, &ex, &result, &error);
                if (runner_flag(ru, &ru->cancelled) || runner_flag(ru, &ru->requeue) ||
                    r == -ECANCELED) {
                        log_info("event=job_end job=%s lease=%s state=cancelled", ex.job_id,
                                 ex.lease);
                        worker_agent_result(n->agent, ex.lease, NULL, NULL);
                } else {
                        log_info("event=job_end job=%s lease=%s state=%s", ex.job_id, ex.lease,
                                 r < 0 ? "failed" : "finished");
                        worker_agent_result(n->agent, ex.lease, r < 0 ? NULL : result,
                                            r < 0 ? (error ? error : strerror(-r)) : NULL);
                }
                (void) pthread_mutex_lock(&ru->lock);
                ru->job_id[0] = '\0';
                (void) pthread_mutex_unlock(&ru->lock);
                atomic_fetch_sub(&n->busy, 1);
        }
}

static void *runner_main(void *arg)
{
        struct node_runner *ru = arg;
        struct node *n = ru->node;
        struct store *st = NULL;
        int r;

        if (n->agent) {
                runner_remote(ru);
                return NULL;
        }

        r = store_open(n->db_path, &st);
        if (r < 0) {
                log_error_errno(r, "event=runner_error slot=%u: cannot open the store: %m",
                                ru->slot);
                return NULL;
        }
        while (!atomic_load(&n->stopping)) {
                _cleanup_(store_job_clear) struct store_job job = {};

                r = store_job_claim_next(st, &job);
                if (r == -ENOENT) {
                        r = hub_wait_work(n->hub, UINT64_C(1000000000));
                        if (r == -ESHUTDOWN)
                                break;
                        continue;
                }
                if (r < 0) {
                        log_error_errno(r, "event=claim_error slot=%u: %m", ru->slot);
                        (void) hub_wait_work(n->hub, UINT64_C(1000000000));
                        continue;
                }
                runner_handle(ru, st, &job);
                /* Another job may wait: don't sleep before looking. */
        }
        (void) store_close(st);
        return NULL;
}

int node_runners_start(struct node *n)
{
        unsigned count = spawner_size(n->spawner);

        n->runners = calloc(count, sizeof(*n->runners));
        if (!n->runners)
                return -ENOMEM;
        n->n_runners = count;
        for (unsigned i = 0; i < count; i++) {
                struct node_runner *ru = &n->runners[i];
                int r;

                ru->node = n;
                ru->slot = i;
                (void) pthread_mutex_init(&ru->lock, NULL);
                r = pthread_create(&ru->thread, NULL, runner_main, ru);
                if (r != 0)
                        return -r;
                ru->started = true;
        }
        return 0;
}

int node_runner_cancel(struct node *n, const char *job_id)
{
        for (unsigned i = 0; i < n->n_runners; i++) {
                struct node_runner *ru = &n->runners[i];
                bool match;

                (void) pthread_mutex_lock(&ru->lock);
                match = strcmp(ru->job_id, job_id) == 0;
                if (match) {
                        ru->cancelled = true;
                        (void) spawner_cancel(n->spawner, ru->slot);
                }
                (void) pthread_mutex_unlock(&ru->lock);
                if (match)
                        return 1;
        }
        return 0;
}

void node_runners_stop(struct node *n, bool kill)
{
        struct timespec deadline;

        if (!n->runners)
                return;
        atomic_store(&n->stopping, true);
        for (unsigned i = 0; i < n->n_runners && n->hub; i++)
                hub_notify_work(n->hub);
        if (n->agent)
                worker_agent_shutdown(n->agent);

        /* Running jobs get the grace period to finish; then they are killed and re-queued. */
        (void) clock_gettime(CLOCK_REALTIME, &deadline);
        if (!kill)
                deadline.tv_sec += STOP_GRACE_S;
        for (unsigned i = 0; i < n->n_runners; i++) {
                struct node_runner *ru = &n->runners[i];

                if (!ru->started)
                        continue;
                if (pthread_timedjoin_np(ru->thread, NULL, &deadline) == 0) {
                        ru->started = false;
                        continue;
                }
                (void) pthread_mutex_lock(&ru->lock);
                ru->requeue = true;
                if (ru->job_id[0])
                        (void) spawner_cancel(n->spawner, ru->slot);
                (void) pthread_mutex_unlock(&ru->lock);
        }
        for (unsigned i = 0; i < n->n_runners; i++) {
                if (n->runners[i].started)
                        (void) pthread_join(n->runners[i].thread, NULL);
                (void) pthread_mutex_destroy(&n->runners[i].lock);
        }
        free(n->runners);
        n->runners = NULL;
        n->n_runners = 0;
}
