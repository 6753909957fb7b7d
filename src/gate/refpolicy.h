/*
 * Which ref namespaces a push may touch (gate.refNamespaces). Branches are
 * governed by the deploy branch and gate.otherBranches; everything else a
 * client can push (tags, notes, refs/pull/…, refs/anything) is accepted only
 * under a namespace the operator listed. Default: branches and tags.
 */
#ifndef GROVE_GATE_REFPOLICY_H
#define GROVE_GATE_REFPOLICY_H

#include "lib/strvec.h"

#include <stdbool.h>

#define REFPOLICY_DEFAULT "refs/heads/ refs/tags/"

/*
 * Parses a list separated by spaces or commas into out (cleared first):
 * each entry "refs/…/", ending with '/', without "..", "//" or control
 * characters; refs/heads/ must be among them (the deploy branch lives
 * there). GROVE_EINVAL with a message saying which entry is wrong.
 */
int refpolicy_parse(const char *list, struct strvec *out);

/* Whether ref lies under one of the namespaces. */
bool refpolicy_allows(const struct strvec *ns, const char *ref);

#endif
