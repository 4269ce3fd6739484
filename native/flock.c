// Minimal N-API binding for flock(2), so hubcache can take the very same advisory locks as
// Python's filelock (huggingface_hub) on `<cache>/.locks/.../<etag>.lock`.
//
//   flock(fd: number, exclusive: boolean, nonBlocking: boolean): boolean
//     true when the lock was taken; false only when nonBlocking and another open file
//     description holds a conflicting lock (EWOULDBLOCK). Any other failure throws an Error
//     whose `code` is the errno name (ENOSYS, EOPNOTSUPP, EBADF, ...), like Node's own errors.
//   unlock(fd: number): void
//
// Written against node_api.h only (no nan / node-addon-api): ABI-stable across Node versions.
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>

static const char *errno_name(int err) {
  switch (err) {
    case EBADF: return "EBADF";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    case ENOLCK: return "ENOLCK";
    case ENOSYS: return "ENOSYS";
    case EIO: return "EIO";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
#ifdef EOPNOTSUPP
    case EOPNOTSUPP: return "EOPNOTSUPP";
#endif
#if defined(ENOTSUP) && (!defined(EOPNOTSUPP) || ENOTSUP != EOPNOTSUPP)
    case ENOTSUP: return "ENOTSUP";
#endif
    case EWOULDBLOCK: return "EWOULDBLOCK";
#if defined(EAGAIN) && EAGAIN != EWOULDBLOCK
    case EAGAIN: return "EAGAIN";
#endif
    default: return "EUNKNOWN";
  }
}

// Throws `Error("<syscall>: <strerror>")` with .code = errno name, .errno = -err, .syscall.
static void throw_errno(napi_env env, const char *syscall, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s (%s)", syscall, strerror(err), errno_name(err));
  napi_value code, msg, error, errno_value, syscall_value;
  if (napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code) != napi_ok) return;
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok) return;
  if (napi_create_error(env, code, msg, &error) != napi_ok) return;
  // Node's system errors use negative errno values; keep the same convention.
  if (napi_create_int32(env, -err, &errno_value) == napi_ok) {
    napi_set_named_property(env, error, "errno", errno_value);
  }
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value) == napi_ok) {
    napi_set_named_property(env, error, "syscall", syscall_value);
  }
  napi_throw(env, error);
}

static bool get_fd(napi_env env, napi_value value, int *fd) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number ||
      napi_get_value_int32(env, value, fd) != napi_ok || *fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fd must be a non-negative integer");
    return false;
  }
  return true;
}

static bool get_bool(napi_env env, napi_value value, const char *name, bool *out) {
  if (napi_get_value_bool(env, value, out) != napi_ok) {
    char message[96];
    snprintf(message, sizeof message, "%s must be a boolean", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  return true;
}

static napi_value js_flock(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "flock(fd, exclusive, nonBlocking) needs 3 arguments");
    return NULL;
  }
  int fd;
  bool exclusive, non_blocking;
  if (!get_fd(env, argv[0], &fd)) return NULL;
  if (!get_bool(env, argv[1], "exclusive", &exclusive)) return NULL;
  if (!get_bool(env, argv[2], "nonBlocking", &non_blocking)) return NULL;

  int op = (exclusive ? LOCK_EX : LOCK_SH) | (non_blocking ? LOCK_NB : 0);
  int rc;
  // A signal (e.g. SIGCHLD, SIGWINCH) can interrupt the call; that is not a failure.
  do {
    rc = flock(fd, op);
  } while (rc != 0 && errno == EINTR);

  napi_value result;
  if (rc == 0) {
    napi_get_boolean(env, true, &result);
    return result;
  }
  int err = errno;
  if (non_blocking && (err == EWOULDBLOCK || err == EAGAIN)) {
    napi_get_boolean(env, false, &result);
    return result;
  }
  throw_errno(env, "flock", err);
  return NULL;
}

static napi_value js_unlock(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "unlock(fd) needs 1 argument");
    return NULL;
  }
  int fd;
  if (!get_fd(env, argv[0], &fd)) return NULL;
  int rc;
  do {
    rc = flock(fd, LOCK_UN);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) throw_errno(env, "flock", errno);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"flock", NULL, js_flock, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unlock", NULL, js_unlock, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
