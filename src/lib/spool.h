/*
 * A spool: a pipe with a file in the middle. One thread writes what it
 * receives into an unlinked file at the speed it comes; a feeder thread
 * writes the file on into a descriptor (a process's stdin) at the speed the
 * reader takes it. A slow reader then no longer slows the writer, up to
 * max_lag bytes: past that, spool_write waits for the feeder, as a pipe
 * would. What the feeder has passed on is punched out of the file, so the
 * disk holds at most about max_lag bytes.
 *
 * Used by a store for a trailing replica of a push (store/service_ssh.c):
 * its git runs at a low priority, and the router's fan-out, which sends
 * every replica the same bytes at the pace of the slowest, must not wait
 * for it.
 */
#ifndef GROVE_SPOOL_H
#define GROVE_SPOOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spool {
	int fd;                  /* the unlinked file */
	int out;                 /* where the feeder writes; the feeder's until it ends */
	uint64_t max_lag;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t feeder;
	bool started;
	/* Guarded by mu. */
	uint64_t written, fed, punched;
	bool ended;              /* the writer has no more: out closes after the rest */
	bool stopped;            /* cut short: out closes now */
	bool detaching;          /* the writer takes out back once the feeder caught up */
	bool done;               /* the feeder returned */
	bool out_failed;         /* out refused a write (its reader exited) */
};

/*
 * Starts a spool in directory dir feeding out (taken: the spool closes it,
 * unless spool_detach gives it back). 0, or an error (the directory cannot
 * hold a file): the caller then writes to out itself.
 */
int spool_start(struct spool *sp, const char *dir, int out, uint64_t max_lag);
/*
 * Appends len bytes. 0; GROVE_ECANCELLED once out refused a write (nothing more
 * needs writing); or GROVE_EIO when the file cannot take them (a full
 * disk): the caller may spool_detach and go on without the spool.
 */
int spool_write(struct spool *sp, const void *buf, size_t len);
/* Waits until the feeder passed on everything spooled, and gives out back
 * (-1 if it was closed: out refused a write, or the spool was stopped). */
int spool_detach(struct spool *sp);
/* The input is whole: out is closed once the rest was passed on. */
void spool_end(struct spool *sp);
/* The input was cut short: out is closed now, the rest is dropped. */
void spool_stop(struct spool *sp);
/* Joins the feeder (after spool_end, spool_stop or spool_detach) and
 * closes the file. */
void spool_finish(struct spool *sp);

#endif
