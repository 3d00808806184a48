/* SPDX-License-Identifier: MIT */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/*
 * Theory of operation. Untrusted bytes go through three gates before anyone looks at a field:
 *  1. the length, against the caller's maximum, before reading a byte;
 *  2. a linear pre-scan that tracks only string state and bracket depth, counting containers and
 *     separators: it refuses deep nesting and swarms of small values before jansson allocates
 *     anything (jansson's own depth limit is 2048 and it has no limit on values). For valid JSON
 *     the scan is exact; for invalid JSON it may refuse for depth where jansson would refuse for
 *     syntax, which is a 400 either way;
 *  3. jansson, with duplicate keys refused and NUL not allowed; it checks UTF-8 (overlong forms,
 *     encoded surrogates, > U+10FFFF), escapes (lone surrogates), and integer and real overflow.
 * jansson's error text is used only up to its " near '...'" part, which quotes input.
 */

static const struct {
        const char *code;
        int status;
} error_codes[_JSON_ERR_MAX] = {
        [JSON_ERR_INVALID_JSON] = {"invalid_json", 400},
        [JSON_ERR_INVALID_UTF8] = {"invalid_utf8", 400},
        [JSON_ERR_NUL_CHARACTER] = {"nul_character", 400},
        [JSON_ERR_DUPLICATE_KEY] = {"duplicate_key", 400},
        [JSON_ERR_TOO_DEEP] = {"too_deep", 400},
        [JSON_ERR_TOO_COMPLEX] = {"too_complex", 400},
        [JSON_ERR_NUMBER_TOO_LARGE] = {"number_too_large", 400},
        [JSON_ERR_NOT_AN_OBJECT] = {"not_an_object", 400},
        [JSON_ERR_UNKNOWN_FIELD] = {"unknown_field", 400},
        [JSON_ERR_WRONG_TYPE] = {"wrong_type", 400},
        [JSON_ERR_MISSING_FIELD] = {"missing_field", 400},
        [JSON_ERR_CONFLICTING] = {"conflicting_fields", 400},
        [JSON_ERR_OUT_OF_RANGE] = {"out_of_range", 400},
        [JSON_ERR_INVALID_VALUE] = {"invalid_value", 400},
        [JSON_ERR_TOO_LARGE] = {"too_large", 413},
        [JSON_ERR_TOO_MANY] = {"too_many", 413},
        [JSON_ERR_LIMIT_EXCEEDED] = {"limit_exceeded", 422},
        [JSON_ERR_INTERNAL] = {"internal_error", 500},
};

const char *json_error_code_string(enum json_error_code_id id)
{
        if ((unsigned) id >= _JSON_ERR_MAX)
                return "internal_error";
        return error_codes[id].code;
}

int json_error_code_status(enum json_error_code_id id)
{
        if ((unsigned) id >= _JSON_ERR_MAX)
                return 500;
        return error_codes[id].status;
}

int json_error_set(struct json_error *err, int r, enum json_error_code_id id, const char *fmt, ...)
{
        va_list ap;

        if (!err)
                return r;
        (void) snprintf(err->code, sizeof(err->code), "%s", json_error_code_string(id));
        err->status = json_error_code_status(id);
        va_start(ap, fmt);
        (void) vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        /* Belt and braces: whatever a caller passed, the message stays one printable line. */
        for (char *p = err->message; *p; p++)
                if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                        *p = '?';
        return r;
}

char *json_excerpt(char *buf, size_t size, const char *s, size_t len, size_t max_in)
{
        static const char hex[] = "0123456789abcdef";
        size_t o = 0, i;

        if (size == 0)
                return buf;
        for (i = 0; i < len && i < max_in; i++) {
                unsigned char c = (unsigned char) s[i];
                bool plain = c >= 0x20 && c < 0x7f && c != '\'' && c != '\\';
                size_t need = plain ? 1 : 4;

                /* Room for this, a possible "..." and the NUL. */
                if (o + need + 4 > size)
                        break;
                if (plain) {
                        buf[o++] = (char) c;
                } else {
                        buf[o++] = '\\';
                        buf[o++] = 'x';
                        buf[o++] = hex[c >> 4];
                        buf[o++] = hex[c & 0xf];
                }
        }
        if (i < len && o + 4 <= size) {
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = '\0';
        return buf;
}

/* Gate 2: see the theory of operation. */
static int prescan(const char *buf, size_t len, const struct json_limits *limits,
                   struct json_error *err)
{
        unsigned depth = 0;
        size_t values = 0;
        bool in_string = false;

        for (size_t i = 0; i < len; i++) {
                char c = buf[i];

                if (in_string) {
                        if (c == '\\')
                                i++; /* the escaped character cannot end the string */
                        else if (c == '"')
                                in_string = false;
                        continue;
                }
                switch (c) {
                case '"':
                        in_string = true;
                        break;
                case '[':
                case '{':
                        if (++depth > limits->max_depth)
                                return json_error_set(err, -ELOOP, JSON_ERR_TOO_DEEP,
                                                      "JSON nested deeper than %u levels at "
                                                      "offset %zu",
                                                      limits->max_depth, i);
                        values++;
                        break;
                case ',':
                        values++;
                        break;
                case ']':
                case '}':
                        if (depth > 0)
                                depth--;
                        break;
                default:
                        break;
                }
                if (values > limits->max_values)
                        return json_error_set(err, -EBADMSG, JSON_ERR_TOO_COMPLEX,
                                              "JSON has more than %zu values", limits->max_values);
        }
        return 0;
}

static enum json_error_code_id map_jansson_error(const json_error_t *e)
{
        switch (json_error_code(e)) {
        case json_error_out_of_memory:
                return JSON_ERR_INTERNAL;
        case json_error_invalid_utf8:
                return JSON_ERR_INVALID_UTF8;
        case json_error_null_character:
        case json_error_null_byte_in_key:
                return JSON_ERR_NUL_CHARACTER;
        case json_error_duplicate_key:
                return JSON_ERR_DUPLICATE_KEY;
        case json_error_numeric_overflow:
                return JSON_ERR_NUMBER_TOO_LARGE;
        case json_error_stack_overflow:
                return JSON_ERR_TOO_DEEP;
        case json_error_invalid_syntax:
                /* A lone surrogate escape: no code of its own in jansson. */
                if (strncmp(e->text, "invalid Unicode", strlen("invalid Unicode")) == 0)
                        return JSON_ERR_INVALID_UTF8;
                return JSON_ERR_INVALID_JSON;
        case json_error_unknown:
        case json_error_cannot_open_file:
        case json_error_invalid_argument:
        case json_error_premature_end_of_input:
        case json_error_end_of_input_expected:
        case json_error_invalid_format:
        case json_error_wrong_type:
        case json_error_null_value:
        case json_error_item_not_found:
        case json_error_index_out_of_range:
        default:
                return JSON_ERR_INVALID_JSON;
        }
}

static const char *type_name(const json_t *v);

int json_parse_strict_limits(const char *buf, size_t len, const struct json_limits *limits,
                             json_t **ret, struct json_error *err)
{
        _cleanup_json_ json_t *j = NULL;
        json_error_t e;
        enum json_error_code_id id;
        char *near;
        int r;

        if (!buf && len > 0)
                return json_error_set(err, -EINVAL, JSON_ERR_INVALID_JSON, "no body");
        if (len > limits->max_bytes)
                return json_error_set(err, -E2BIG, JSON_ERR_TOO_LARGE,
                                      "body of %zu bytes is over the maximum of %zu", len,
                                      limits->max_bytes);
        if (len == 0)
                return json_error_set(err, -EBADMSG, JSON_ERR_INVALID_JSON, "the body is empty");
        r = prescan(buf, len, limits, err);
        if (r < 0)
                return r;

        /* JSON_DECODE_ANY: a scalar top level is not_an_object, not a syntax error. */
        j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
        if (!j) {
                id = map_jansson_error(&e);
                if (id == JSON_ERR_INTERNAL)
                        return json_error_set(err, -ENOMEM, id, "out of memory");
                /*
                 * What precedes " near " is jansson's own wording, with numbers at most; what
                 * follows quotes input. json_error_set() masks anything unprintable regardless.
                 */
                e.text[sizeof(e.text) - 1] = '\0';
                near = strstr(e.text, " near ");
                if (near)
                        *near = '\0';
                return json_error_set(err, id == JSON_ERR_TOO_DEEP ? -ELOOP : -EBADMSG, id,
                                      "invalid JSON at line %d, column %d: %.100s", e.line,
                                      e.column, e.text);
        }
        if (!json_is_object(j))
                return json_error_set(err, -EBADMSG, JSON_ERR_NOT_AN_OBJECT,
                                      "the body must be a JSON object, not %s", type_name(j));
        *ret = TAKE_PTR(j);
        return 0;
}

int json_parse_strict(const char *buf, size_t len, json_t **ret, struct json_error *err)
{
        static const struct json_limits limits = {
                .max_bytes = JSON_DEFAULT_MAX_BYTES,
                .max_depth = JSON_DEFAULT_MAX_DEPTH,
                .max_values = JSON_DEFAULT_MAX_VALUES,
        };

        return json_parse_strict_limits(buf, len, &limits, ret, err);
}

static const char *type_name(const json_t *v)
{
        switch (json_typeof(v)) {
        case JSON_OBJECT:
                return "an object";
        case JSON_ARRAY:
                return "an array";
        case JSON_STRING:
                return "a string";
        case JSON_INTEGER:
                return "an integer";
        case JSON_REAL:
                return "a real number";
        case JSON_TRUE:
        case JSON_FALSE:
                return "a boolean";
        case JSON_NULL:
                return "null";
        default:
                return "unknown";
        }
}

static const char *field_type_name(enum json_field_type t)
{
        switch (t) {
        case JSON_FIELD_INTEGER:
                return "an integer";
        case JSON_FIELD_NUMBER:
                return "a number";
        case JSON_FIELD_STRING:
                return "a string";
        case JSON_FIELD_OBJECT:
                return "an object";
        case JSON_FIELD_ARRAY:
                return "an array";
        case JSON_FIELD_BOOL:
                return "true or false";
        case JSON_FIELD_STRING_OR_OBJECT:
                return "a string or an object";
        case JSON_FIELD_INTEGER_OR_STRING:
                return "an integer or a string";
        case JSON_FIELD_STRING_OR_NULL:
                return "a string or null";
        default:
                return "unknown";
        }
}

static bool field_type_matches(enum json_field_type t, const json_t *v)
{
        switch (t) {
        case JSON_FIELD_INTEGER:
                return json_is_integer(v);
        case JSON_FIELD_NUMBER:
                return json_is_number(v);
        case JSON_FIELD_STRING:
                return json_is_string(v);
        case JSON_FIELD_OBJECT:
                return json_is_object(v);
        case JSON_FIELD_ARRAY:
                return json_is_array(v);
        case JSON_FIELD_BOOL:
                return json_is_boolean(v);
        case JSON_FIELD_STRING_OR_OBJECT:
                return json_is_string(v) || json_is_object(v);
        case JSON_FIELD_INTEGER_OR_STRING:
                return json_is_integer(v) || json_is_string(v);
        case JSON_FIELD_STRING_OR_NULL:
                return json_is_string(v) || json_is_null(v);
        default:
                return false;
        }
}

int json_check_fields(const json_t *obj, const char *path, const struct json_field *fields,
                      size_t n, struct json_error *err)
{
        const char *prefix = path && *path ? path : "";
        const char *dot = *prefix ? "." : "";

        if (!json_is_object(obj) && *prefix)
                return json_error_set(err, -EINVAL, JSON_ERR_WRONG_TYPE,
                                      "'%s' must be an object, not %s", prefix,
                                      obj ? type_name(obj) : "nothing");
        if (!json_is_object(obj))
                return json_error_set(err, -EINVAL, JSON_ERR_WRONG_TYPE,
                                      "the body must be an object, not %s",
                                      obj ? type_name(obj) : "nothing");

        /* jansson iterates in insertion order: the first offending field is reported. */
        for (void *it = json_object_iter((json_t *) obj); it;
             it = json_object_iter_next((json_t *) obj, it)) {
                const char *key = json_object_iter_key(it);
                size_t key_len = json_object_iter_key_len(it);
                const json_t *v = json_object_iter_value(it);
                const struct json_field *f = NULL;

                for (size_t i = 0; i < n; i++)
                        if (strlen(fields[i].name) == key_len &&
                            memcmp(fields[i].name, key, key_len) == 0) {
                                f = &fields[i];
                                break;
                        }
                if (!f) {
                        char text[JSON_EXCERPT_SIZE];

                        (void) json_excerpt(text, sizeof(text), key, key_len, JSON_EXCERPT_MAX);
                        return json_error_set(err, -EINVAL, JSON_ERR_UNKNOWN_FIELD,
                                              "unknown field '%s%s%s'", prefix, dot, text);
                }
                if (!field_type_matches(f->type, v))
                        return json_error_set(err, -EINVAL, JSON_ERR_WRONG_TYPE,
                                              "'%s%s%s' must be %s, not %s", prefix, dot, f->name,
                                              field_type_name(f->type), type_name(v));
        }
        for (size_t i = 0; i < n; i++)
                if (fields[i].required && !json_object_get(obj, fields[i].name))
                        return json_error_set(err, -EINVAL, JSON_ERR_MISSING_FIELD,
                                              "missing field '%s%s%s'", prefix, dot,
                                              fields[i].name);
        return 0;
}

/* Returns 1 and *ret if present, 0 if absent, -EINVAL if a non-object is on the way. */
static int lookup(const json_t *obj, const char *name, json_t **ret, struct json_error *err)
{
        const json_t *cur = obj;
        const char *seg = name;

        for (;;) {
                const char *dot = strchr(seg, '.');
                size_t seg_len = dot ? (size_t) (dot - seg) : strlen(seg);

                if (!json_is_object(cur)) {
                        if (cur == obj)
                                return json_error_set(err, -EINVAL, JSON_ERR_WRONG_TYPE,
                                                      "the body must be an object");
                        return json_error_set(err, -EINVAL, JSON_ERR_WRONG_TYPE,
                                              "'%.*s' must be an object, not %s",
                                              (int) (seg - 1 - name), name, type_name(cur));
                }
                cur = json_object_getn(cur, seg, seg_len);
                if (!cur)
                        return 0;
                if (!dot)
                        break;
                seg = dot + 1;
        }
        *ret = (json_t *) cur;
        return 1;
}

static int wrong_type(struct json_error *err, const char *name, const char *want, const json_t *v)
{
        return json_error_set(err, -EINVAL, JSON_ERR_WRONG_TYPE, "'%s' must be %s, not %s", name,
                              want, type_name(v));
}

json_t *json_get_path(const json_t *obj, const char *name)
{
        json_t *v = NULL;

        return lookup(obj, name, &v, NULL) > 0 ? v : NULL;
}

int json_get_int(const json_t *obj, const char *name, int64_t min, int64_t max, int64_t def,
                 int64_t *ret, struct json_error *err)
{
        json_t *v = NULL;
        int64_t x;
        int r;

        r = lookup(obj, name, &v, err);
        if (r < 0)
                return r;
        if (r == 0) {
                *ret = def;
                return 0;
        }
        if (!json_is_integer(v))
                return wrong_type(err, name, "an integer", v);
        x = (int64_t) json_integer_value(v);
        if (x < min || x > max)
                return json_error_set(err, -ERANGE, JSON_ERR_OUT_OF_RANGE,
                                      "'%s' must be between %" PRId64 " and %" PRId64, name, min,
                                      max);
        *ret = x;
        return 1;
}

int json_get_number(const json_t *obj, const char *name, double min, double max, double def,
                    double *ret, struct json_error *err)
{
        json_t *v = NULL;
        double x;
        int r;

        r = lookup(obj, name, &v, err);
        if (r < 0)
                return r;
        if (r == 0) {
                *ret = def;
                return 0;
        }
        if (!json_is_number(v))
                return wrong_type(err, name, "a number", v);
        x = json_number_value(v);
        if (!isfinite(x) || !(x >= min && x <= max))
                return json_error_set(err, -ERANGE, JSON_ERR_OUT_OF_RANGE,
                                      "'%s' must be between %g and %g", name, min, max);
        *ret = x;
        return 1;
}

int json_get_bool(const json_t *obj, const char *name, bool def, bool *ret, struct json_error *err)
{
        json_t *v = NULL;
        int r;

        r = lookup(obj, name, &v, err);
        if (r < 0)
                return r;
        if (r == 0) {
                *ret = def;
                return 0;
        }
        if (!json_is_boolean(v))
                return wrong_type(err, name, "true or false", v);
        *ret = json_is_true(v);
        return 1;
}

int json_get_string(const json_t *obj, const char *name, size_t max_len, const char **ret,
                    size_t *ret_len, struct json_error *err)
{
        json_t *v = NULL;
        size_t len;
        int r;

        r = lookup(obj, name, &v, err);
        if (r < 0)
                return r;
        if (r == 0) {
                *ret = NULL;
                if (ret_len)
                        *ret_len = 0;
                return 0;
        }
        if (!json_is_string(v))
                return wrong_type(err, name, "a string", v);
        len = json_string_length(v);
        if (len > max_len)
                return json_error_set(err, -ERANGE, JSON_ERR_OUT_OF_RANGE,
                                      "'%s' is longer than %zu bytes", name, max_len);
        if (ret_len)
                *ret_len = len;
        *ret = json_string_value(v);
        return 1;
}

static int size_out_of_range(struct json_error *err, const char *name, uint64_t min, uint64_t max)
{
        return json_error_set(err, -ERANGE, JSON_ERR_OUT_OF_RANGE,
                              "'%s' must be between %" PRIu64 " and %" PRIu64 " bytes", name, min,
                              max);
}

int json_get_size(const json_t *obj, const char *name, uint64_t min, uint64_t max, uint64_t def,
                  uint64_t *ret, struct json_error *err)
{
        json_t *v = NULL;
        uint64_t x;
        int r;

        r = lookup(obj, name, &v, err);
        if (r < 0)
                return r;
        if (r == 0) {
                *ret = def;
                return 0;
        }
        if (json_is_integer(v)) {
                json_int_t i = json_integer_value(v);

                if (i < 0 || (uint64_t) i < min || (uint64_t) i > max)
                        return size_out_of_range(err, name, min, max);
                x = (uint64_t) i;
        } else if (json_is_string(v)) {
                const char *s = json_string_value(v);

                /* parse_size() stops at the first NUL; jansson strings have none (no ALLOW_NUL). */
                r = parse_size(s, max, &x);
                if (r == -ERANGE)
                        return size_out_of_range(err, name, min, max);
                if (r < 0) {
                        char text[JSON_EXCERPT_SIZE];

                        (void) json_excerpt(text, sizeof(text), s, json_string_length(v),
                                            JSON_EXCERPT_MAX);
                        return json_error_set(err, -EINVAL, JSON_ERR_INVALID_VALUE,
                                              "'%s' must be a byte count like 67108864 or a size "
                                              "like '64M', not '%s'",
                                              name, text);
                }
                if (x < min)
                        return size_out_of_range(err, name, min, max);
        } else {
                return wrong_type(err, name, "an integer or a size string", v);
        }
        *ret = x;
        return 1;
}
