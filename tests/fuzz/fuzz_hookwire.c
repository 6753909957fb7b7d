/*
 * libFuzzer target for src/lib/hookwire.c, which parses what a hook sends
 * a store over its hook wire. Whatever the bytes, a request that parses
 * has a name, points only inside the input, and reads back the same when
 * its frames are written again in order.
 */
#include "lib/common.h"
#include "lib/hookwire.h"
#include "lib/strbuf.h"

static bool inside(const uint8_t *buf, size_t size, const void *p, size_t len)
{
	const uint8_t *b = p;
	return !p || (b >= buf && len <= size && b - buf <= (ptrdiff_t)(size - len));
}

static void put(struct strbuf *sb, char type, const void *data, size_t len)
{
	uint8_t head[HOOKWIRE_HEAD];
	hookwire_head(head, type, (uint32_t)len);
	strbuf_add(sb, head, sizeof(head));
	strbuf_add(sb, data, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hookwire_req r, again;
	struct strbuf sb;
	const char *why;

	if (hookwire_parse(data, size, &r, &why)) {
		if (!why || !*why)
			abort();
		return 0;
	}
	if (!r.name || !inside(data, size, r.name, r.name_len) || !inside(data, size, r.arg, r.arg_len) ||
	    !inside(data, size, r.in, r.in_len) || r.nvars > HOOKWIRE_VARS_MAX)
		abort();
	strbuf_init(&sb, size + 64);
	put(&sb, 'N', r.name, r.name_len);
	if (r.arg)
		put(&sb, 'A', r.arg, r.arg_len);
	for (size_t i = 0; i < r.nvars; i++) {
		size_t len;
		if (!inside(data, size, r.vars[i], r.var_lens[i]) || !memchr(r.vars[i], '=', r.var_lens[i]))
			abort();
		put(&sb, 'V', r.vars[i], r.var_lens[i]);
		(void)hookwire_var(&r, "GROVE_SECRET", &len);
	}
	if (r.in)
		put(&sb, 'I', r.in, r.in_len);
	if (sb.len != size || memcmp(sb.buf, data, size) || hookwire_parse((uint8_t *)sb.buf, sb.len, &again, &why) ||
	    again.nvars != r.nvars || again.in_len != r.in_len)
		abort();
	strbuf_release(&sb);
	return 0;
}
