/* SPDX-License-Identifier: MIT */
#pragma once

/* One function per sub-command; each returns the process exit code. */

int cmd_run(int argc, char *argv[]);

/* In warren-node only (see main.c). */
int cmd_node(int argc, char *argv[]);    /* node.c */
int cmd_keygen(int argc, char *argv[]);  /* node.c */
int cmd_spawner(int argc, char *argv[]); /* node.c */
int cmd_login(int argc, char *argv[]);   /* login.c */
int cmd_logout(int argc, char *argv[]);  /* login.c */
int cmd_submit(int argc, char *argv[]);  /* submit.c */
int cmd_jobs(int argc, char *argv[]);    /* jobs.c */
int cmd_status(int argc, char *argv[]);  /* jobs.c */
int cmd_logs(int argc, char *argv[]);    /* jobs.c */
int cmd_result(int argc, char *argv[]);  /* jobs.c */
int cmd_cancel(int argc, char *argv[]);  /* jobs.c */
int cmd_app(int argc, char *argv[]);     /* apps.c */
int cmd_data(int argc, char *argv[]);    /* data.c */
int cmd_user(int argc, char *argv[]);    /* users.c */
int cmd_cert(int argc, char *argv[]);    /* cert.c */
int cmd_chmod(int argc, char *argv[]);   /* acl.c */
int cmd_chgrp(int argc, char *argv[]);   /* acl.c */
int cmd_chown(int argc, char *argv[]);   /* acl.c */
int cmd_group(int argc, char *argv[]);   /* admin.c */
int cmd_session(int argc, char *argv[]); /* admin.c */
int cmd_audit(int argc, char *argv[]);   /* admin.c */
int cmd_worker(int argc, char *argv[]);  /* workers.c */
int cmd_workers(int argc, char *argv[]); /* workers.c: worker ls */
