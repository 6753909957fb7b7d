#ifndef GROVE_LIB_VERSION_H
#define GROVE_LIB_VERSION_H

/* "v0.2.0-41-g6e0047e", "v0.2.0-41-g6e0047e-dirty", or "0.2.0". */
const char *grove_version(void);

#endif
