/*
 * `grove hook NAME`: what git runs as pre-receive, post-receive and
 * reference-transaction in a store's repositories (the store's hooks folder
 * links those names to the grove binary). It reads the push's payload from
 * its environment and calls the store's HookService back, which decides.
 */
#ifndef GROVE_HOOK_H
#define GROVE_HOOK_H

/* name: "pre-receive", "post-receive" or "reference-transaction". */
int hook_main(const char *name, int argc, char **argv);
/* grove-pack-objects: git's uploadpack.packObjectsHook (hook/packobjects.c). */
int packobjects_main(int argc, char **argv);
/* Whether name is a hook grove answers. */
int hook_is_hook_name(const char *name);

#endif
