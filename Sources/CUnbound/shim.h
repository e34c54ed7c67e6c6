// libunbound from Debian libunbound-dev (its pkg-config file needs libevent-dev, so it is not used).
#include <unbound.h>
