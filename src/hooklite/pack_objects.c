/*
 * grove-pack-objects on its own: git's uploadpack.packObjectsHook as a
 * binary of libc and libcrypto only (hook/packobjects.c). git runs it for
 * every clone and fetch a store serves; the grove binary, with gRPC and
 * ninety-odd libraries to load, cost ~17 ms of CPU per start. The store
 * uses it when it is found beside the grove binary, else grove itself
 * (which answers to that name too).
 */
#include "hook/hook.h"

int main(int argc, char **argv)
{
	return packobjects_main(argc, argv);
}
