/*
 * A deadline for reading a whole request on the admin port, headers and
 * body. gate.adminTimeout ends a connection that sends nothing for a
 * while, not one that trickles a byte every few seconds and so holds one
 * of its address's connection slots for as long as it likes. A watchdog
 * thread ends, with shutdown(2), every connection whose request has been
 * arriving for longer than gate.adminRequestTimeout; libmicrohttpd's
 * thread for it then sees the connection end and closes it.
 */
#ifndef GROVE_GATE_ADMIN_DEADLINE_H
#define GROVE_GATE_ADMIN_DEADLINE_H

#include "lib/common.h"

#include <microhttpd.h>

struct req_deadline;

int req_deadline_start(struct req_deadline **out, int timeout_s);
/* After the HTTP daemons stopped (their connections are gone). */
void req_deadline_stop(struct req_deadline *d);

/* MHD_OPTION_NOTIFY_CONNECTION's callback, with d as its argument. */
void req_deadline_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
			 enum MHD_ConnectionNotificationCode toe);
/* conn's request has been read: no deadline until the next one begins. */
void req_deadline_read(struct MHD_Connection *conn);
/* conn's request ended: the next one's deadline runs from now. */
void req_deadline_next(struct MHD_Connection *conn);

#endif
