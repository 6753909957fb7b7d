#!/bin/sh
. /work/main/tests/t/test-lib.sh
test_setup 'stores and cluster' '
	start_store s1 && start_store s2 && start_store s3 &&
	start_cluster c s1 s2 s3
'
test_expect_success 'create and push through the cluster' '
	create_repo $c_ADDR default app.git &&
	make_history src &&
	(cd src && git_on $c_ADDR push ssh://default/app.git main feature light v1.0) &&
	a=$(checksum $s1_ADDR s1 app.git) && b=$(checksum $s2_ADDR s2 app.git) && d=$(checksum $s3_ADDR s3 app.git) &&
	echo $a $b $d && test "$a" = "$b" && test "$a" = "$d" &&
	"$GROVE" cluster -a $c_ADDR repo app.git &&
	git_on $c_ADDR clone -q ssh://default/app.git back && git -C back log --oneline | wc -l
'
test_expect_success "show" "\"\$GROVE\" cluster -a \$c_ADDR repo app.git && \"\$GROVE\" cluster -a \$c_ADDR status && false"
test_done
