{
  "targets": [
    {
      "target_name": "flock",
      "sources": ["native/flock.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "xcode_settings": { "OTHER_CFLAGS": ["-Wall", "-Wextra", "-O2"] }
    }
  ]
}
