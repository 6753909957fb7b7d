/*
 * `grove rpc`: call any grove.v1 method from the command line, like grpcurl
 * but with fields given as path=value, for operators and for the tests:
 *
 *   grove rpc -a 127.0.0.1:8075 RepositoryService/CreateRepository \
 *       repository.storage_name=default repository.relative_path=app.git
 *
 * The response is printed as one JSON object per message. A value "@FILE"
 * reads the file. --in-field F streams stdin as messages that set only the
 * bytes field F (client streams); --out-field F writes F of each response
 * to stdout raw instead of JSON (bundles, archives). The exit code is 0 on
 * OK, else the gRPC status code, with "grove rpc: STATUS: message" on stderr.
 */
#include "lib/common.h"
#include "cli/cli.h"
#include "cli/opt.h"
#include "lib/auth.h"
#include "lib/error.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/methods.h"
#include "lib/proc.h"
#include "lib/rpc.h"
#include "lib/strbuf.h"
#include "grove/v1/cluster.pb-c.h"
#include "grove/v1/hook.pb-c.h"
#include "grove/v1/transaction.pb-c.h"
#include "grove/v1/ref.pb-c.h"
#include "grove/v1/repository.pb-c.h"
#include "grove/v1/ssh.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

enum { OPT_SECRET_FILE = CLI_OPT_LONG, OPT_TIMEOUT, OPT_IN_FIELD, OPT_OUT_FIELD, OPT_TOKEN, OPT_RAW_HEX };

static const struct cli_option rpc_options[] = {
	{ "address", 'a', "ADDRESS", "the store's or router's address (default: $GROVE_ADDRESS)" },
	{ "secret-file", OPT_SECRET_FILE, "F", "the shared secret (default: $GROVE_SECRET, $GROVE_SECRET_FILE)" },
	{ "timeout", OPT_TIMEOUT, "MS", "the call's deadline (default: 60000)" },
	{ "in-field", OPT_IN_FIELD, "F", "stream stdin as messages that set only the bytes field F" },
	{ "out-field", OPT_OUT_FIELD, "F", "write field F of each response to stdout, raw" },
	{ "raw-hex", OPT_RAW_HEX, "HEX", "send these bytes as the request (any method, even unknown)" },
	{ "token", OPT_TOKEN, "TOKEN", "send this token instead of one made from the secret" },
	{ NULL },
};

const struct cli_command rpc_command = {
	"rpc", "[options] METHOD [field.path=value ...]",
	"Calls a grove.v1 method with the request's fields given as path=value.",
	rpc_options,
	"METHOD is \"Service/Method\" (grove.v1) or a full \"/pkg.Service/Method\".\n"
	"A value \"@FILE\" reads the file.\n",
	true,
};

static const ProtobufCServiceDescriptor *const services[] = {
	&grove__v1__repository_service__descriptor, &grove__v1__ref_service__descriptor,
	&grove__v1__sshservice__descriptor, &grove__v1__hook_service__descriptor,
	&grpc__health__v1__health__descriptor, &grove__v1__transaction_service__descriptor,
	&grove__v1__cluster_service__descriptor,
};

static const ProtobufCMethodDescriptor *find_method(const char *path)
{
	char buf[256];
	for (size_t i = 0; i < ARRAY_SIZE(services); i++) {
		for (unsigned j = 0; j < services[i]->n_methods; j++) {
			snprintf(buf, sizeof(buf), "/%s/%s", services[i]->name, services[i]->methods[j].name);
			if (!strcmp(buf, path))
				return &services[i]->methods[j];
		}
	}
	return NULL;
}

static size_t scalar_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

static int set_scalar(const ProtobufCFieldDescriptor *f, void *member, const char *value)
{
	struct strbuf data = STRBUF_INIT;
	char *end = NULL;
	errno = 0;
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_BYTES:
		if (value[0] == '@') {
			if (fs_read_all(value + 1, &data))
				return GROVE_EIO;
		} else {
			strbuf_addstr(&data, value);
		}
		if (f->type == PROTOBUF_C_TYPE_STRING) {
			*(char **)member = strbuf_detach(&data, NULL);
		} else {
			ProtobufCBinaryData *b = member;
			b->data = (uint8_t *)strbuf_detach(&data, &b->len);
		}
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *)member = !strcmp(value, "true") || !strcmp(value, "1");
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, value);
		*(int *)member = ev ? ev->value : (int)strtol(value, &end, 10);
		if (!ev && (!end || *end))
			return error_set(GROVE_EINVAL, "%s: unknown value %s", f->name, value);
		return 0;
	}
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
		*(int32_t *)member = (int32_t)strtol(value, &end, 10);
		break;
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
		*(uint32_t *)member = (uint32_t)strtoul(value, &end, 10);
		break;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
		*(int64_t *)member = strtoll(value, &end, 10);
		break;
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		*(uint64_t *)member = strtoull(value, &end, 10);
		break;
	default:
		return error_set(GROVE_EINVAL, "%s: this field type cannot be set here", f->name);
	}
	if (errno || !end || *end)
		return error_set(GROVE_EINVAL, "%s: \"%s\" is not a number", f->name, value);
	return 0;
}

static int set_field(ProtobufCMessage *m, const char *path, const char *value)
{
	const char *dot = strchr(path, '.');
	char name[128];
	size_t len = dot ? (size_t)(dot - path) : strlen(path);
	const ProtobufCFieldDescriptor *f;
	char *member;

	if (len >= sizeof(name))
		return error_set(GROVE_EINVAL, "field name too long");
	memcpy(name, path, len);
	name[len] = '\0';
	f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
	if (!f)
		return error_set(GROVE_EINVAL, "%s has no field \"%s\"", m->descriptor->name, name);
	member = (char *)m + f->offset;
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t *n = (size_t *)((char *)m + f->quantifier_offset);
		size_t es = scalar_size(f->type);
		char **arr = (char **)member;
		if (f->type == PROTOBUF_C_TYPE_MESSAGE)
			return error_set(GROVE_EINVAL, "%s: repeated messages cannot be set here", name);
		*arr = xrealloc(*arr, (*n + 1) * es);
		memset(*arr + *n * es, 0, es);
		int ret = set_scalar(f, *arr + *n * es, value);
		if (!ret)
			(*n)++;
		return ret;
	}
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
		*(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
	if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
		ProtobufCMessage **sub = (ProtobufCMessage **)member;
		const ProtobufCMessageDescriptor *d = f->descriptor;
		if (!dot)
			return error_set(GROVE_EINVAL, "%s is a message: set its fields (%s.x=…)", name, name);
		if (!*sub) {
			*sub = xcalloc(1, d->sizeof_message);
			protobuf_c_message_init(d, *sub);
		}
		return set_field(*sub, dot + 1, value);
	}
	if (dot)
		return error_set(GROVE_EINVAL, "%s is not a message", name);
	return set_scalar(f, member, value);
}

static void print_value(struct strbuf *sb, const ProtobufCFieldDescriptor *f, const void *member);

static void print_message(struct strbuf *sb, const ProtobufCMessage *m)
{
	strbuf_addch(sb, '{');
	for (unsigned i = 0; i < m->descriptor->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &m->descriptor->fields[i];
		const char *member = (const char *)m + f->offset;
		if (i)
			strbuf_addch(sb, ',');
		strbuf_addf(sb, "\"%s\":", f->name);
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			const char *arr = *(char *const *)member;
			strbuf_addch(sb, '[');
			for (size_t k = 0; k < n; k++) {
				if (k)
					strbuf_addch(sb, ',');
				print_value(sb, f, arr + k * scalar_size(f->type));
			}
			strbuf_addch(sb, ']');
		} else {
			print_value(sb, f, member);
		}
	}
	strbuf_addch(sb, '}');
}

static void print_value(struct strbuf *sb, const ProtobufCFieldDescriptor *f, const void *member)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)member;
		strbuf_add_json_str(sb, s ? s : "", s ? strlen(s) : 0);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = member;
		strbuf_add_json_str(sb, (const char *)b->data, b->len);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)member;
		if (sub)
			print_message(sb, sub);
		else
			strbuf_addstr(sb, "null");
		break;
	}
	case PROTOBUF_C_TYPE_BOOL: strbuf_addstr(sb, *(const protobuf_c_boolean *)member ? "true" : "false"); break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)member);
		if (ev)
			strbuf_addf(sb, "\"%s\"", ev->name);
		else
			strbuf_addf(sb, "%d", *(const int *)member);
		break;
	}
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
		strbuf_addf(sb, "%d", *(const int32_t *)member); break;
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
		strbuf_addf(sb, "%u", *(const uint32_t *)member); break;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
		strbuf_addf(sb, "%lld", (long long)*(const int64_t *)member); break;
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		strbuf_addf(sb, "%llu", (unsigned long long)*(const uint64_t *)member); break;
	default:
		strbuf_addstr(sb, "null");
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int cli_load_secret(const char *file, char **out)
{
	*out = NULL;
	if (file)
		return auth_secret_load(file, out);
	if (getenv("GROVE_SECRET") && *getenv("GROVE_SECRET")) {
		*out = xstrdup(getenv("GROVE_SECRET"));
		return 0;
	}
	if (getenv("GROVE_SECRET_FILE"))
		return auth_secret_load(getenv("GROVE_SECRET_FILE"), out);
	return 0;
}

/* One call of `grove rpc`: what the command line asks for, and what it takes to make it. */
struct rpc_cli {
	const char *addr, *in_field, *out_field, *raw_hex;
	const char *method_arg, *token, *secret_file;
	int64_t timeout;
	char **fields;                              /* the field=value arguments */
	int nfields;
	char *secret, path[256];
	const ProtobufCMethodDescriptor *md;        /* NULL: unknown, called with --raw-hex */
	const struct rpc_method_info *info;
	ProtobufCMessage *req;
	struct rpc_client *cl;
	struct rpc_stream *st;
};

/* Returns the exit code when the command line says to stop here (help, a mistake), else -1. */
static int rpc_cli_parse_args(struct rpc_cli *c, int argc, char **argv)
{
	struct cli_parse p;
	int o, code;

	cli_parse_init(&p, &rpc_command, argc, argv);
	while ((o = cli_parse_next(&p)) != -1) {
		switch (o) {
		case 'a': c->addr = optarg; break;
		case OPT_SECRET_FILE: c->secret_file = optarg; break;
		case OPT_TIMEOUT: c->timeout = atoll(optarg); break;
		case OPT_IN_FIELD: c->in_field = optarg; break;
		case OPT_OUT_FIELD: c->out_field = optarg; break;
		case OPT_TOKEN: c->token = optarg; break;
		case OPT_RAW_HEX: c->raw_hex = optarg; break;
		}
	}
	if ((code = cli_parse_end(&p)) >= 0)
		return code;
	if (!p.nargs)
		return cli_usage_error(&rpc_command, "missing METHOD");
	if (!c->addr)
		return cli_usage_error(&rpc_command, "no address: give -a ADDRESS or set GROVE_ADDRESS");
	c->method_arg = p.args[0];
	c->fields = p.args + 1;
	c->nfields = p.nargs - 1;
	return -1;
}

/* The method's full path and descriptor, and the request from the field=value arguments. */
static int rpc_cli_build_request(struct rpc_cli *c)
{
	int ret;

	if (c->method_arg[0] == '/')
		snprintf(c->path, sizeof(c->path), "%s", c->method_arg);
	else
		snprintf(c->path, sizeof(c->path), "/grove.v1.%s", c->method_arg);
	c->md = find_method(c->path);
	c->info = rpc_method_find(c->path);
	if (!c->md && !c->raw_hex)
		return error_set(GROVE_EINVAL, "unknown method %s (use --raw-hex to call it anyway)", c->path);
	if (!c->md)
		return 0;
	c->req = xcalloc(1, c->md->input->sizeof_message);
	protobuf_c_message_init(c->md->input, c->req);
	for (int i = 0; i < c->nfields; i++) {
		char *eq = strchr(c->fields[i], '=');
		if (!eq)
			return error_set(GROVE_EINVAL, "argument \"%s\" is not field=value", c->fields[i]);
		*eq = '\0';
		ret = set_field(c->req, c->fields[i], eq + 1);
		*eq = '=';
		if (ret)
			return ret;
	}
	return 0;
}

/* Opens the call and sends its first message: the request, or the raw bytes of --raw-hex. */
static int rpc_cli_open(struct rpc_cli *c)
{
	int ret;

	if ((ret = rpc_client_new(&c->cl, c->addr, c->secret)))
		return ret;
	if (c->token)
		rpc_client_set_token(c->cl, c->token);
	if ((ret = rpc_stream_open(c->cl, c->path, c->timeout, &c->st)))
		return ret;
	if (c->raw_hex) {
		size_t n = strlen(c->raw_hex) / 2;
		unsigned char *raw = xmalloc(n + 1);
		for (size_t k = 0; k < n; k++)
			raw[k] = (unsigned char)(hexval(c->raw_hex[2 * k]) << 4 | hexval(c->raw_hex[2 * k + 1]));
		rpc_stream_send_raw(c->st, raw, n);
		free(raw);
	} else {
		rpc_stream_send(c->st, c->req);
	}
	return 0;
}

/*
 * With --in-field, the rest of the request streams from stdin, one chunk a
 * message. A send that fails ends the stream early; the call's status then
 * says why, so only a wrong --in-field is an error here.
 */
static int rpc_cli_send_stdin(struct rpc_cli *c)
{
	const ProtobufCMessageDescriptor *in;
	const ProtobufCFieldDescriptor *f;
	char *buf;

	if (!c->in_field || !c->md)
		return 0;
	in = c->md->input;
	f = protobuf_c_message_descriptor_get_field_by_name(in, c->in_field);
	buf = xmalloc(RPC_CHUNK_MAX);
	if (!f || f->type != PROTOBUF_C_TYPE_BYTES) {
		free(buf);
		return error_set(GROVE_EINVAL, "--in-field %s is not a bytes field of %s", c->in_field, in->name);
	}
	for (;;) {
		ssize_t n = read(0, buf, RPC_CHUNK_MAX);
		if (n <= 0)
			break;
		ProtobufCMessage *chunk = xcalloc(1, in->sizeof_message);
		protobuf_c_message_init(in, chunk);
		ProtobufCBinaryData *b = (ProtobufCBinaryData *)((char *)chunk + f->offset);
		b->data = (uint8_t *)buf;
		b->len = (size_t)n;
		int ret = rpc_stream_send(c->st, chunk);
		free(chunk);
		if (ret)
			break;
	}
	free(buf);
	return 0;
}

/* Each response as a JSON line, or with --out-field that field's bytes, raw. */
static void rpc_cli_print_responses(struct rpc_cli *c)
{
	for (;;) {
		ProtobufCMessage *resp = NULL;
		int r = rpc_stream_recv(c->st, c->md ? c->md->output : &grove__v1__repository_exists_response__descriptor,
					&resp);
		if (r <= 0)
			break;
		if (c->out_field) {
			const ProtobufCFieldDescriptor *f =
				protobuf_c_message_descriptor_get_field_by_name(resp->descriptor, c->out_field);
			if (f && f->type == PROTOBUF_C_TYPE_BYTES) {
				const ProtobufCBinaryData *b = (const void *)((const char *)resp + f->offset);
				write_all(1, b->data, b->len);
			}
		} else {
			struct strbuf sb = STRBUF_INIT;
			print_message(&sb, resp);
			strbuf_addch(&sb, '\n');
			write_all(1, sb.buf, sb.len);
			strbuf_release(&sb);
		}
		protobuf_c_message_free_unpacked(resp, NULL);
		if (c->info && !c->info->server_streaming)
			break;
	}
}

int rpc_main(int argc, char **argv)
{
	struct rpc_cli c;
	int code;

	memset(&c, 0, sizeof(c));
	c.addr = getenv("GROVE_ADDRESS");
	c.timeout = 60000;
	log_init("rpc", LOG_WARN, 2);
	signal(SIGPIPE, SIG_IGN);
	if ((code = rpc_cli_parse_args(&c, argc, argv)) >= 0)
		return code;
	code = 0;
	if (cli_load_secret(c.secret_file, &c.secret))
		goto fail;
	if (!c.secret)
		c.secret = xstrdup("-");
	if (rpc_cli_build_request(&c) || rpc_cli_open(&c) || rpc_cli_send_stdin(&c))
		goto fail;
	rpc_stream_close_send(c.st);
	rpc_cli_print_responses(&c);
	if (rpc_stream_finish(c.st)) {
		code = (int)rpc_stream_status(c.st);
		fprintf(stderr, "grove rpc: %s: %s\n", rpc_status_name(rpc_stream_status(c.st)), error_msg());
	}
	goto out;
fail:
	fprintf(stderr, "grove rpc: %s\n", error_msg());
	code = 2;
out:
	if (c.req)
		protobuf_c_message_free_unpacked(c.req, NULL);
	rpc_stream_free(c.st);
	rpc_client_free(c.cl);
	free(c.secret);
	return code;
}
