// jemalloc (Debian libjemalloc-dev, built without a symbol prefix): linked into `signet`, its malloc replaces
// glibc's for the whole process.
#include <jemalloc/jemalloc.h>
