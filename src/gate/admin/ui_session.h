/*
 * The dashboard's logins (gate/admin/ui.c): a login with the admin token
 * opens a session, kept in the memory of the api process only, named by a
 * random value that the browser holds in its grove_ui cookie — never the
 * token itself, so a leaked cookie dies with its session and a restart of
 * the gate ends every session. Each session has its own CSRF token that
 * every form of the dashboard carries back.
 *
 * The table is bounded: when it is full, a new login pushes out the session
 * closest to its end. All functions lock; ui_sessions owns its memory.
 */
#ifndef GROVE_GATE_ADMIN_UI_SESSION_H
#define GROVE_GATE_ADMIN_UI_SESSION_H

#include "lib/common.h"

/* A session lasts a working day; a restart of the gate ends it sooner. */
#define UI_SESSION_LIFETIME_MS (12LL * 3600 * 1000)
/* Both the session id and the CSRF token: 32 random bytes, in hex. */
#define UI_SECRET_HEX 64

struct ui_sessions;

int ui_sessions_new(struct ui_sessions **out, int64_t lifetime_ms);
void ui_sessions_free(struct ui_sessions *s);
/* A new session: its id (the cookie's value) and its CSRF token. */
int ui_session_open(struct ui_sessions *s, char id[UI_SECRET_HEX + 1], char csrf[UI_SECRET_HEX + 1]);
/* Whether id names a session not yet expired; its CSRF token into csrf. */
bool ui_session_find(struct ui_sessions *s, const char *id, char csrf[UI_SECRET_HEX + 1]);
void ui_session_close(struct ui_sessions *s, const char *id);
/* Whether a form's CSRF value is the session's, compared in constant time. */
bool ui_csrf_ok(const char *want, const char *got);

#endif
