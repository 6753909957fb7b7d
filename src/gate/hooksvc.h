/* The gate's grove.v1.HookService (hooksvc.c). */
#ifndef GROVE_GATE_HOOKSVC_H
#define GROVE_GATE_HOOKSVC_H

#include "gate/gate.h"
#include "lib/rpc.h"

/* Serves PreReceiveHook and PostReceiveHook on srv, with cfg's policy. */
void hooksvc_register(struct rpc_server *srv, const struct gate_config *cfg);
/* One line to the pusher, on the hook's stdout or (err) stderr. */
int hook_say(struct rpc_call *call, bool err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
