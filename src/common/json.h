/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Strict JSON decoding of untrusted input on top of jansson, and the checks every API body
 * needs: a field table (unknown fields and wrong types are errors), typed getters with bounds.
 *
 * Every failure fills a struct json_error with a stable code string, the HTTP status to answer
 * with and a one-line message that names the field and never echoes more than a short,
 * escaped excerpt of the input (printable ASCII only). It is what an API handler turns into
 * {"error": {"code": ..., "message": ...}}.
 *
 * Field names are paths: the getters take a dotted path relative to the object they are given
 * ("limits.memory" is obj["limits"]["memory"]), so that their messages name the field the way a
 * client wrote it. Keys containing '.' cannot be addressed that way; no API field has one.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cleanup.h"

/* Stable error codes; json_error_code_string() and json_error_code_status() map them. */
enum json_error_code_id {
        JSON_ERR_INVALID_JSON,     /* 400 syntax error, truncated, trailing data, empty */
        JSON_ERR_INVALID_UTF8,     /* 400 bytes that are not UTF-8; lone surrogate escapes */
        JSON_ERR_NUL_CHARACTER,    /* 400 \u0000 in a string or a key */
        JSON_ERR_DUPLICATE_KEY,    /* 400 the same key twice in one object */
        JSON_ERR_TOO_DEEP,         /* 400 nesting deeper than the limit */
        JSON_ERR_TOO_COMPLEX,      /* 400 more values than the limit */
        JSON_ERR_NUMBER_TOO_LARGE, /* 400 an integer beyond 64 bits, a real beyond double */
        JSON_ERR_NOT_AN_OBJECT,    /* 400 top level is not an object */
        JSON_ERR_UNKNOWN_FIELD,    /* 400 */
        JSON_ERR_WRONG_TYPE,       /* 400 */
        JSON_ERR_MISSING_FIELD,    /* 400 */
        JSON_ERR_CONFLICTING,      /* 400 fields that exclude each other both given */
        JSON_ERR_OUT_OF_RANGE,     /* 400 a number or length outside what the field accepts */
        JSON_ERR_INVALID_VALUE,    /* 400 right type, wrong form (a name, base64, a size) */
        JSON_ERR_TOO_LARGE,        /* 413 body or decoded content over the node's cap */
        JSON_ERR_TOO_MANY,         /* 413 more files or arguments than the node's cap */
        JSON_ERR_LIMIT_EXCEEDED,   /* 422 a limit above the app's maximum */
        JSON_ERR_INTERNAL,         /* 500 out of memory */
        _JSON_ERR_MAX,
};

struct json_error {
        char code[32];     /* e.g. "invalid_json"; stable, part of the API */
        char message[256]; /* one line, printable ASCII */
        int status;        /* HTTP status: 400, 413, 422 or 500 */
};

const char *json_error_code_string(enum json_error_code_id id);
int json_error_code_status(enum json_error_code_id id);

/*
 * Fills *err (if err is not NULL) and returns r, a negative errno, so that a failure is one
 * statement: return json_error_set(err, -EINVAL, JSON_ERR_WRONG_TYPE, "'%s' ...", path);
 * Arguments that come from input must go through json_excerpt() first.
 */
int json_error_set(struct json_error *err, int r, enum json_error_code_id id, const char *fmt, ...)
        _printf_(4, 5);

/*
 * Writes a short, quoted-safe excerpt of untrusted bytes into buf: printable ASCII other than
 * '\'' and '\\' as is, everything else as \xNN, at most max_in input bytes, "..." if cut.
 * Always NUL-terminates (size > 0). Returns buf.
 */
#define JSON_EXCERPT_MAX  32
#define JSON_EXCERPT_SIZE (JSON_EXCERPT_MAX * 4 + 4)
char *json_excerpt(char *buf, size_t size, const char *s, size_t len, size_t max_in);

struct json_limits {
        size_t max_bytes;   /* input length; above: -E2BIG, too_large (413) */
        unsigned max_depth; /* containers nested in each other; the top level is depth 1 */
        size_t max_values;  /* containers + array elements + object members, roughly */
};

#define JSON_DEFAULT_MAX_BYTES  ((size_t) 8 << 20)
#define JSON_DEFAULT_MAX_DEPTH  32u
#define JSON_DEFAULT_MAX_VALUES ((size_t) 65536)

/*
 * Decodes buf[0..len) (need not be NUL-terminated) into a new reference to an object. Rejects:
 * input over the limit (before looking at it), nesting deeper than the limit and more values
 * than the limit (in a pre-scan, before jansson builds anything: jansson turns 3 MiB of
 * "[{},{},...]" into 224 MiB of heap), malformed JSON, trailing data, invalid UTF-8, lone
 * surrogates, \u0000, duplicate keys, numbers that do not fit an int64 or a double, and any top
 * level other than an object.
 * Returns 0 and *ret (owned by the caller: json_decref()), or a negative errno and *err:
 * -E2BIG (too_large), -ELOOP (too_deep), -EBADMSG (the rest), -ENOMEM.
 */
int json_parse_strict_limits(const char *buf, size_t len, const struct json_limits *limits,
                             json_t **ret, struct json_error *err);
/* The same with JSON_DEFAULT_*. */
int json_parse_strict(const char *buf, size_t len, json_t **ret, struct json_error *err);

enum json_field_type {
        JSON_FIELD_INTEGER,           /* an integer (1.0 is not one) */
        JSON_FIELD_NUMBER,            /* an integer or a real */
        JSON_FIELD_STRING,            /* a string */
        JSON_FIELD_OBJECT,            /* an object */
        JSON_FIELD_ARRAY,             /* an array */
        JSON_FIELD_BOOL,              /* true or false */
        JSON_FIELD_STRING_OR_OBJECT,  /* file content: "text" or {"base64": "..."} */
        JSON_FIELD_INTEGER_OR_STRING, /* a size: 67108864 or "64M" */
        JSON_FIELD_STRING_OR_NULL,    /* a name, or null for "none" */
};

struct json_field {
        const char *name;
        enum json_field_type type;
        bool required;
};

/*
 * Checks that obj is an object whose every member is in fields[0..n) with the right type
 * (null is never the right type, but for JSON_FIELD_STRING_OR_NULL) and that every required field
 * is present. path names obj in messages ("limits"; NULL or "" for the top level). Returns 0, or
 * -EINVAL and *err (wrong_type, unknown_field, missing_field).
 */
int json_check_fields(const json_t *obj, const char *path, const struct json_field *fields,
                      size_t n, struct json_error *err);

/*
 * Typed getters. name is a dotted path relative to obj. An absent field (or an absent object on
 * the way) is not an error: the getter writes the default (or NULL) and returns 0; a present one
 * returns 1. A wrong type is -EINVAL (wrong_type), a value outside [min, max] -ERANGE
 * (out_of_range). *ret is written only when the return value is >= 0.
 */
int json_get_int(const json_t *obj, const char *name, int64_t min, int64_t max, int64_t def,
                 int64_t *ret, struct json_error *err);
/* Integers and reals; finite; [min, max]. */
int json_get_number(const json_t *obj, const char *name, double min, double max, double def,
                    double *ret, struct json_error *err);
int json_get_bool(const json_t *obj, const char *name, bool def, bool *ret, struct json_error *err);
/*
 * *ret is borrowed from obj (valid while obj is), NUL-terminated, UTF-8 without NUL; at most
 * max_len bytes, else -ERANGE (out_of_range). ret_len may be NULL.
 */
int json_get_string(const json_t *obj, const char *name, size_t max_len, const char **ret,
                    size_t *ret_len, struct json_error *err);
/*
 * A byte count: a non-negative integer or a parse_size() string ("64M"); [min, max].
 * A malformed string is -EINVAL (invalid_value).
 */
int json_get_size(const json_t *obj, const char *name, uint64_t min, uint64_t max, uint64_t def,
                  uint64_t *ret, struct json_error *err);

/*
 * Looks up a dotted path; NULL if absent or if something on the way is not an object (the
 * getters are stricter: a non-object on the way is wrong_type there).
 */
json_t *json_get_path(const json_t *obj, const char *name);

/* jansson's json_decrefp() accepts a NULL *json. */
#define _cleanup_json_ _cleanup_(json_decrefp)
