// libxcrypt (Debian libcrypt-dev): crypt_r and crypt_checksalt verify the crypt(3) hashes of AUTH's
// password file ($y$ yescrypt, $6$ SHA-512-crypt, $5$ SHA-256-crypt, $2b$ bcrypt). Nothing is vendored.
#ifndef SIGNET_CCRYPT_SHIM_H
#define SIGNET_CCRYPT_SHIM_H

#include <crypt.h>

#endif
