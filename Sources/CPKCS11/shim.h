// The PKCS#11 (Cryptoki) API as p11-kit ships it (Debian libp11-kit-dev). Header only: Signet links no PKCS#11
// library, it dlopen()s the module named in the configuration (SoftHSM2, a hardware token's module ...).
#ifndef SIGNET_CPKCS11_SHIM_H
#define SIGNET_CPKCS11_SHIM_H

#include <p11-kit-1/p11-kit/pkcs11.h>

#endif
