/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The node's administration routes (routes-admin.c): groups, the owner/group/mode of every
 * object (chmod, chgrp, chown), one's own sessions, and the audit log; and the audit trail the
 * other routes write to.
 */

#include "node/node.h"

/*
 * Appends a security-relevant event to the audit log (and logs it): actor is the caller (NULL:
 * anonymous), object e.g. "job:ID" (may be NULL), detail printf-style (may be NULL). An audit
 * record that cannot be written is logged as an error; the request goes on.
 */
void node_audit(struct store *st, const struct node_caller *c, struct http_request *req,
                const char *event, const char *object, const char *fmt, ...) _printf_(6, 7);

/* node_authorize(), and a refusal that the object was visible for (403) is audited. */
int node_authorize_audited(struct store *st, struct http_request *req, const struct node_caller *c,
                           enum auth_action action, enum auth_perm perm,
                           const struct store_acl *acl, const char *what, const char *object);

void node_route_groups_create(struct http_request *req, void *userdata);
void node_route_groups_list(struct http_request *req, void *userdata);
void node_route_groups_get(struct http_request *req, void *userdata);
void node_route_groups_delete(struct http_request *req, void *userdata);
void node_route_groups_member_add(struct http_request *req, void *userdata);
void node_route_groups_member_remove(struct http_request *req, void *userdata);
/* PATCH .../acl on a job, an app, a user or a group: {"mode", "group", "owner"}. */
void node_route_jobs_acl(struct http_request *req, void *userdata);
void node_route_apps_acl(struct http_request *req, void *userdata);
/* Confidential data: a mode with a group or other bit, or a group, is 403 confidential. */
void node_route_data_acl(struct http_request *req, void *userdata);
void node_route_users_acl(struct http_request *req, void *userdata);
void node_route_groups_acl(struct http_request *req, void *userdata);
void node_route_sessions_list(struct http_request *req, void *userdata);
void node_route_sessions_revoke(struct http_request *req, void *userdata);
void node_route_audit_list(struct http_request *req, void *userdata);
