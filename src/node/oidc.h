/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * OpenID Connect bearer tokens at the node: one issuer, its audience, its keys (a JWKS file,
 * re-read when it changes) and the claim that names a new user. auth/jwt.h does the checking;
 * this keeps the keys current and shared between request threads.
 */

#include "auth/jwt.h"

#define NODE_OIDC_LEEWAY_S 60 /* clock skew allowed for exp, nbf and iat */

struct node_oidc;

/* Reads and checks the JWKS file: one log line and a negative errno if it is refused. */
int node_oidc_new(const char *issuer, const char *audience, const char *jwks_file,
                  const char *username_claim, struct node_oidc **ret);
/* Accepts NULL; returns NULL. */
struct node_oidc *node_oidc_free(struct node_oidc *o);
const char *node_oidc_issuer(const struct node_oidc *o);

/* jwt_verify() against the current keys, now, with NODE_OIDC_LEEWAY_S. Thread-safe. */
int node_oidc_verify(struct node_oidc *o, const char *token, struct jwt_claims *ret,
                     enum jwt_error *ret_reason);
