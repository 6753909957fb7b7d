#!/bin/sh
# Mutual TLS on every TCP link between Grove's parts (gate -> router ->
# stores, store -> store, store -> the gate's hook API, the CLI): a push,
# deploy and clone through a gate whose parts all speak TLS with
# certificates from `grove tls`; a client without a certificate, or with one
# from another CA, gets nothing; a certificate rotated on disk is served
# after SIGHUP, without a restart; a store upgraded in place (SIGUSR2)
# hands over on its TCP port with its certificate; a wrong TLS file stops a
# start with a clear error.
. "$(dirname "$0")/test-lib.sh"

# tls_conf NAME: the config lines of part NAME's certificate.
tls_conf() {
	echo "tls.ca=$TRASH/pki/ca.pem tls.cert=$TRASH/pki/$1.pem tls.key=$TRASH/pki/$1.key"
}

# served_cert ADDR: the SHA-256 fingerprint of the certificate the part at
# ADDR serves (asked with the CLI's certificate, as any peer must).
served_cert() {
	openssl s_client -connect "$1" -servername 127.0.0.1 -CAfile "$TRASH/pki/ca.pem" \
		-cert "$TRASH/pki/cli.pem" -key "$TRASH/pki/cli.key" </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256
}

# events LOG EVENT: how many EVENT lines LOG has.
events() {
	grep -c "\"event\":\"$2\"" "$1" || :
}
more_events() {
	test "$(events "$1" "$2")" -gt "$3"
}
# tls_renewals: how many channels the router made again for new TLS files
# (not those it made again for a store being upgraded).
tls_renewals() {
	grep -c "\"event\":\"rpc.channel_renewed\".*\"reason\":\"new TLS files\"" c/cluster.log || :
}

# store_pid NAME: the pid of store NAME now (an upgrade changes it, and a
# test's variables end with the test).
store_pid() {
	pgrep -f "grove store -c $TRASH/$1/store.conf\$"
}

# hup PID LOG EVENT: SIGHUP to PID, then wait for one more EVENT in LOG.
hup() {
	_hup_n=$(events "$2" "$3")
	kill -HUP "$1" && wait_for 30 "$3 in $2" more_events "$2" "$3" "$_hup_n"
}

test_setup 'a CA, a certificate per part, three stores, a router and a gate, all over TLS' '
	"$GROVE" tls ca pki &&
	for p in s1 s2 s3 c g1 cli; do "$GROVE" tls cert pki $p 127.0.0.1 localhost || return 1; done &&
	test "$(stat -c %a pki/ca.key)" = 600 && test "$(stat -c %a pki/s1.key)" = 600 &&
	GROVE_TLS_CA=$TRASH/pki/ca.pem GROVE_TLS_CERT=$TRASH/pki/cli.pem GROVE_TLS_KEY=$TRASH/pki/cli.key &&
	export GROVE_TLS_CA GROVE_TLS_CERT GROVE_TLS_KEY &&
	start_store s1 $(tls_conf s1) && start_store s2 $(tls_conf s2) && start_store s3 $(tls_conf s3) &&
	: gRPC 1.51 may leak what OpenSSL allocated for a handshake that failed or &&
	: that its process stopped in the middle of. The routers here reconnect &&
	: through CA rotations, upgrades and stores stopping beside them: such &&
	: leaks are not reported for them, those of every other daemon are. Seen &&
	: in CI on a loaded machine: 984 bytes in 3 objects in c, stacks ending in libcrypto. libcrypto &&
	: has no frame pointers: its leaks cannot be told apart by where they come from &&
	echo "leak:libcrypto.so" >libcrypto.supp &&
	c_WRAP="env LSAN_OPTIONS=suppressions=$TRASH/libcrypto.supp" &&
	start_cluster c s1 s2 s3 -- $(tls_conf c) &&
	cat >deploy <<-\EOF &&
	#!/bin/sh
	echo "building $GROVE_APP at $GROVE_NEW"
	EOF
	chmod +x deploy &&
	start_gate g1 $c_ADDR default deploy.command=$TRASH/deploy $(tls_conf g1) &&
	new_key alice && user_app g1 alice web >/dev/null &&
	make_history src
'

test_expect_success 'every part serves a certificate from the CA' '
	for a in $s1_ADDR $s2_ADDR $s3_ADDR $c_ADDR; do
		served_cert $a >fp && test_grep "Fingerprint=" fp || return 1
	done &&
	wait_grep "\"event\":\"store.started\"" s1/store.log
'

test_expect_success 'a push through the gate deploys; every replica has it; a clone gets it back' '
	(cd src && GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" \
		git push ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main 2>../push.err) &&
	test_grep "^remote: building web at $(git -C src rev-parse main)" push.err &&
	test_grep "^remote: -----> Deployed web" push.err &&
	for s in s1 s2 s3; do
		eval "a=\$${s}_ADDR" &&
		test "$(checksum $a $s web.git)" != "" || return 1
	done &&
	GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git clone -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git back &&
	test "$(git -C back rev-parse HEAD)" = "$(git -C src rev-parse main)" &&
	"$GROVE" cluster -a $c_ADDR status >st && test_grep "^  s1 .* yes " st
'

test_expect_success 'a client without a certificate, or with one from another CA, gets no answer' '
	test_must_fail env -u GROVE_TLS_CA -u GROVE_TLS_CERT -u GROVE_TLS_KEY \
		"$GROVE" rpc -a $s1_ADDR /grpc.health.v1.Health/Check >out 2>&1 &&
	test_must_fail grep SERVING out &&
	"$GROVE" tls ca other && "$GROVE" tls cert other rogue 127.0.0.1 &&
	for a in $s1_ADDR $c_ADDR; do
		test_must_fail env GROVE_TLS_CERT=$TRASH/other/rogue.pem GROVE_TLS_KEY=$TRASH/other/rogue.key \
			"$GROVE" rpc -a $a /grpc.health.v1.Health/Check >out 2>&1 || return 1
		test_must_fail grep SERVING out || return 1
	done &&
	: the CLI itself refuses a certificate that is not from the CA it trusts &&
	test_must_fail env GROVE_TLS_CERT=$TRASH/other/rogue.pem GROVE_TLS_KEY=$TRASH/other/rogue.key \
		GROVE_TLS_CA=$TRASH/pki/ca.pem "$GROVE" rpc -a $s1_ADDR /grpc.health.v1.Health/Check 2>err &&
	test_grep "is not valid from the CA" err &&
	"$GROVE" rpc -a $s1_ADDR /grpc.health.v1.Health/Check >out && test_grep SERVING out
'

test_expect_success 'a store with a certificate from another CA is refused by the router' '
	"$GROVE" tls cert other s4 127.0.0.1 &&
	port=$(free_port) &&
	"$GROVE" store --init s4 --name s4 --listen 127.0.0.1:$port >/dev/null &&
	cp "$SHARED_SECRET" s4/secret &&
	git config -f s4/store.conf tls.ca "$TRASH/other/ca.pem" &&
	git config -f s4/store.conf tls.cert "$TRASH/other/s4.pem" &&
	git config -f s4/store.conf tls.key "$TRASH/other/s4.key" &&
	{ "$GROVE" store -c s4/store.conf >>s4/store.log 2>&1 & } &&
	s4_PID=$! && record_daemon $s4_PID && s4_ADDR=127.0.0.1:$port &&
	wait_grep "\"event\":\"store.started\"" s4/store.log &&
	: each handshake of c4 with s4 fails verification: as for c, above &&
	c4_WRAP=$c_WRAP &&
	start_cluster c4 s4 -- $(tls_conf c) &&
	wait_for 30 "the router to find s4 down" eval \
		"\"\$GROVE\" cluster -a $c4_ADDR status >st 2>&1 && grep -q \"^  s4 .* NO \" st" &&
	test_must_fail "$GROVE" rpc -a $c4_ADDR RepositoryService/CreateRepository \
		repository.storage_name=default repository.relative_path=x.git >out 2>&1 &&
	test -z "$(find s4 -name "x.git")" &&
	: s4 first, then c4, so that c4 is not in the middle of a handshake when it stops &&
	kill -TERM $s4_PID && wait_for 30 "s4 to stop" gone $s4_PID &&
	wait_for 30 "c4 to find s4 refusing connections" eval \
		"\"\$GROVE\" cluster -a $c4_ADDR status 2>&1 | grep -q \"^  s4 .*onnection refused\"" &&
	kill -TERM $c4_PID && wait_for 30 "c4 to stop" gone $c4_PID
'

test_expect_success 'a certificate renewed on disk is served after SIGHUP, without a restart' '
	before=$(served_cert $s1_ADDR) && test -n "$before" &&
	mkdir new && cp pki/ca.pem pki/ca.key new/ &&
	"$GROVE" tls cert new s1 127.0.0.1 localhost &&
	cp new/s1.pem pki/s1.pem.new && cp new/s1.key pki/s1.key.new &&
	mv pki/s1.key.new pki/s1.key && mv pki/s1.pem.new pki/s1.pem &&
	kill -HUP $s1_PID &&
	wait_grep "\"event\":\"store.reloaded\"" s1/store.log &&
	wait_for 30 "the new certificate to be served" eval "test \"\$(served_cert $s1_ADDR)\" != \"$before\"" &&
	kill -0 $s1_PID &&
	: the gate: its hook API, in its api process, serves the new one too &&
	hook=$(git config -f g1/gate.conf gate.hookListen) &&
	gbefore=$(served_cert $hook) && test -n "$gbefore" &&
	"$GROVE" tls cert new g1 127.0.0.1 localhost &&
	cp new/g1.pem pki/g1.pem && cp new/g1.key pki/g1.key &&
	kill -HUP $g1_PID &&
	wait_grep "\"event\":\"gate.api_reloaded\",\"tls\":true" g1/gate.log &&
	wait_for 30 "the gate to serve its new certificate" eval "test \"\$(served_cert $hook)\" != \"$gbefore\"" &&
	(cd src && git commit -q --allow-empty -m after-rotation &&
		GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main)
'

test_expect_success 'a reload with a broken key keeps the certificate in use' '
	served=$(served_cert $s1_ADDR) &&
	cp pki/s1.key s1.key.good && echo broken >pki/s1.key &&
	kill -HUP $s1_PID &&
	wait_grep "\"event\":\"store.reload_failed\"" s1/store.log &&
	test_grep "tls.key .*s1.key: no PEM private key" s1/store.log &&
	test "$(served_cert $s1_ADDR)" = "$served" &&
	cp s1.key.good pki/s1.key
'

test_expect_success 'a wrong TLS file stops a start, saying which and why; --check-config says so first' '
	cp s1/store.conf bad.conf &&
	git config -f bad.conf tls.key "$TRASH/pki/s2.key" &&
	test_must_fail "$GROVE" store -c bad.conf 2>err &&
	test_grep "s2.key is not the key of the certificate in .*s1.pem" err &&
	git config -f bad.conf --unset tls.ca &&
	test_must_fail "$GROVE" store -c bad.conf 2>err &&
	test_grep "tls.ca, tls.cert and tls.key go together" err &&
	cp g1/gate.conf g1/bad.conf &&
	git config -f g1/bad.conf tls.cert "$TRASH/other/rogue.pem" &&
	git config -f g1/bad.conf tls.key "$TRASH/other/rogue.key" &&
	: store and router check their files as the gate does, changing nothing &&
	"$GROVE" store -c s1/store.conf --check-config >out &&
	test_grep "store.conf: good. storage s1, .*TLS on TCP links: on" out &&
	cp s1/store.conf s1/bad.conf && git config -f s1/bad.conf tls.cert "$TRASH/other/rogue.pem" &&
	git config -f s1/bad.conf tls.key "$TRASH/other/rogue.key" &&
	test_expect_code 1 "$GROVE" store -c s1/bad.conf --check-config 2>err &&
	test_grep "rogue.pem is not valid from the CA" err &&
	"$GROVE" cluster -c c/cluster.conf --check-config >out &&
	test_grep "cluster.conf: good. router c, .*3 stores, database .*cluster.db (not opened); TLS on TCP links: on" out &&
	git config -f c/cluster.conf --get cluster.name >/dev/null &&
	cp c/cluster.conf c/bad.conf && git config -f c/bad.conf cluster.voteTimeout -5 &&
	test_expect_code 1 "$GROVE" cluster -c c/bad.conf --check-config 2>err &&
	test_grep "voteTimeout" err &&
	kill -0 $s1_PID && kill -0 $c_PID &&
	test_must_fail "$GROVE" gate -c g1/bad.conf --check-config >out 2>err &&
	test_grep "rogue.pem is not valid from the CA in .*pki/ca.pem" err
'

test_expect_success 'a store upgraded in place (SIGUSR2) over TCP and TLS: the router moves to the new process before the old one drains; pushes go on' '
	old=$s2_PID &&
	n=$(events c/cluster.log rpc.channel_renewed) &&
	kill -USR2 $old &&
	wait_for 60 "the old s2 to hand over and exit" gone $old &&
	new=$(store_pid s2) && test -n "$new" && test "$new" != $old && record_daemon $new &&
	: the new process listens beside the old one on the same port with its certificate, and the router &&
	: made its channel to s2 again on the mark of the leaving process, before that one drained &&
	served_cert $s2_ADDR >fp && test_grep "Fingerprint=" fp &&
	grep "\"event\":\"rpc.channel_renewed\"" c/cluster.log | tail -n +$((n + 1)) >renewed &&
	test_grep "\"address\":\"$s2_ADDR\",\"reason\":\"the server is being replaced\"" renewed &&
	test_grep "\"pid\":$old,.*\"event\":\"rpc.left\"" s2/store.log &&
	test_grep "\"pid\":$old,.*\"event\":\"store.stopped\"" s2/store.log &&
	: a second store started on that port by mistake still fails to start, and says why &&
	"$GROVE" store --init dup --name dup --listen $s2_ADDR >/dev/null && cp "$SHARED_SECRET" dup/secret &&
	test_must_fail timeout 60 "$GROVE" store -c dup/store.conf >dup.out 2>&1 &&
	test_grep "cannot listen on $s2_ADDR (address in use" dup.out &&
	: a push through the gate reaches all three stores, the new s2 among them &&
	(cd src && echo up >upgraded && git add upgraded && git commit -q -m upgraded &&
	 GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git push -q ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main 2>../push-up.err) &&
	sum=$(checksum $s1_ADDR s1 web.git) && test -n "$sum" &&
	test "$(checksum $s2_ADDR s2 web.git)" = "$sum" && test "$(checksum $s3_ADDR s3 web.git)" = "$sum"
'

test_expect_success 'the gate upgraded in place (SIGUSR2), its hook API on a TCP port over TLS: a push deploys through the new gate' '
	old=$g1_PID &&
	kill -USR2 $old &&
	wait_for 60 "the old gate to hand over and exit" gone $old &&
	new=$(pgrep -o -f "grove gate -c $TRASH/g1/gate.conf\$") && test -n "$new" && record_daemon $new &&
	test_grep "\"pid\":$old,.*\"event\":\"gate.upgraded\"" g1/gate.log &&
	: the new api process bound the hook port beside the old one: it started once, and never died &&
	test_must_fail grep "\"event\":\"gate.api_died\"" g1/gate.log &&
	test "$(grep -c "\"event\":\"gate.api_started\"" g1/gate.log)" = 2 &&
	(cd src && echo gate >gate-upgraded && git add gate-upgraded && git commit -q -m gate-upgraded &&
	 GIT_SSH_COMMAND="$(ssh_as alice $g1_SSH_PORT)" git push ssh://git@127.0.0.1:$g1_SSH_PORT/web.git main 2>../push-gate.err) &&
	test_grep "^remote: building web at $(git -C src rev-parse main)" push-gate.err &&
	test_grep "^remote: -----> Deployed web" push-gate.err
'

test_expect_success 'a CA rotated by reloads: the router makes its channels again with its new certificate; a store restarted trusting the new CA only takes it' '
	"$GROVE" tls ca pki2 &&
	for p in s1 c cli; do "$GROVE" tls cert pki2 $p 127.0.0.1 localhost || return 1; done &&
	cat pki/ca.pem pki2/ca.pem >both.pem &&
	: every store and the router trust both CAs, and the router gets its certificate from the new one &&
	git config -f s1/store.conf tls.ca "$TRASH/both.pem" && hup $s1_PID s1/store.log store.reloaded &&
	git config -f s2/store.conf tls.ca "$TRASH/both.pem" && hup "$(store_pid s2)" s2/store.log store.reloaded &&
	git config -f s3/store.conf tls.ca "$TRASH/both.pem" && hup $s3_PID s3/store.log store.reloaded &&
	git config -f c/cluster.conf tls.ca "$TRASH/both.pem" &&
	git config -f c/cluster.conf tls.cert "$TRASH/pki2/c.pem" && git config -f c/cluster.conf tls.key "$TRASH/pki2/c.key" &&
	hup $c_PID c/cluster.log cluster.reloaded &&
	wait_grep "\"event\":\"rpc.channel_renewed\",\"address\":\"$s1_ADDR\",\"reason\":\"new TLS files\"" c/cluster.log &&
	wait_for 30 "the channels to all three stores renewed" eval "test \$(tls_renewals) -ge 3" &&
	GROVE_TLS_CA=$TRASH/both.pem &&
	: the same files read again renew nothing &&
	n=$(tls_renewals) && hup $c_PID c/cluster.log cluster.reloaded &&
	"$GROVE" cluster -a $c_ADDR status >st && test "$(tls_renewals)" = $n &&
	: s1 restarted with the new CA only: the old certificate would be refused now &&
	git config -f s1/store.conf tls.ca "$TRASH/pki2/ca.pem" &&
	git config -f s1/store.conf tls.cert "$TRASH/pki2/s1.pem" && git config -f s1/store.conf tls.key "$TRASH/pki2/s1.key" &&
	kill -TERM $s1_PID && wait_for 30 "s1 to stop" gone $s1_PID &&
	GROVE_TLS_CERT=$TRASH/pki2/cli.pem GROVE_TLS_KEY=$TRASH/pki2/cli.key &&
	restart_store s1 &&
	wait_for 60 "the router to find s1 up again" eval \
		"\"\$GROVE\" cluster -a $c_ADDR status >st 2>&1 && grep -q \"^  s1 .* yes \" st" &&
	GROVE_TLS_CERT=$TRASH/pki/cli.pem GROVE_TLS_KEY=$TRASH/pki/cli.key &&
	test_must_fail "$GROVE" rpc -a $s1_ADDR /grpc.health.v1.Health/Check 2>err
'

test_done
