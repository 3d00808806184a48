/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The protocol between masters and workers (MISSION.md R3, R4), defined once: every message,
 * its fields and its bounds are here and in proto.c, and nowhere else.
 *
 * Transport: ZeroMQ over TCP, CURVE-encrypted. The master binds a ROUTER; each worker connects
 * one DEALER and pins the master's public key (a worker that meets another key gets nothing
 * through the handshake). The master's ZAP handler admits registered worker keys and names the
 * connection after the worker (ZAP User-Id); an unknown key is refused at the handshake unless a
 * join token is pending, and then it may only send JOIN.
 *
 * A message is multipart:
 *   [routing id]          only on the master's side (ROUTER), never encoded here
 *   header                5 bytes: 'W' 'R' 'N' version command
 *   body                  a JSON object (strict: net_recv() rejects unknown fields, wrong types,
 *                         duplicate keys, more than NET_BODY_MAX bytes)
 *   payload...            0..NET_PAYLOADS_MAX binary frames of at most NET_PAYLOAD_MAX bytes
 *
 * Commands (w: worker, m: master) and their bodies:
 *   READY      w→m  {name, slots, cpus, memory, profiles: [s], leases: [s]}  capacity; the leases
 *                   it still holds (after a reconnection)
 *   JOIN       w→m  {name, token}                      an unregistered key redeems a join token
 *   WELCOME    m→w  {worker, heartbeat_ms, lease_ms, leases: [s]}  READY (or JOIN) accepted;
 *                   leases: those of READY's that the master still honours (the others are lost)
 *   ASSIGN     m→w  {lease, job, replica, app: {...}, spec: {...}, inputs: [{path, sha256, size}]}
 *   OUTPUT     w→m  {lease, step, stream} + [bytes]    live output of a running job
 *   RESULT     w→m  {lease, result?: {...}, error?: s, blobs: [sha256]} + [content of each blob]
 *                   exactly one of result and error; the blobs are those result names by digest
 *                   that are not inline
 *   RESULT_ACK m→w  {lease, accepted}                  stored (or discarded: no such lease)
 *   HEARTBEAT  w→m  {leases: [s], free}                renews those leases
 *              m→w  {}
 *   CANCEL     m→w  {lease}                            kill it; no RESULT is wanted
 *   FETCH      w→m  {sha256, offset, length}           a piece of an input (length <= NET_CHUNK)
 *   BLOB       m→w  {sha256, offset, size} + [bytes]   size: the whole blob's
 *   ERROR      m→w  {code, message, lease?, sha256?}
 *   DISCONNECT both {reason}
 * Both sides also turn on ZMTP heartbeats (net_socket_setup()).
 */

#include <czmq.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_VERSION      1
#define NET_HEADER_SIZE  5
#define NET_BODY_MAX     (1u << 20)  /* bytes of a body: app and job specs ride in ASSIGN */
#define NET_PAYLOAD_MAX  (64u << 20) /* bytes of one payload frame */
#define NET_PAYLOADS_MAX 65          /* frames after the body: stdout, stderr, 63 outputs */
#define NET_MESSAGE_MAX  ((int64_t) NET_PAYLOADS_MAX * NET_PAYLOAD_MAX + NET_BODY_MAX + 64)
#define NET_CHUNK        (1u << 20) /* FETCH/BLOB piece */
#define NET_NAME_MAX     64
#define NET_TOKEN_MAX    128
#define NET_LIST_MAX     4096 /* leases in READY/HEARTBEAT, profiles */
#define NET_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define NET_ZAP_DOMAIN   "warren"

enum net_command {
        NET_READY = 1,
        NET_JOIN,
        NET_WELCOME,
        NET_ASSIGN,
        NET_OUTPUT,
        NET_RESULT,
        NET_RESULT_ACK,
        NET_HEARTBEAT,
        NET_CANCEL,
        NET_FETCH,
        NET_BLOB,
        NET_ERROR,
        NET_DISCONNECT,
        _NET_COMMAND_MAX,
};

const char *net_command_to_string(enum net_command c);

/* Which way a message travels: a side accepts only the commands meant for it. */
enum net_side {
        NET_TO_MASTER,
        NET_TO_WORKER,
};

struct net_msg {
        enum net_command command;
        json_t *body; /* an object; owned */
        size_t n_payloads;
        zframe_t *payloads[NET_PAYLOADS_MAX]; /* owned */
};

void net_msg_done(struct net_msg *m);

/*
 * Sends one message on sock (a DEALER; or a ROUTER when routing_id is not NULL: it is copied
 * first). body is stolen (json_decref'd whatever happens) and must match the command's field
 * table (checked: -EINVAL otherwise, a programmer error). payloads[0..n) are sent as they are
 * (copied; the caller keeps them). Never blocks: -EAGAIN when the peer's queue is full (the
 * message is dropped), -EHOSTUNREACH when a ROUTER does not know routing_id.
 */
struct iovec;
int net_send(zsock_t *sock, zframe_t *routing_id, enum net_command command, json_t *body,
             const struct iovec *payloads, size_t n_payloads);

/*
 * Receives one message. On a ROUTER (ret_routing_id not NULL) the routing id comes first and is
 * returned; *ret_user_id (may be NULL) gets the connection's ZAP User-Id ("" if none). Checks
 * the header (version: -EPROTONOSUPPORT, with *ret->command still set if known), that the command
 * travels toward side (else -EBADMSG), the body's JSON and field table, the payload count and
 * sizes. -EAGAIN if nothing is waiting (the caller polls first). Every other failure is
 * -EBADMSG; the message is consumed and nothing is returned.
 */
int net_recv(zsock_t *sock, enum net_side side, struct net_msg *ret, zframe_t **ret_routing_id,
             char **ret_user_id);

/* ---- keys ---- */

/* A CURVE key pair as Z85 text (40 characters each + NUL). */
struct net_keypair {
        char public_key[41];
        char secret_key[41];
};

/* A new key pair (zmq_curve_keypair). */
int net_keygen(struct net_keypair *ret);
/*
 * Key files: "<path>" holds the public key and "<path>.secret" the pair (mode 0600, created
 * exclusively, never overwritten: -EEXIST). The public file is one line: the Z85 key.
 */
int net_key_write(const char *path, const struct net_keypair *kp);
/* Reads a secret file (both keys; refuses one readable by group or other: -EPERM). */
int net_key_read_secret(const char *path, struct net_keypair *ret);
/* Reads a public key file (or a secret one: its public half) into key[41]. */
int net_key_read_public(const char *path, char key[static 41]);

/*
 * Socket set-up: ZMTP heartbeats (interval heartbeat_ms, timeout 3x), no lingering, bounded
 * queues, maximum message size NET_MESSAGE_MAX, TCP keepalive; then CURVE: as a server with
 * kp's secret (the ZAP domain NET_ZAP_DOMAIN), or as a client with kp and the pinned
 * server_key.
 */
int net_socket_server(zsock_t *sock, const struct net_keypair *kp, unsigned heartbeat_ms);
int net_socket_client(zsock_t *sock, const struct net_keypair *kp, const char *server_key,
                      unsigned heartbeat_ms);

/* A random lease id (STORE_LEASE_ID_LEN lowercase hex digits + NUL). */
void net_lease_new(char ret[static 33]);
bool net_lease_valid(const char *s);
