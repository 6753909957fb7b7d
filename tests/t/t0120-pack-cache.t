#!/bin/sh
# The pack-objects cache of a store (packCache.*): the same clone served from
# a file, byte for byte what git made; identical clones at once share one
# pack-objects run; an entry of another repository, a damaged, cut or too
# old entry is never served; a full cache disk means no cache, not a failed
# clone; the cache stays within maxBytes; /metrics counts it all.
. "$(dirname "$0")/test-lib.sh"

# Needs root (mount -t tmpfs, for the full cache disk); skipped otherwise.
require_root "mount -t tmpfs"

# stat_of STORE FIELD: one of the cache's counters (hits misses served
# written evictions errors), from the store's /metrics.
stat_of() {
	curl -sf "http://$METRICS/metrics" >metrics.out || return 1
	case $2 in
	hits) sed -n 's/^grove_store_pack_cache_requests_total{.*result="hit"} //p' metrics.out ;;
	misses) sed -n 's/^grove_store_pack_cache_requests_total{.*result="miss"} //p' metrics.out ;;
	errors) sed -n 's/^grove_store_pack_cache_requests_total{.*result="error"} //p' metrics.out ;;
	served) sed -n 's/^grove_store_pack_cache_served_bytes_total{.*} //p' metrics.out ;;
	evictions) sed -n 's/^grove_store_pack_cache_evictions_total{.*} //p' metrics.out ;;
	esac
}

# entries: the cache's entries now.
entries() {
	find "$CACHE" -path "$CACHE/[0-9a-f][0-9a-f]/*" -type f | sort
}

# clone_to DIR [APP]: a bare clone through the store, its raw pack kept in DIR.pack.
clone_to() {
	rm -rf "$1" "$1.pack"
	GIT_TRACE_PACKFILE=$TRASH/$1.pack git_on $s1_ADDR clone -q --bare "ssh://s1/${2:-app.git}" "$1"
}

test_setup 'a store with the cache on, a repository with history' '
	METRICS=127.0.0.1:$(free_port) &&
	start_store s1 packCache.enabled=true packCache.maxBytes=64m store.metricsListen=$METRICS &&
	CACHE=$TRASH/s1/repositories/+grove/pack-cache &&
	create_repo $s1_ADDR s1 app.git &&
	create_repo $s1_ADDR s1 twin.git &&
	make_history src &&
	(cd src && for i in $(seq 40); do echo "$i $(seq $i)" >"f$i" && git add "f$i" && git commit -q -m "c$i" || return 1; done) &&
	(cd src && git_on $s1_ADDR push -q ssh://s1/app.git main feature v1.0 &&
		git_on $s1_ADDR push -q ssh://s1/twin.git main feature v1.0)
'

test_expect_success 'a second clone is served from the cache, the same bytes git sent the first time' '
	clone_to first &&
	test "$(stat_of s1 misses)" = 1 && test "$(stat_of s1 hits)" = 0 &&
	test $(entries | wc -l) = 1 &&
	clone_to second &&
	test "$(stat_of s1 hits)" = 1 &&
	test_cmp first.pack second.pack &&
	git -C second fsck --strict --no-progress &&
	git -C src show-ref main feature v1.0 >expect &&
	git -C second show-ref main feature v1.0 >actual &&
	test_cmp expect actual &&
	test "$(stat_of s1 served)" -gt 0
'

test_expect_success 'the same request on another repository is not served from the first one'"'"'s entry' '
	clone_to other twin.git &&
	test "$(stat_of s1 misses)" = 2 &&
	test $(entries | wc -l) = 2 &&
	git -C other fsck --strict --no-progress
'

test_expect_success 'ten identical clones at once: one pack-objects run, nine served from it' '
	(cd src && echo more >more && git add more && git commit -q -m more && git_on $s1_ADDR push -q ssh://s1/app.git main) &&
	misses=$(stat_of s1 misses) && hits=$(stat_of s1 hits) &&
	pids= &&
	for i in $(seq 10); do
		git_on $s1_ADDR clone -q --bare ssh://s1/app.git "many$i" 2>"many$i.err" &
		pids="$pids $!"
	done &&
	for p in $pids; do wait $p || return 1; done &&
	test "$(stat_of s1 misses)" = $((misses + 1)) &&
	test "$(stat_of s1 hits)" = $((hits + 9)) &&
	for i in $(seq 10); do
		test "$(git -C "many$i" rev-parse main)" = "$(git -C src rev-parse main)" || return 1
	done
'

test_expect_success 'a damaged entry is never served: it is made again' '
	clone_to before &&
	for e in $(entries); do
		perl -e "open(my \$f, q{+<}, \$ARGV[0]) or die; seek(\$f, 100, 0); read(\$f, my \$b, 1); seek(\$f, 100, 0); print \$f chr(ord(\$b) ^ 0xff);" "$e" || return 1
	done &&
	misses=$(stat_of s1 misses) &&
	clone_to after &&
	test "$(stat_of s1 misses)" = $((misses + 1)) &&
	: git made the pack again: the same objects, not always the same bytes &&
	: as its delta search runs in threads &&
	git -C after fsck --strict --no-progress &&
	git -C before rev-list --all --objects | sort >before.objects &&
	git -C after rev-list --all --objects | sort >after.objects &&
	test_cmp before.objects after.objects
'

test_expect_success 'an entry cut short is never served' '
	for e in $(entries); do truncate -s 50 "$e" || return 1; done &&
	misses=$(stat_of s1 misses) &&
	clone_to cut &&
	test "$(stat_of s1 misses)" = $((misses + 1)) &&
	git -C cut fsck --strict --no-progress
'

test_expect_success 'an entry older than maxAge is not served' '
	for e in $(entries); do touch -d "-1 hour" "$e" || return 1; done &&
	misses=$(stat_of s1 misses) &&
	clone_to aged &&
	test "$(stat_of s1 misses)" = $((misses + 1)) &&
	git -C aged fsck --strict --no-progress
'

test_expect_success 'the cache stays within maxBytes: the oldest entries go' '
	stop_store s1 &&
	git config -f s1/store.conf packCache.maxBytes 1m &&
	restart_store s1 &&
	(cd src && for i in $(seq 4); do head -c 400000 /dev/urandom >"blob$i" && git add "blob$i" && git commit -q -m "blob $i" &&
		git_on $s1_ADDR push -q ssh://s1/app.git main || return 1; clone_to "big$i" || return 1; done) &&
	size=$(entries | xargs cat | wc -c) &&
	test "$size" -le 1048576 &&
	test "$(stat_of s1 evictions)" -gt 0
'

test_expect_success 'a full cache disk: no cache, and the clone works' '
	mkdir -p small &&
	mount -t tmpfs -o size=64k tmpfs small &&
	at_exit "umount '"'"'$TRASH/small'"'"' 2>/dev/null || umount -l '"'"'$TRASH/small'"'"'" &&
	METRICS=127.0.0.1:$(free_port) &&
	start_store s2 packCache.enabled=true packCache.dir="$TRASH/small" store.metricsListen=$METRICS &&
	create_repo $s2_ADDR s2 app.git &&
	(cd src && git_on $s2_ADDR push -q ssh://s2/app.git main) &&
	: one page left: the counters fit, no pack does &&
	head -c 60000 /dev/zero >small/filler &&
	rm -rf full &&
	git_on $s2_ADDR clone -q --bare ssh://s2/app.git full &&
	git -C full fsck --strict --no-progress &&
	test "$(git -C full rev-parse main)" = "$(git -C src rev-parse main)" &&
	test "$(stat_of s2 errors)" = 1 &&
	test "$(stat_of s2 misses)" = 0
'

test_expect_success '/metrics says whether pushes run the primary and replica gits; a store without them says 0 and logs why' '
	curl -sf "http://$METRICS/metrics" >metrics.out &&
	test_grep "^grove_store_replica_git{store=\"s1\"} 1$" metrics.out &&
	test_grep "^grove_store_primary_git{store=\"s1\"} 1$" metrics.out &&
	test_grep "\"event\":\"store.started\".*\"primary_git\":\"/usr/local/lib/grove/git-primary/git\".*\"replica_git\":\"/usr/local/lib/grove/git/git\"" s1/store.log &&
	M2=127.0.0.1:$(free_port) &&
	start_store s9 store.replicaGit=$TRASH/no-such-git store.primaryGit=$TRASH/no-such-git store.metricsListen=$M2 &&
	test_grep "\"event\":\"store.replica_git_missing\".*\"path\":\"$TRASH/no-such-git\"" s9/store.log &&
	test_grep "\"event\":\"store.primary_git_missing\".*\"path\":\"$TRASH/no-such-git\"" s9/store.log &&
	curl -sf "http://$M2/metrics" >metrics2.out &&
	test_grep "^grove_store_replica_git{store=\"s9\"} 0$" metrics2.out &&
	test_grep "^grove_store_primary_git{store=\"s9\"} 0$" metrics2.out
'

test_done
