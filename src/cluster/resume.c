/*
 * A push that goes on when its primary dies mid-call: see resume.h.
 */
#include "cluster/resume.h"
#include "lib/error.h"
#include "lib/pbwire.h"
#include "grove/v1/ssh.pb-c.h"

void resume_init(struct resume *rs, struct resume_budget *budget)
{
	memset(rs, 0, sizeof(*rs));
	rs->budget = budget;
	strbuf_init(&rs->seen, 0);
}

/* Past a bound: what was kept goes, and the push can no longer be resumed. */
void resume_give_up(struct resume *rs)
{
	for (size_t i = 0; i < rs->nin; i++)
		grpc_byte_buffer_destroy(rs->in[i]);
	free(rs->in);
	rs->in = NULL;
	rs->nin = rs->cap = 0;
	strbuf_release(&rs->seen);
	atomic_fetch_sub(&rs->budget->held, rs->held);
	rs->held = 0;
	rs->off = true;
}

/* Charges n more bytes; false (and off) when a bound would be passed. */
static bool resume_charge(struct resume *rs, size_t n)
{
	struct resume_budget *b = rs->budget;
	long long add = (long long)n;

	if (rs->off)
		return false;
	if (rs->held + add > b->max_push) {
		resume_give_up(rs);
		return false;
	}
	if (atomic_fetch_add(&b->held, add) + add > b->max_total) {
		atomic_fetch_sub(&b->held, add);
		resume_give_up(rs);
		return false;
	}
	rs->held += add;
	return true;
}

void resume_release(struct resume *rs)
{
	if (!rs->budget)
		return;
	resume_give_up(rs);
	if (rs->splicing)
		pkt_resume_release(&rs->splice);
	rs->budget = NULL;
}

size_t resume_note_in(struct resume *rs, grpc_byte_buffer *bb)
{
	if (rs->resumed || !resume_charge(rs, grpc_byte_buffer_length(bb)))
		return SIZE_MAX;
	if (rs->nin == rs->cap) {
		rs->cap = rs->cap ? 2 * rs->cap : 64;
		rs->in = xrealloc(rs->in, rs->cap * sizeof(*rs->in));
	}
	rs->in[rs->nin] = grpc_byte_buffer_copy(bb);
	return rs->nin++;
}

void resume_note_out(struct resume *rs, grpc_byte_buffer *bb)
{
	const uint8_t *val;
	size_t vlen;
	grpc_slice sl;

	if (rs->off || rs->resumed || rpc_bb_slice(bb, &sl))
		return;
	/* SSHResponse.stdout is field 1. */
	if (pbwire_find(GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl), 1, &val, &vlen) == 1 && vlen &&
	    resume_charge(rs, vlen) && strbuf_add(&rs->seen, val, vlen))
		resume_give_up(rs);
	grpc_slice_unref(sl);
}

int resume_start(struct resume *rs, bool advertised)
{
	int ret;

	/* proxy_resumable saw it on; the client reader may have charged more since. */
	if (rs->off)
		return error_set(GROVE_EPRECOND, "it sent more than cluster.resumeBuffer(Total) keeps");
	if (rs->resumed)
		return error_set(GROVE_EPRECOND, "it was resumed once already");
	rs->resumed = true;
	if (!rs->seen.len)
		return 0;   /* the client had nothing yet: the new one's output goes as it comes */
	if ((ret = pkt_resume_init(&rs->splice, rs->seen.buf, rs->seen.len, advertised))) {
		pkt_resume_release(&rs->splice);
		return ret;
	}
	rs->splicing = true;
	return 0;
}

int resume_relay(struct resume *rs, grpc_byte_buffer *bb, grpc_byte_buffer **out)
{
	Grove__V1__SSHResponse *m = NULL;
	struct strbuf give = STRBUF_INIT;
	ProtobufCBinaryData was = { 0 };
	bool swapped = false;
	int ret;

	*out = NULL;
	if ((ret = rpc_unpack(bb, &grove__v1__sshresponse__descriptor, (ProtobufCMessage **)&m)))
		goto out;
	if (m->stdout.len && (ret = pkt_resume_feed(&rs->splice, m->stdout.data, m->stdout.len, &give)))
		goto out;
	if (m->exit_status && (ret = pkt_resume_end(&rs->splice, &give)))
		goto out;
	was = m->stdout;
	swapped = true;
	m->stdout.data = (uint8_t *)give.buf;
	m->stdout.len = give.len;
	if (give.len || m->stderr.len || m->exit_status || (m->refs_checksum && *m->refs_checksum))
		*out = rpc_pack(&m->base);
out:
	if (m) {
		if (swapped)
			m->stdout = was;   /* give's bytes are not the message's to free */
		protobuf_c_message_free_unpacked(&m->base, NULL);
	}
	strbuf_release(&give);
	return ret;
}
