/* The entry point of `grove store`, for the grove dispatcher. */
#ifndef GROVE_STORE_MAIN_H
#define GROVE_STORE_MAIN_H

int store_main(int argc, char **argv);

#endif
