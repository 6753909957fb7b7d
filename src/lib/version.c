/* The version this grove was built as: `git describe` of its tree at build
 * time, or the Makefile's VERSION outside a git checkout (a tarball). */
#include "lib/common.h"
#include "lib/version.h"
#include "grove-version.h"   /* generated in the build folder by the Makefile */

const char *grove_version(void)
{
	return GROVE_VERSION;
}
