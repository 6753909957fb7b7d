/*
 * The command line a git client sends over SSH, like
 *
 *     git-upload-pack '/my-app.git'
 *
 * git quotes the path the way its sq_quote does ('\'' for a quote, '\!' for
 * a bang). Only the three git services are recognised, also spelled
 * "git upload-pack"; anything else is refused with the reason.
 */
#ifndef GROVE_SSHCMD_H
#define GROVE_SSHCMD_H

#define SSHCMD_MAX 4096

enum git_service {
	GIT_SERVICE_NONE = 0,
	GIT_SERVICE_UPLOAD_PACK,
	GIT_SERVICE_RECEIVE_PACK,
	GIT_SERVICE_UPLOAD_ARCHIVE,
};

struct sshcmd {
	enum git_service service;
	char path[SSHCMD_MAX];  /* the dequoted argument */
};

/* 0, or GROVE_EINVAL with what was wrong. */
int sshcmd_parse(const char *line, struct sshcmd *out);
/* "git-upload-pack", …: the canonical spelling. */
const char *git_service_name(enum git_service s);

#endif
